/*
 * executor.c - job threads and the admission queue.
 *
 * Threads are started on demand up to max_jobs and then kept: a trigger's
 * job starts with a condition-variable signal, not a thread creation.  The
 * count of running plus queued jobs is the one admission number, checked
 * under the same lock that queues, so the 503 boundary is exact.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "executor.h"
#include "job.h"
#include "log.h"

struct job_slot {
    detach_job *job;    /* running on this thread, or NULL */
};

struct executor {
    int job_nice;              /* job threads (and their scripts) yield to acks */
    pthread_mutex_t lock;
    pthread_cond_t work;       /* a job was queued, or stopping */
    pthread_cond_t idle;       /* a job ended */
    unsigned max_jobs, queue_limit;
    detach_job **queue;        /* ring buffer of queue_limit + max_jobs */
    size_t queue_capacity, queue_head, queued;
    unsigned running;
    unsigned threads, waiting_threads;
    struct job_slot *slots;
    pthread_t *thread_ids;
    int closed;                /* no new jobs */
    int exiting;               /* threads leave */
};

struct thread_start {
    struct executor *executor;
    unsigned index;
};

static detach_job *queue_pop_locked(struct executor *executor)
{
    detach_job *job;

    if (!executor->queued)
        return NULL;
    job = executor->queue[executor->queue_head];
    executor->queue_head = (executor->queue_head + 1) % executor->queue_capacity;
    executor->queued--;
    return job;
}

static void *job_thread_main(void *arg)
{
    struct executor *executor = ((struct thread_start *)arg)->executor;
    struct job_slot *slot = &executor->slots[((struct thread_start *)arg)->index];

    free(arg);
    /* Per thread on Linux, and inherited by the scripts it spawns: a busy
     * job, or a burst of process starts, never slows an ack. */
    if (executor->job_nice &&
        setpriority(PRIO_PROCESS, (id_t)gettid(), executor->job_nice) < 0)
        log_line(LOG_ERROR, "job_thread", "error=\"setpriority: %s\"", strerror(errno));
    pthread_mutex_lock(&executor->lock);
    for (;;) {
        detach_job *job;

        while (!executor->queued && !executor->exiting) {
            executor->waiting_threads++;
            pthread_cond_wait(&executor->work, &executor->lock);
            executor->waiting_threads--;
        }
        if (executor->exiting)
            break;
        job = queue_pop_locked(executor);
        executor->running++;
        slot->job = job;
        pthread_mutex_unlock(&executor->lock);

        job_run(job);

        pthread_mutex_lock(&executor->lock);
        /* Cleared and freed under the lock, so executor_drain() never asks
         * a freed job to stop; one lock hold per job. */
        slot->job = NULL;
        executor->running--;
        job_free(job);
        pthread_cond_broadcast(&executor->idle);
    }
    pthread_mutex_unlock(&executor->lock);
    return NULL;
}

#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH 78
#define PR_FUTEX_HASH_SET_SLOTS 1
#define PR_FUTEX_HASH_GET_SLOTS 2
#endif
#define MAX_FUTEX_HASH_SLOTS (1u << 16)

/*
 * Every job thread that waits (for work, in detach_sleep(), on a lock)
 * waits on a futex, and Linux 6.16 and later hash a process's futexes in a
 * private table sized for a handful of threads: 16 slots on 2 CPUs.  With
 * thousands of jobs waiting, every futex wake then walks a chain of
 * hundreds, and the acks (which wake job threads) slow to a crawl.  So
 * the table is sized for max_jobs, a slot or two per job thread.  Older
 * kernels have one big shared table and refuse the call: nothing to do.
 */
static void size_futex_hash(unsigned max_jobs)
{
    unsigned slots = 16;
    int current = prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0);

    while (slots < max_jobs && slots < MAX_FUTEX_HASH_SLOTS)
        slots *= 2;
    if (current < 0 || (unsigned)current >= slots)
        return;   /* an old kernel, or large enough already */
    if (prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, slots, 0, 0) < 0)
        log_line(LOG_DEBUG, "futex_hash", "slots=%u error=\"%s\"", slots, strerror(errno));
}

struct executor *executor_new(unsigned max_jobs, unsigned queue_limit, int job_nice)
{
    struct executor *executor = calloc(1, sizeof(*executor));

    if (!executor)
        goto fail;
    executor->job_nice = job_nice;
    executor->max_jobs = max_jobs;
    executor->queue_limit = queue_limit;
    executor->queue_capacity = (size_t)queue_limit + max_jobs;
    executor->queue = calloc(executor->queue_capacity, sizeof(*executor->queue));
    executor->slots = calloc(max_jobs, sizeof(*executor->slots));
    executor->thread_ids = calloc(max_jobs, sizeof(*executor->thread_ids));
    if (!executor->queue || !executor->slots || !executor->thread_ids)
        goto fail;
    size_futex_hash(max_jobs);
    pthread_mutex_init(&executor->lock, NULL);
    pthread_cond_init(&executor->work, NULL);
    pthread_cond_init(&executor->idle, NULL);
    return executor;
fail:
    if (executor) {
        free(executor->queue);
        free(executor->slots);
        free(executor->thread_ids);
        free(executor);
    }
    error_set("executor: out of memory");
    return NULL;
}

