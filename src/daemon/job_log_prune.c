/*
 * job_log_prune.c - job_log_keep: old job logs leave log_dir by themselves.
 *
 * Age is the file's last write (mtime), not its creation: a long job that
 * still writes keeps its log.  A pass runs on its own thread so that a
 * directory of many thousand files never delays a trigger.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "detach.h"
#include "job_log_prune.h"

static int is_job_log_name(const char *name)
{
    size_t length = strlen(name);

    return name[0] != '.' && length > 4 && strcmp(name + length - 4, ".log") == 0;
}

int job_logs_prune(const char *directory, time_t now, unsigned keep)
{
    DIR *dir = opendir(directory);
    struct dirent *entry;
    int removed = 0;

    if (!dir)
        return -1;
    while ((entry = readdir(dir)) != NULL) {
        struct stat status;

        if (!is_job_log_name(entry->d_name))
            continue;
        if (fstatat(dirfd(dir), entry->d_name, &status, AT_SYMLINK_NOFOLLOW) < 0)
            continue;   /* removed meanwhile */
        if (!S_ISREG(status.st_mode) || status.st_mtime + (time_t)keep >= now)
            continue;
        if (unlinkat(dirfd(dir), entry->d_name, 0) < 0) {
            if (errno != ENOENT)
                detach_log(DETACH_LOG_ERROR, "job_log_prune", "file=%s error=\"%s\"", entry->d_name,
                           strerror(errno));
            continue;
        }
        removed++;
    }
    closedir(dir);
    return removed;
}

struct job_log_pruner {
    char *directory;
    unsigned keep;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;   /* under lock */
};

static unsigned pass_interval(unsigned keep)
{
    unsigned interval = keep / 4;

    return interval < 1 ? 1 : interval > 300 ? 300 : interval;
}

static void *pruner_main(void *arg)
{
    struct job_log_pruner *pruner = arg;
    struct timespec until;

    pthread_mutex_lock(&pruner->lock);
    while (!pruner->stop) {
        int removed;

        pthread_mutex_unlock(&pruner->lock);
        removed = job_logs_prune(pruner->directory, time(NULL), pruner->keep);
        if (removed < 0)
            detach_log(DETACH_LOG_ERROR, "job_log_prune", "dir=%s error=\"%s\"", pruner->directory,
                       strerror(errno));
        else if (removed > 0)
            detach_log(DETACH_LOG_INFO, "job_logs_pruned", "dir=%s removed=%d keep=%u", pruner->directory,
                       removed, pruner->keep);
        pthread_mutex_lock(&pruner->lock);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += pass_interval(pruner->keep);
        while (!pruner->stop &&
               pthread_cond_clockwait(&pruner->wake, &pruner->lock, CLOCK_MONOTONIC, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&pruner->lock);
    return NULL;
}

struct job_log_pruner *job_log_pruner_start(const char *directory, unsigned keep)
{
    struct job_log_pruner *pruner = calloc(1, sizeof(*pruner));
    int rc;

    if (!pruner)
        return NULL;
    pruner->directory = strdup(directory);
    if (!pruner->directory)
        goto fail;
    pruner->keep = keep;
    pthread_mutex_init(&pruner->lock, NULL);
    pthread_cond_init(&pruner->wake, NULL);
    rc = pthread_create(&pruner->thread, NULL, pruner_main, pruner);
    if (rc != 0) {
        pthread_cond_destroy(&pruner->wake);
        pthread_mutex_destroy(&pruner->lock);
        errno = rc;
        goto fail;
    }
    return pruner;
fail:
    free(pruner->directory);
    free(pruner);
    return NULL;
}

void job_log_pruner_stop(struct job_log_pruner *pruner)
{
    if (!pruner)
        return;
    pthread_mutex_lock(&pruner->lock);
    pruner->stop = 1;
    pthread_cond_signal(&pruner->wake);
    pthread_mutex_unlock(&pruner->lock);
    pthread_join(pruner->thread, NULL);
    pthread_cond_destroy(&pruner->wake);
    pthread_mutex_destroy(&pruner->lock);
    free(pruner->directory);
    free(pruner);
}
