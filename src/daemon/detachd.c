/*
 * detachd.c - the daemon: routes from an INI file, each a command run as
 * a detached (or attached) job.
 *
 * Exit status: 0 after a clean stop, 1 on a runtime failure, 2 on a usage
 * or configuration error (the message names file:line).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "config.h"
#include "detach.h"
#include "job_log_prune.h"
#include "script.h"

#define DEFAULT_CONFIG "/etc/detach/detachd.conf"
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#ifndef DETACH_LIBEXECDIR
#define DETACH_LIBEXECDIR "/usr/local/libexec/detach"
#endif
#define SUPERVISOR_NAME "detach-run"
#define SPOOL_LOCK_NAME "detachd.lock"
/* How long a restarted detachd waits for the jobs of the one that died to
 * be stopped (their on_shutdown included) before it gives up. */
#define SPOOL_LOCK_WAIT_SECONDS 60

/*
 * The descriptors one script job holds at most (script.c, script_run_job
 * and spawn_supervised): the body's memfd, the job log, the progress pipe
 * (2), the attached output's or the capped log's pipe (2), and while
 * detach-run starts, the pipe that reports its start (2) and a copy of the
 * log for it (1); once started, the pidfd takes the place of those.  Its
 * on_shutdown takes fewer, after the job's are closed.
 */
#define SCRIPT_JOB_DESCRIPTORS 10

static const char usage_text[] =
    "Usage: detachd [OPTION]...\n"
    "Run configured commands as FastCGI jobs: a trigger gets an empty 200 at once\n"
    "and its job runs on, whatever the client does.\n"
    "\n"
    "  -c, --config FILE     INI configuration (default " DEFAULT_CONFIG ")\n"
    "  -l, --listen ADDR     unix:/path, IPv4:port or [IPv6]:port; none: the\n"
    "                        socket inherited on fd 0 or from systemd\n"
    "  -w, --workers N       threads answering what may block\n"
    "  -j, --max-jobs N      jobs running at once\n"
    "  -q, --queue N         jobs waiting beyond that; past it: 503\n"
    "  -s, --spool DIR       keep accepted triggers on disk until they ran, so a\n"
    "                        crash or restart loses none\n"
    "      --check-config    check the configuration and the commands, then exit\n"
    "  -V, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "Signals: SIGTERM or SIGINT stop accepting and drain running jobs for up to\n"
    "drain_timeout seconds; queued jobs stay in the spool.  SIGHUP reloads the\n"
    "routes; running jobs are untouched.  SIGUSR1 reopens log_file (logrotate).\n"
    "Exit status: 0 clean stop, 1 runtime failure,\n"
    "2 usage or configuration error.\n";

struct overrides {
    const char *listen;
    const char *spool;
    long workers, max_jobs, queue;   /* -1: not given */
};

static long parse_count(const char *option, const char *text, long minimum, long maximum)
{
    char *end;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (errno || *end || end == text || value < minimum || value > maximum) {
        fprintf(stderr, "detachd: %s: \"%s\" is not a number from %ld to %ld\n", option, text,
                minimum, maximum);
        exit(EXIT_USAGE);
    }
    return value;
}

/*
 * One loaded configuration and the routes built from it.  Jobs admitted
 * under it point into it, so a reload keeps the older ones until exit.
 */
struct generation {
    struct config config;
    struct script_route *script_routes;
    detach_route_spec *specs;
    struct generation *older;
};

struct daemon {
    const char *config_path;
    struct overrides given;
    detach_server *server;
    struct generation *current;
    struct script_supervisor supervisor;   /* every script route points here */
    char supervisor_path[4096];
    int lifeline[2];                       /* we hold the write end until we die */
    sigset_t signals;   /* handled by the signal thread, blocked everywhere */
    _Atomic int exiting;   /* main is done: the signal thread returns */
};