/* A thread for the job just queued, unless an idle one will take it. */
static void ensure_thread_locked(struct executor *executor)
{
    struct thread_start *start;
    sigset_t all, previous;
    int rc;

    if (executor->waiting_threads >= executor->queued || executor->threads >= executor->max_jobs)
        return;
    start = malloc(sizeof(*start));
    if (!start)
        return;   /* an existing thread will get to it */
    start->executor = executor;
    start->index = executor->threads;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    rc = pthread_create(&executor->thread_ids[executor->threads], NULL, job_thread_main, start);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (rc != 0) {
        free(start);
        log_line(LOG_ERROR, "job_thread", "error=\"pthread_create: %s\"", strerror(rc));
        return;
    }
    executor->threads++;
}

static int is_full_locked(struct executor *executor)
{
    return executor->running + executor->queued >= (size_t)executor->max_jobs + executor->queue_limit;
}

int executor_has_room(struct executor *executor)
{
    int room;

    pthread_mutex_lock(&executor->lock);
    room = !executor->closed && !is_full_locked(executor);
    pthread_mutex_unlock(&executor->lock);
    return room;
}

/* Doubles the ring, unrolling it so the head is at 0. */
static int grow_queue_locked(struct executor *executor)
{
    size_t capacity = executor->queue_capacity * 2;
    detach_job **queue = calloc(capacity, sizeof(*queue));

    if (!queue)
        return -1;
    for (size_t i = 0; i < executor->queued; i++)
        queue[i] = executor->queue[(executor->queue_head + i) % executor->queue_capacity];
    free(executor->queue);
    executor->queue = queue;
    executor->queue_capacity = capacity;
    executor->queue_head = 0;
    return 0;
}

static int enqueue_locked(struct executor *executor, detach_job *job, int forced)
{
    size_t tail;

    if (executor->closed || (!forced && is_full_locked(executor))) {
        errno = EAGAIN;
        return -1;
    }
    if (executor->queued == executor->queue_capacity && grow_queue_locked(executor) < 0) {
        errno = ENOMEM;
        return -1;
    }
    tail = (executor->queue_head + executor->queued) % executor->queue_capacity;
    executor->queue[tail] = job;
    executor->queued++;
    ensure_thread_locked(executor);
    if (executor->threads == 0) {
        /* Not one job thread could be started: refuse rather than strand. */
        executor->queued--;
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

int executor_submit(struct executor *executor, detach_job *job)
{
    int rc;

    pthread_mutex_lock(&executor->lock);
    rc = enqueue_locked(executor, job, 0);
    pthread_mutex_unlock(&executor->lock);
    /* After the unlock: a thread woken under the lock would only block on
     * it.  No wake-up is lost: a thread checks the queue under the lock
     * before it waits. */
    if (rc == 0)
        pthread_cond_signal(&executor->work);
    return rc;
}

int executor_submit_recovered(struct executor *executor, detach_job *job)
{
    int rc;

    pthread_mutex_lock(&executor->lock);
    rc = enqueue_locked(executor, job, 1);
    pthread_mutex_unlock(&executor->lock);
    if (rc == 0)
        pthread_cond_signal(&executor->work);
    return rc;
}

static int wait_until_locked(struct executor *executor, const struct timespec *deadline)
{
    while (executor->running || executor->queued) {
        if (pthread_cond_timedwait(&executor->idle, &executor->lock, deadline) == ETIMEDOUT)
            return -1;
    }
    return 0;
}

void executor_drain(struct executor *executor, unsigned timeout_seconds, int keep_queued)
{
    struct timespec deadline;
    detach_job *job;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_seconds;
    pthread_mutex_lock(&executor->lock);
    executor->closed = 1;
    if (keep_queued)
        while ((job = queue_pop_locked(executor)))
            job_discard(job);
    if (wait_until_locked(executor, &deadline) < 0) {
        log_line(LOG_INFO, "drain_timeout", "running=%u queued=%zu", executor->running,
                 executor->queued);
        while ((job = queue_pop_locked(executor)))
            job_discard(job);
        for (unsigned i = 0; i < executor->threads; i++)
            if (executor->slots[i].job)
                job_request_stop(executor->slots[i].job);
        while (executor->running)
            pthread_cond_wait(&executor->idle, &executor->lock);
    }
    pthread_mutex_unlock(&executor->lock);
}

void executor_free(struct executor *executor)
{
    detach_job *job;

    if (!executor)
        return;
    pthread_mutex_lock(&executor->lock);
    executor->closed = 1;
    executor->exiting = 1;
    pthread_cond_broadcast(&executor->work);
    pthread_mutex_unlock(&executor->lock);
    for (unsigned i = 0; i < executor->threads; i++)
        pthread_join(executor->thread_ids[i], NULL);
    while ((job = queue_pop_locked(executor)))
        job_discard(job);
    pthread_cond_destroy(&executor->idle);
    pthread_cond_destroy(&executor->work);
    pthread_mutex_destroy(&executor->lock);
    free(executor->queue);
    free(executor->slots);
    free(executor->thread_ids);
    free(executor);
}