static void generation_free(struct generation *generation)
{
    while (generation) {
        struct generation *older = generation->older;
        free(generation->script_routes);
        free(generation->specs);
        config_free(&generation->config);
        free(generation);
        generation = older;
    }
}

static int build_script_routes(struct generation *generation,
                               const struct script_supervisor *supervisor)
{
    const struct config *config = &generation->config;

    generation->script_routes = calloc(config->route_count, sizeof(*generation->script_routes));
    generation->specs = calloc(config->route_count, sizeof(*generation->specs));
    if (!generation->script_routes || !generation->specs) {
        fprintf(stderr, "detachd: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < config->route_count; i++) {
        const struct config_route *from = &config->routes[i];
        struct script_route *to = &generation->script_routes[i];

        to->argv = from->argv;
        to->on_shutdown_argv = from->on_shutdown_argv;
        to->ignore_user_abort = from->ignore_user_abort;
        to->time_limit = from->time_limit;
        to->kill_grace = from->kill_grace;
        to->log_dir = config->log_dir;
        to->job_log_max = config->job_log_max;
        to->supervisor = supervisor;
        if (from->user) {
            struct passwd *entry = getpwnam(from->user);
            if (!entry) {
                fprintf(stderr, "%s:%d: user \"%s\" does not exist\n", config->path, from->line,
                        from->user);
                return -1;
            }
            if (geteuid() != 0)
                fprintf(stderr, "detachd: route %s: not running as root, so jobs run as "
                                "this user, not as \"%s\"\n", from->path, from->user);
            to->user = from->user;
            to->uid = entry->pw_uid;
            to->gid = entry->pw_gid;
        }
        generation->specs[i] = (detach_route_spec){
            .path = from->path,
            .mode = from->mode,
            .handler = script_run_job,
            .arg = to,
            .on_abort = from->ignore_user_abort ? DETACH_ABORT_IGNORE : DETACH_ABORT_STOP,
        };
    }
    return 0;
}

static int replace_string(char **field, const char *value)
{
    char *copy;

    if (!value)
        return 0;
    copy = strdup(value);
    if (!copy)
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

/* Reads the config, applies the command line over it, builds the routes.
 * NULL after printing why. */
static struct generation *load_generation(const char *path, const struct overrides *given,
                                          const struct script_supervisor *supervisor)
{
    struct generation *generation = calloc(1, sizeof(*generation));
    char message[1024];

    if (!generation) {
        fprintf(stderr, "detachd: out of memory\n");
        return NULL;
    }
    config_init_defaults(&generation->config);
    if (config_load(&generation->config, path, message, sizeof(message)) < 0) {
        /* "FILE:LINE: ..." stays as it is, for editors to jump to; a file
         * that cannot be read at all ("FILE: No such file...") gets the
         * program's name first, or nothing says who is complaining. */
        size_t path_length = strlen(path);
        int has_line = strncmp(message, path, path_length) == 0 && message[path_length] == ':' &&
                       message[path_length + 1] >= '0' && message[path_length + 1] <= '9';
        fprintf(stderr, "%s%s\n", has_line ? "" : "detachd: ", message);
        free(generation);
        return NULL;
    }
    if (replace_string(&generation->config.listen, given->listen) < 0 ||
        replace_string(&generation->config.spool, given->spool) < 0) {
        fprintf(stderr, "detachd: out of memory\n");
        goto fail;
    }
    if (given->spool)
        generation->config.spool_line = CONFIG_LINE_FLAG;
    if (given->workers > 0)
        generation->config.workers = (unsigned)given->workers;
    if (given->max_jobs > 0) {
        generation->config.max_jobs = (unsigned)given->max_jobs;
        generation->config.max_jobs_line = CONFIG_LINE_FLAG;
    }
    if (given->queue >= 0)
        generation->config.queue = (unsigned)given->queue;
    if (build_script_routes(generation, supervisor) < 0)
        goto fail;
    return generation;
fail:
    generation_free(generation);
    return NULL;
}

/* SIGHUP: new routes for new requests; running jobs keep theirs.  A broken
 * file changes nothing. */
static void reload(struct daemon *daemon)
{
    struct generation *fresh = load_generation(daemon->config_path, &daemon->given,
                                               &daemon->supervisor);
    char message[1024], note[1024];

    if (!fresh) {
        fprintf(stderr, "detachd: reload failed; still serving the previous routes\n");
        return;
    }
    if (config_check_serving(&fresh->config, message, sizeof(message), note, sizeof(note)) < 0) {
        fprintf(stderr, "%s; still serving the previous routes\n", message);
        generation_free(fresh);
        return;
    }
    if (note[0])
        fprintf(stderr, "%s (warning)\n", note);
    if (detach_server_replace_routes(daemon->server, fresh->specs, fresh->config.route_count) < 0) {
        fprintf(stderr, "detachd: reload failed: %s\n", detach_last_error());
        generation_free(fresh);
        return;
    }
    fresh->older = daemon->current;
    daemon->current = fresh;
}

/* ---- jobs die with detachd (detach_run.c) ---- */

/* detach-run beside our own executable (the build tree, a relocated
 * install), else where it was installed. */
static int find_supervisor(char *path, size_t size)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n > 0) {
        self[n] = '\0';
        snprintf(path, size, "%s/" SUPERVISOR_NAME, dirname(self));
        if (access(path, X_OK) == 0)
            return 0;
    }
    snprintf(path, size, "%s/" SUPERVISOR_NAME, DETACH_LIBEXECDIR);
    if (access(path, X_OK) == 0)
        return 0;
    fprintf(stderr, "detachd: cannot find %s next to detachd or in %s: jobs need it to die "
                    "with detachd\n", SUPERVISOR_NAME, DETACH_LIBEXECDIR);
    return -1;
}

/* fd moved to 10 or above (run_protocol.h places 0..7 in each child). */
static int move_high(int fd)
{
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);

    close(fd);
    return high;
}

/* The lifeline: every supervisor holds the read end; the write end is ours
 * alone (close-on-exec), so its EOF tells them we are gone, however. */
static int open_lifeline(int lifeline[2])
{
    if (pipe2(lifeline, O_CLOEXEC) < 0) {
        fprintf(stderr, "detachd: lifeline pipe: %s\n", strerror(errno));
        return -1;
    }
    lifeline[0] = move_high(lifeline[0]);
    lifeline[1] = move_high(lifeline[1]);
    if (lifeline[0] < 0 || lifeline[1] < 0) {
        fprintf(stderr, "detachd: lifeline pipe: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* The pid in the lock file names a detachd that is alive: a second
 * daemon on the spool, not the leftovers of a dead one. */
static pid_t live_owner(int fd)
{
    char text[32] = "", path[64], comm[32] = "";
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    long pid = n > 0 ? strtol(text, NULL, 10) : 0;
    FILE *file;

    if (pid <= 0 || pid == (long)getpid() || (kill((pid_t)pid, 0) < 0 && errno != EPERM))
        return 0;
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    file = fopen(path, "re");
    if (!file)
        return 0;
    if (!fgets(comm, sizeof(comm), file))
        comm[0] = '\0';
    fclose(file);
    return strncmp(comm, "detachd", 7) == 0 ? (pid_t)pid : 0;
}

/*
 * Exclusion on the spool: an exclusive flock on DIR/detachd.lock, held by
 * this open file description, which every supervisor inherits.  The lock
 * is free only once detachd and all its jobs' processes are gone, so a
 * restarted detachd waits here (bounded) rather than rerun a job beside
 * the previous run, and a second detachd on the same spool is refused.
 * Returns the descriptor, -1 after saying why.
 */
static int lock_spool(const char *directory)
{
    char path[4096], text[32];
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    int fd, waited_ms = 0, n;
    pid_t owner;

    if (mkdir(directory, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "detachd: spool %s: mkdir: %s\n", directory, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/" SPOOL_LOCK_NAME, directory);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || (fd = move_high(fd)) < 0) {
        fprintf(stderr, "detachd: spool lock %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            fprintf(stderr, "detachd: spool lock %s: %s\n", path, strerror(errno));
            goto fail;
        }
        if ((owner = live_owner(fd)) > 0) {
            fprintf(stderr, "detachd: spool %s is in use by detachd (pid %d): two daemons on one "
                            "spool would run its jobs twice\n", directory, (int)owner);
            goto fail;
        }
        if (waited_ms == 0)
            detach_log(DETACH_LOG_INFO, "spool_lock_wait", "path=%s reason=\"the jobs of a detachd that "
                       "died are still being stopped\" timeout_s=%d", path, SPOOL_LOCK_WAIT_SECONDS);
        if (waited_ms >= SPOOL_LOCK_WAIT_SECONDS * 1000) {
            fprintf(stderr, "detachd: spool %s: still locked after %d s by the processes of an "
                            "earlier detachd's jobs (see fuser %s)\n", directory,
                    SPOOL_LOCK_WAIT_SECONDS, path);
            goto fail;
        }
        nanosleep(&pause, NULL);
        waited_ms += 20;
    }
    if (waited_ms > 0)
        detach_log(DETACH_LOG_INFO, "spool_lock_taken", "path=%s waited_ms=%d", path, waited_ms);
    n = snprintf(text, sizeof(text), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        fprintf(stderr, "detachd: spool lock %s: %s\n", path, strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

/* Signals arrive here as plain events, never in a handler: stopping and
 * reloading are ordinary code.  main ends the thread with a flag and a
 * signal of the set, not pthread_cancel(): a thread cancelled in sigwait()
 * leaves its frame unwound by force, never in the middle of a reload
 * either way, and AddressSanitizer took the frame's stale red zones for a
 * stack underflow as the thread exited. */
static void *signal_thread(void *arg)
{
    struct daemon *daemon = arg;

    while (!atomic_load(&daemon->exiting)) {
        int signal_number;

        if (sigwait(&daemon->signals, &signal_number) != 0 || atomic_load(&daemon->exiting))
            continue;
        if (signal_number == SIGHUP) {
            reload(daemon);
        } else if (signal_number == SIGUSR1) {
            if (detach_log_reopen() < 0)
                detach_log(DETACH_LOG_ERROR, "log_reopen", "error=\"%s\"", strerror(errno));
            else
                detach_log(DETACH_LOG_INFO, "log_reopened", "pid=%d", (int)getpid());
        } else {
            /* Under systemd (Type=notify): the drain starts now. */
            sd_notify(0, "STOPPING=1");
            detach_server_stop(daemon->server);
        }
    }
    return NULL;
}

/* RLIMIT_NOFILE's hard limit, which the start raises the soft one to;
 * an unlimited hard limit means the kernel's own cap, fs.nr_open. */
static unsigned long long descriptor_ceiling(const struct rlimit *limit)
{
    unsigned long long nr_open = 0;
    FILE *file;

    if (limit->rlim_max != RLIM_INFINITY)
        return limit->rlim_max;
    file = fopen("/proc/sys/fs/nr_open", "re");
    if (file) {
        if (fscanf(file, "%llu", &nr_open) != 1)
            nr_open = 0;
        fclose(file);
    }
    return nr_open ? nr_open : 1048576;
}

/*
 * At start: the soft limit goes up to the hard one, so max_jobs jobs get
 * the descriptors the budget counts on (1024, the usual soft limit, is
 * short of 64 jobs' 512 plus a busy web server's connections).  The old
 * and new figures go to the log.  Jobs inherit the raised limit.
 */
static void raise_descriptor_limit(void)
{
    struct rlimit limit;
    unsigned long long old;

    if (getrlimit(RLIMIT_NOFILE, &limit) < 0) {
        detach_log(DETACH_LOG_ERROR, "descriptor_limit", "error=\"getrlimit: %s\"", strerror(errno));
        return;
    }
    old = limit.rlim_cur;
    limit.rlim_cur = descriptor_ceiling(&limit);
    if (old >= limit.rlim_cur) {
        detach_log(DETACH_LOG_INFO, "descriptor_limit", "soft=%llu hard=%llu", old,
                   (unsigned long long)limit.rlim_max);
        return;
    }
    if (setrlimit(RLIMIT_NOFILE, &limit) < 0) {
        detach_log(DETACH_LOG_ERROR, "descriptor_limit", "soft=%llu hard=%llu error=\"setrlimit: %s\"",
                   old, (unsigned long long)limit.rlim_max, strerror(errno));
        return;
    }
    detach_log(DETACH_LOG_INFO, "descriptor_limit", "soft=%llu raised_from=%llu hard=%llu",
               (unsigned long long)limit.rlim_cur, old, (unsigned long long)limit.rlim_max);
}

/* "FILE:LINE: max_jobs = N" or "detachd: --max-jobs N", for messages. */
static void describe_max_jobs(const struct config *config, char *buffer, size_t size)
{
    if (config->max_jobs_line == CONFIG_LINE_FLAG)
        snprintf(buffer, size, "detachd: --max-jobs %u", config->max_jobs);
    else if (config->max_jobs_line > 0)
        snprintf(buffer, size, "%s:%d: max_jobs = %u", config->path, config->max_jobs_line,
                 config->max_jobs);
    else
        snprintf(buffer, size, "%s:%d: max_jobs = %u (the default)", config->path,
                 config->daemon_line > 0 ? config->daemon_line : 1, config->max_jobs);
}

/*
 * The descriptor budget against the hard limit (what the start raises the
 * soft limit to): -1 after printing why when not even one job beside one
 * connection fits, which no load could change; a warning with the figures
 * when all of max_jobs do not fit (the library logs the same at start).
 */
static int check_descriptors(const struct config *config, int warn)
{
    struct rlimit limit;
    detach_descriptor_budget budget;
    char where[PATH_MAX + 64];

    if (getrlimit(RLIMIT_NOFILE, &limit) < 0) {
        fprintf(stderr, "detachd: getrlimit: %s\n", strerror(errno));
        return 0;   /* nothing to judge by; the start logs it */
    }
    detach_descriptor_budget_compute(&budget, descriptor_ceiling(&limit), config->workers,
                                     config->max_jobs, SCRIPT_JOB_DESCRIPTORS);
    if (budget.verdict == DETACH_BUDGET_FITS)
        return 0;
    describe_max_jobs(config, where, sizeof(where));
    if (budget.verdict == DETACH_BUDGET_IMPOSSIBLE) {
        fprintf(stderr, "%s cannot be served: RLIMIT_NOFILE's hard limit %llu leaves no room "
                "for one job (%u descriptors) beside one connection (%s)\n", where,
                budget.limit, SCRIPT_JOB_DESCRIPTORS, budget.figures);
        return -1;
    }
    if (warn)
        fprintf(stderr, "%s needs %llu descriptors, more than RLIMIT_NOFILE's hard limit "
                "%llu: only %u jobs can run at once, the others wait queued (warning; %s)\n", where,
                budget.needed, budget.limit, budget.jobs_at_once, budget.figures);
    return 0;
}

/*
 * What the start refuses beyond the file's syntax, checked the same way
 * by --check-config and by the start (exit 2 either way, the same
 * message): no route, a status_path hiding a route, an unusable spool,
 * a log_file that cannot be opened, a descriptor limit no job fits.
 */
static int check_startable(const struct config *config, int check_only)
{
    char message[2 * PATH_MAX + 256], note[1024];

    if (config_check_serving(config, message, sizeof(message), note, sizeof(note)) < 0 ||
        config_check_spool(config, message, sizeof(message)) < 0 ||
        config_check_log_file(config, message, sizeof(message)) < 0) {
        fprintf(stderr, "%s\n", message);
        return -1;
    }
    if (note[0])
        fprintf(stderr, "%s (warning)\n", note);
    return check_descriptors(config, check_only);
}

/* Where and how event lines go: log, log_file, log_format.  Stderr that
 * is systemd's journal stream means the journal itself, with fields. */
static int config_apply_logging(const struct config *config)
{
    int journal = config->log_target == CONFIG_LOG_JOURNAL ||
                  (config->log_target == CONFIG_LOG_STDERR && !config->log_file &&
                   detach_log_stderr_is_journal());

    detach_log_set_json(config->log_format == CONFIG_LOG_JSON);
    detach_log_set_syslog(config->log_target == CONFIG_LOG_SYSLOG);
    detach_log_set_journal(journal);
    if (config->log_file && config->log_target == CONFIG_LOG_STDERR &&
        detach_log_set_file(config->log_file) < 0) {
        fprintf(stderr, "%s: log_file %s: %s\n", config->path, config->log_file, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "listen", required_argument, NULL, 'l' },
        { "workers", required_argument, NULL, 'w' },
        { "max-jobs", required_argument, NULL, 'j' },
        { "queue", required_argument, NULL, 'q' },
        { "spool", required_argument, NULL, 's' },
        { "check-config", no_argument, NULL, 'C' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct daemon daemon = { .config_path = DEFAULT_CONFIG,
                             .given = { NULL, NULL, -1, -1, -1 },
                             .supervisor = { .lifeline_fd = -1, .lock_fd = -1 },
                             .lifeline = { -1, -1 } };
    struct config *config;
    detach_options server_options;
    char message[1024];
    pthread_t signals;
    struct job_log_pruner *pruner = NULL;
    int check_only = 0, option, status = EXIT_RUNTIME, signals_started = 0;

    while ((option = getopt_long(argc, argv, "c:l:w:j:q:s:Vh", options, NULL)) != -1) {
        switch (option) {
        case 'c': daemon.config_path = optarg; break;
        case 'l': daemon.given.listen = optarg; break;
        case 'w': daemon.given.workers = parse_count("--workers", optarg, 1, 1024); break;
        case 'j': daemon.given.max_jobs = parse_count("--max-jobs", optarg, 1, 100000); break;
        case 'q': daemon.given.queue = parse_count("--queue", optarg, 0, 1000000); break;
        case 's': daemon.given.spool = optarg; break;
        case 'C': check_only = 1; break;
        case 'V': printf("detachd %s\n", DETACH_VERSION); return 0;
        case 'h': fputs(usage_text, stdout); return 0;
        default:
            fputs("Try 'detachd --help'.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "detachd: unexpected argument \"%s\"\nTry 'detachd --help'.\n", argv[optind]);
        return EXIT_USAGE;
    }

    daemon.current = load_generation(daemon.config_path, &daemon.given, &daemon.supervisor);
    if (!daemon.current)
        return EXIT_USAGE;
    config = &daemon.current->config;
    if (check_startable(config, check_only) < 0) {
        status = EXIT_USAGE;
        goto out;
    }
    if (check_only) {
        if (config_check_commands(config, message, sizeof(message)) < 0) {
            fprintf(stderr, "%s\n", message);
            status = EXIT_USAGE;
            goto out;
        }
        /* A broken install, caught before systemd starts the daemon. */
        if (find_supervisor(daemon.supervisor_path, sizeof(daemon.supervisor_path)) < 0) {
            status = EXIT_RUNTIME;
            goto out;
        }
        printf("%s: ok, %zu route%s\n", config->path, config->route_count,
               config->route_count == 1 ? "" : "s");
        status = 0;
        goto out;
    }
    /* Blocked before any thread exists, so every thread inherits it and
     * only sigwait() ever sees these. */
    sigemptyset(&daemon.signals);
    sigaddset(&daemon.signals, SIGTERM);
    sigaddset(&daemon.signals, SIGINT);
    sigaddset(&daemon.signals, SIGHUP);
    sigaddset(&daemon.signals, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &daemon.signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    detach_options_init(&server_options);
    server_options.workers = config->workers;
    server_options.max_jobs = config->max_jobs;
    server_options.queue = config->queue;
    server_options.max_body = config->max_body;
    server_options.drain_timeout = config->drain_timeout;
    server_options.socket_mode = config->socket_mode;
    server_options.socket_owner = config->socket_owner;
    server_options.job_nice = (int)config->job_nice;
    server_options.queue_bytes = config->queue_bytes;
    server_options.job_descriptors = SCRIPT_JOB_DESCRIPTORS;
    server_options.read_timeout_ms = config->read_timeout * 1000;
    server_options.spool = config->spool;
    server_options.status_path = config->status_path;
    if (config->status_allow)
        server_options.status_allow = config->status_allow;
    /* Before the server starts any thread that logs. */
    if (config_apply_logging(config) < 0)
        goto out;
    raise_descriptor_limit();
    if (find_supervisor(daemon.supervisor_path, sizeof(daemon.supervisor_path)) < 0 ||
        open_lifeline(daemon.lifeline) < 0 ||
        (config->spool && (daemon.supervisor.lock_fd = lock_spool(config->spool)) < 0))
        goto out;
    daemon.supervisor.program = daemon.supervisor_path;
    daemon.supervisor.lifeline_fd = daemon.lifeline[0];
    daemon.supervisor.will_retry = config->spool != NULL;
    daemon.server = detach_server_new(config->listen, &server_options);
    if (!daemon.server) {
        fprintf(stderr, "detachd: %s\n", detach_last_error());
        if (errno == EINVAL)
            status = EXIT_USAGE;   /* a malformed --listen address */
        goto out;
    }
    if (detach_server_replace_routes(daemon.server, daemon.current->specs, config->route_count) < 0) {
        fprintf(stderr, "%s: %s\n", config->path, detach_last_error());
        status = EXIT_USAGE;
        goto out;
    }
    if (pthread_create(&signals, NULL, signal_thread, &daemon) != 0) {
        fprintf(stderr, "detachd: cannot start the signal thread\n");
        goto out;
    }
    signals_started = 1;
    if (config->log_dir && config->job_log_keep > 0) {
        pruner = job_log_pruner_start(config->log_dir, config->job_log_keep);
        if (!pruner)
            detach_log(DETACH_LOG_ERROR, "job_log_prune", "dir=%s error=\"cannot start: %s\"",
                       config->log_dir, strerror(errno));
    }
    /* The socket listens and the store is open: systemd may start what
     * comes after us (a no-op without NOTIFY_SOCKET). */
    sd_notify(0, "READY=1");
    if (detach_serve(daemon.server) < 0) {
        fprintf(stderr, "detachd: %s\n", detach_last_error());
        goto out;
    }
    status = 0;
out:
    job_log_pruner_stop(pruner);
    if (signals_started) {
        atomic_store(&daemon.exiting, 1);
        pthread_kill(signals, SIGTERM);   /* pending for it alone: sigwait() returns */
        pthread_join(signals, NULL);
    }
    detach_server_free(daemon.server);
    generation_free(daemon.current);
    /* Last: closing the write end tells any supervisor left that we are gone. */
    for (int i = 0; i < 2; i++)
        if (daemon.lifeline[i] >= 0)
            close(daemon.lifeline[i]);
    if (daemon.supervisor.lock_fd >= 0)
        close(daemon.supervisor.lock_fd);
    return status;
}
