/*
 * script.c - running a configured command as a job.
 *
 * The job thread spawns the command and then sleeps in poll() on three
 * things at once: the process's pidfd (it exited), its stdout (attached
 * output to relay, or a trigger job's output to copy into its capped log)
 * and fd 3 (progress lines), and a fourth once the job must stop.  The
 * stop itself comes from elsewhere (a time limit, the client leaving, the
 * server's stop): the hook given to detach_on_stop() sends the process
 * group SIGTERM on the spot and wakes this poll() through an eventfd; if
 * the group is still there kill_grace seconds later, this thread sends
 * SIGKILL.  The hook is removed before the process is reaped, so a
 * recycled process id is never signalled.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "detach.h"
#include "run_protocol.h"
#include "script.h"
#include "script_env.h"

#define HEAD_LIMIT 8192
#define PROGRESS_LINE_LIMIT 512

/* What the shutdown hook needs once the process is gone. */
struct script_run {
    const struct script_route *route;
    int exit_code, exit_signal;
};

/* A stop, seen from the job thread (see the opening comment). */
struct stop_watch {
    pid_t group;            /* the process group the hook signals */
    int fd;                 /* eventfd, readable once the stop came; -1: polled */
    unsigned kill_grace;    /* seconds from SIGTERM to SIGKILL */
};

struct output_relay {
    char head[HEAD_LIMIT];
    size_t head_length;
    int decided;          /* the head question is settled */
};

struct progress_reader {
    char line[PROGRESS_LINE_LIMIT];
    size_t length;
};

/* A trigger job's log with job_log_max: stdout and stderr come through a
 * pipe, and at most max bytes of them reach the file. */
struct log_relay {
    int fd;               /* the log file */
    size_t max, written;
    int truncated;        /* the marker line is out; the rest is dropped */
    char last;            /* the last byte written */
};

/* ---- environment ---- */

/* What a script (and its on_shutdown) sees: the allow-listed params
 * (script_env.h), detachd's DETACH_ variables and PATH, and extra.
 * detachd never changes its own environment, so getenv() is safe here. */
static char **build_environment(detach_job *job, char *const *extra, size_t extra_count)
{
    const struct script_env_run run = {
        .job_id = detach_job_id(job),
        .route = detach_job_route(job),
        .attempt = detach_job_attempt(job),
        .retry = detach_job_is_retry(job),
        .path = getenv("PATH"),
    };

    return script_env_build(detach_params(job), &run, extra, extra_count);
}

/* ---- descriptors ---- */

static int open_job_log(const struct script_route *route, detach_job *job)
{
    char path[4096];
    int fd;

    if (!route->log_dir)
        return fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    snprintf(path, sizeof(path), "%s/%s.log", route->log_dir, detach_job_id(job));
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        detach_log(DETACH_LOG_ERROR, "job_log", "job=%s path=%s error=\"%s\"", detach_job_id(job),
                   path, strerror(errno));
    return fd;
}

/* The body as a seekable file: the child reads it at its own pace and we
 * never juggle a pipe writer beside the output reader. */
static int body_descriptor(detach_job *job)
{
    size_t length;
    const char *body = detach_body(job, &length);
    int fd = memfd_create("detach-body", MFD_CLOEXEC);

    if (fd < 0)
        return -1;
    while (length > 0) {
        ssize_t n = write(fd, body, length);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        body += n;
        length -= (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- spawning ---- */

/* Blocks until a new child reports how its start went: EOF once it runs,
 * an int errno written if it could not.  Closes report. */
static pid_t await_start(pid_t pid, int report)
{
    int child_errno = 0;
    ssize_t n;

    do
        n = read(report, &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    close(report);
    if (n == sizeof(child_errno)) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        errno = child_errno;
        return -1;
    }
    return pid;
}

/* Dropping privileges needs code between fork and exec, which posix_spawn
 * has no room for; only then do we fork.  Each call is checked: a job
 * must never run as root by accident.  The child gets sources[i] as
 * descriptor i (-1: none) and writes an errno to report if it fails. */
static pid_t fork_as_user(const struct script_route *route, char *const argv[],
                          char *const environment[], const int *sources, int count,
                          int block_signals, int report)
{
    pid_t pid = fork();

    if (pid == 0) {
        sigset_t mask;
        int child_errno;
        ssize_t n;

        if (block_signals)
            sigfillset(&mask);
        else
            sigemptyset(&mask);
        for (int signal_number = 1; signal_number < NSIG; signal_number++)
            signal(signal_number, SIG_DFL);
        sigprocmask(SIG_SETMASK, &mask, NULL);
        if (setpgid(0, 0) < 0)
            goto child_fail;
        for (int target = 0; target < count; target++)
            if (sources[target] >= 0 && dup2(sources[target], target) < 0)
                goto child_fail;
        if (setgid(route->gid) < 0 || initgroups(route->user, route->gid) < 0 ||
            setuid(route->uid) < 0)
            goto child_fail;
        execve(argv[0], argv, environment);
child_fail:
        child_errno = errno;
        n = write(report, &child_errno, sizeof(child_errno));
        (void)n;
        _exit(127);
    }
    return pid;
}

/* posix_spawn (vfork-fast) into a new process group, so a stop reaches
 * whatever the child starts; sources as for fork_as_user(). */
static pid_t spawn_group(char *const argv[], char *const environment[], const int *sources,
                         int count, int block_signals)
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    sigset_t mask, all;
    pid_t pid = -1;
    int rc;

    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    for (int target = 0; target < count; target++)
        if (sources[target] >= 0)
            posix_spawn_file_actions_adddup2(&actions, sources[target], target);
    if (block_signals)
        sigfillset(&mask);
    else
        sigemptyset(&mask);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &mask);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawn(&pid, argv[0], &actions, &attributes, argv, environment);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}

/* The command itself as the group leader: what detachd did before it had
 * a supervisor, and what a script_route without one still gets. */
static pid_t spawn_unsupervised(const struct script_route *route, char *const argv[],
                                char *const environment[], const int fds[4])
{
    int report[2];
    pid_t pid;

    if (!(route->user && geteuid() == 0))
        return spawn_group(argv, environment, fds, 4, 0);
    if (pipe2(report, O_CLOEXEC) < 0)
        return -1;
    pid = fork_as_user(route, argv, environment, fds, 4, 0, report[1]);
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        return -1;
    }
    return await_start(pid, report[0]);
}

/* A copy of fd at 10 or above, so that placing descriptors 0..7 in the
 * child can never overwrite it before it is placed itself. */
static int high_copy(int fd)
{
    return fcntl(fd, F_DUPFD_CLOEXEC, 10);
}

/*
 * Starts argv under detach-run (run_protocol.h), which leads the new
 * process group: the returned pid is its, and it exits as the command
 * does.  hook is the route's on_shutdown for a run cut short by detachd's
 * death (NULL for the hook itself), hook_log where it and detach-run
 * write.  Returns once the command runs, or -1 with the errno of what
 * failed (the supervisor's start or the command's).
 */
static pid_t spawn_supervised(const struct script_route *route, char *const argv[],
                              char *const hook[], char *const environment[], const int fds[4],
                              int hook_log)
{
    const struct script_supervisor *supervisor = route->supervisor;
    int report[2] = { -1, -1 }, log_copy = -1, saved;
    char **run_argv = NULL;
    pid_t pid = -1;

    if (!supervisor)
        return spawn_unsupervised(route, argv, environment, fds);
    run_argv = run_argv_build(supervisor->program, route->kill_grace, supervisor->will_retry,
                              hook, argv);
    if (!run_argv || pipe2(report, O_CLOEXEC) < 0)
        goto fail;
    if ((saved = high_copy(report[1])) < 0)
        goto fail;
    close(report[1]);
    report[1] = saved;
    if ((log_copy = high_copy(hook_log >= 0 ? hook_log : fds[2])) < 0)
        goto fail;
    int sources[8] = { fds[0], fds[1], fds[2], fds[3], supervisor->lifeline_fd, report[1],
                       log_copy, supervisor->lock_fd };
    if (route->user && geteuid() == 0)
        pid = fork_as_user(route, (char *const *)run_argv, environment, sources, 8, 1, report[1]);
    else
        pid = spawn_group((char *const *)run_argv, environment, sources, 8, 1);
    if (pid < 0)
        goto fail;
    close(report[1]);
    close(log_copy);
    free(run_argv);
    return await_start(pid, report[0]);
fail:
    saved = errno;
    for (int i = 0; i < 2; i++)
        if (report[i] >= 0)
            close(report[i]);
    if (log_copy >= 0)
        close(log_copy);
    free(run_argv);
    errno = saved;
    return -1;
}

/* on_shutdown: supervised (its leftovers are stopped too) with no hook of
 * its own. */
static pid_t spawn(const struct script_route *route, char *const argv[],
                   char *const environment[], const int fds[4])
{
    return spawn_supervised(route, argv, NULL, environment, fds, -1);
}

/* ---- attached output ---- */

static int is_header_line(const char *line, size_t length)
{
    size_t i = 0;

    while (i < length && (isalnum((unsigned char)line[i]) || line[i] == '-' || line[i] == '_'))
        i++;
    return i > 0 && i < length && line[i] == ':';
}

/* A line still arriving: header-like so far ("Name" or "Name: ...")? */
static int unfinished_line_may_be_header(const char *line, size_t length)
{
    size_t i = 0;

    while (i < length && (isalnum((unsigned char)line[i]) || line[i] == '-' || line[i] == '_'))
        i++;
    return i == length || (i > 0 && line[i] == ':');
}

int script_output_head(const char *data, size_t length, size_t *body_start)
{
    size_t position = 0;

    while (position < length) {
        const char *newline = memchr(data + position, '\n', length - position);
        size_t line_length;

        if (!newline) {
            /* A lone CR after header lines may be the start of the blank line. */
            if (position > 0 && length - position == 1 && data[position] == '\r')
                return -1;
            return unfinished_line_may_be_header(data + position, length - position) ? -1 : 0;
        }
        line_length = (size_t)(newline - (data + position));
        if (line_length > 0 && data[position + line_length - 1] == '\r')
            line_length--;
        if (line_length == 0) {
            if (position == 0)
                return 0;   /* an empty first line is body, not a head */
            *body_start = (size_t)(newline - data) + 1;
            return 1;
        }
        if (!is_header_line(data + position, line_length))
            return 0;
        position = (size_t)(newline - data) + 1;
    }
    return -1;
}

static void send_head(detach_job *job, const char *data, size_t length)
{
    size_t position = 0;

    while (position < length) {
        const char *newline = memchr(data + position, '\n', length - position);
        size_t line_length = (size_t)(newline - (data + position));
        char line[HEAD_LIMIT];

        if (line_length > 0 && data[position + line_length - 1] == '\r')
            line_length--;
        if (line_length > 0) {
            memcpy(line, data + position, line_length);
            line[line_length] = '\0';
            if (detach_header(job, line) < 0)
                detach_log(DETACH_LOG_INFO, "bad_header", "job=%s", detach_job_id(job));
        }
        position = (size_t)(newline - data) + 1;
    }
}

/* Collects the first bytes until they show whether a CGI head leads. */
static void relay_output(detach_job *job, struct output_relay *relay, const char *data,
                         size_t length, int at_end)
{
    size_t body_start = 0;
    int verdict;

    if (relay->decided) {
        if (length)
            detach_write(job, data, length);
        return;
    }
    size_t room = sizeof(relay->head) - relay->head_length;
    size_t taken = length < room ? length : room;
    memcpy(relay->head + relay->head_length, data, taken);
    relay->head_length += taken;
    verdict = script_output_head(relay->head, relay->head_length, &body_start);
    if (verdict < 0 && !at_end && relay->head_length < sizeof(relay->head) && taken == length)
        return;
    relay->decided = 1;
    if (verdict == 1) {
        send_head(job, relay->head, body_start);
    } else {
        body_start = 0;
    }
    if (relay->head_length > body_start)
        detach_write(job, relay->head + body_start, relay->head_length - body_start);
    if (taken < length)
        detach_write(job, data + taken, length - taken);
}

/* ---- progress on fd 3: "PERCENT [message]" lines ---- */

int script_progress_parse(const char *line, int *percent, const char **message)
{
    char *end;
    long value;

    errno = 0;
    value = strtol(line, &end, 10);
    if (end == line || errno || (*end && *end != ' ' && *end != '\t'))
        return -1;   /* not a progress line; ignore rather than guess */
    while (*end == ' ' || *end == '\t')
        end++;
    *percent = value < 0 ? 0 : value > 100 ? 100 : (int)value;
    *message = end;
    return 0;
}

static void progress_line(detach_job *job, char *line)
{
    const char *message;
    int percent;

    if (script_progress_parse(line, &percent, &message) == 0)
        detach_progress(job, percent, message);
}

static void progress_bytes(detach_job *job, struct progress_reader *reader, const char *data,
                           size_t length)
{
    for (size_t i = 0; i < length; i++) {
        if (data[i] == '\n') {
            reader->line[reader->length] = '\0';
            if (reader->length && reader->line[reader->length - 1] == '\r')
                reader->line[reader->length - 1] = '\0';
            progress_line(job, reader->line);
            reader->length = 0;
        } else if (reader->length + 1 < sizeof(reader->line)) {
            reader->line[reader->length++] = data[i];
        }
    }
}

/* ---- capped job log ---- */

static void write_all(int fd, const char *data, size_t length)
{
    while (length > 0) {
        ssize_t n = write(fd, data, length);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;   /* a full disk: the job goes on, its log does not */
        }
        data += n;
        length -= (size_t)n;
    }
}

/* Copies up to the cap, then one marker line; later bytes are read (so
 * the job never blocks on a full pipe) and dropped. */
static void log_relay_bytes(detach_job *job, struct log_relay *log, const char *data,
                            size_t length)
{
    size_t room, taken;
    char marker[96];
    int n;

    if (log->truncated)
        return;
    room = log->max - log->written;
    taken = length < room ? length : room;
    if (taken) {
        write_all(log->fd, data, taken);
        log->written += taken;
        log->last = data[taken - 1];
    }
    if (taken == length)
        return;
    n = snprintf(marker, sizeof(marker), "%s[detach: log truncated at %zu bytes]\n",
                 log->written && log->last != '\n' ? "\n" : "", log->max);
    write_all(log->fd, marker, (size_t)n);
    log->truncated = 1;
    detach_log(DETACH_LOG_INFO, "job_log_truncated", "job=%s bytes=%zu", detach_job_id(job),
               log->max);
}

/* ---- the job ---- */

static int pidfd_for(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Reads what is there into the attached relay, the capped log, or (both
 * NULL) the progress reader; returns 0 at EOF, 1 while open. */
static int read_available(int fd, detach_job *job, struct output_relay *relay,
                          struct log_relay *log, struct progress_reader *reader)
{
    char buffer[16384];
    ssize_t n = read(fd, buffer, sizeof(buffer));

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 1 : 0;
    if (n == 0)
        return 0;
    if (relay)
        relay_output(job, relay, buffer, (size_t)n, 0);
    else if (log)
        log_relay_bytes(job, log, buffer, (size_t)n);
    else
        progress_bytes(job, reader, buffer, (size_t)n);
    return 1;
}

/* detach_on_stop()'s hook: any thread, a libdetach lock held, so it
 * only signals.  The eventfd write cannot block (a counter). */
static void term_group(detach_job *job, void *arg)
{
    struct stop_watch *stop = arg;
    uint64_t one = 1;

    kill(-stop->group, SIGTERM);
    if (stop->fd >= 0 && write(stop->fd, &one, sizeof(one)) < 0) {
        /* EAGAIN only at a counter near 2^64: it is readable already. */
    }
}

static uint64_t now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* poll()'s timeout: until SIGKILL is due, or 100 ms while a stop must be
 * polled for (no eventfd), else none. */
static int poll_timeout(const struct stop_watch *stop, uint64_t kill_due, int stop_seen)
{
    uint64_t now;

    if (kill_due) {
        now = now_ms();
        return kill_due <= now ? 0 : kill_due - now > 60000 ? 60000 : (int)(kill_due - now);
    }
    return stop->fd < 0 && !stop_seen ? 100 : -1;
}

/* Until the process exits: relay output and progress as they come, and
 * SIGKILL for a group still there kill_grace seconds after a stop.
 * output_fd is the attached output (relay) or the capped log's pipe (log). */
static void supervise(detach_job *job, int pidfd, int output_fd, int progress_fd,
                      struct output_relay *relay, struct log_relay *log,
                      struct progress_reader *reader, const struct stop_watch *stop)
{
    struct pollfd fds[4] = {
        { .fd = pidfd, .events = POLLIN },
        { .fd = output_fd, .events = POLLIN },
        { .fd = progress_fd, .events = POLLIN },
        { .fd = stop->fd, .events = POLLIN },
    };
    uint64_t kill_due = 0;   /* monotonic ms; 0: not stopping, or KILL sent */
    int stop_seen = 0;

    for (;;) {
        int ready = poll(fds, 4, poll_timeout(stop, kill_due, stop_seen));

        if (ready < 0) {
            if (errno == EINTR)
                continue;
            detach_log(DETACH_LOG_ERROR, "poll", "job=%s error=\"%s\"", detach_job_id(job),
                       strerror(errno));
            return;
        }
        if (!stop_seen && (fds[3].revents || (stop->fd < 0 && detach_should_stop(job)))) {
            /* The hook sent SIGTERM: the grace starts now. */
            stop_seen = 1;
            fds[3].fd = -1;
            kill_due = now_ms() + (uint64_t)stop->kill_grace * 1000;
            if (!kill_due)
                kill_due = 1;
        }
        if (kill_due && now_ms() >= kill_due) {
            detach_log(DETACH_LOG_INFO, "killing", "job=%s group=%d", detach_job_id(job),
                       (int)stop->group);
            kill(-stop->group, SIGKILL);
            kill_due = 0;
        }
        if (fds[1].revents && !read_available(fds[1].fd, job, relay, log, reader))
            fds[1].fd = -1;
        if (fds[2].revents && !read_available(fds[2].fd, job, NULL, NULL, reader))
            fds[2].fd = -1;
        if (fds[0].revents)
            break;
    }
    /* Exited: take what is already written.  A background child still
     * holding the pipes must not keep the job open (fcgiwrap's bug); what
     * it writes to a capped log's pipe later is lost. */
    for (int i = 1; i < 3; i++) {
        if (fds[i].fd < 0)
            continue;
        fcntl(fds[i].fd, F_SETFL, O_NONBLOCK);
        /* A pipe holds 64 KiB; past 1 MiB it is a background writer that
         * would keep this thread forever. */
        for (int reads = 0; reads < 64 && read_available(fds[i].fd, job, i == 1 ? relay : NULL,
                                                         i == 1 ? log : NULL, reader);
             reads++) {
            struct pollfd probe = { .fd = fds[i].fd, .events = POLLIN };
            if (poll(&probe, 1, 0) <= 0)
                break;
        }
    }
}

static void run_on_shutdown(detach_job *job, void *arg)
{
    struct script_run *run = arg;
    const struct script_route *route = run->route;
    char status[48], exit_info[48], elapsed[48], result[48], will_retry[48];
    char *extra[5] = { status, exit_info, elapsed, result, will_retry };
    char **environment = NULL;
    int fds[4] = { -1, -1, -1, -1 };
    pid_t pid;

    if (!route->on_shutdown_argv)
        goto out;
    snprintf(status, sizeof(status), "DETACH_CONNECTION_STATUS=%d", detach_connection_status(job));
    if (run->exit_signal >= 0)
        snprintf(exit_info, sizeof(exit_info), "DETACH_EXIT_SIGNAL=%d", run->exit_signal);
    else
        snprintf(exit_info, sizeof(exit_info), "DETACH_EXIT_CODE=%d", run->exit_code);
    snprintf(elapsed, sizeof(elapsed), "DETACH_ELAPSED_MS=%llu",
             (unsigned long long)detach_job_elapsed_ms(job));
    snprintf(result, sizeof(result), "DETACH_RESULT=%s", detach_job_result(job));
    snprintf(will_retry, sizeof(will_retry), "DETACH_WILL_RETRY=%d", detach_job_will_retry(job));
    environment = build_environment(job, extra, 5);
    fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    fds[1] = open_job_log(route, job);
    fds[3] = fds[1];
    if (!environment || fds[0] < 0 || fds[1] < 0)
        goto out;
    fds[2] = fds[1];
    pid = spawn(route, route->on_shutdown_argv, environment, fds);
    if (pid < 0) {
        detach_log(DETACH_LOG_ERROR, "on_shutdown", "job=%s error=\"%s: %s\"", detach_job_id(job),
                   route->on_shutdown_argv[0], strerror(errno));
        goto out;
    }
    int wait_status;
    while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR)
        ;
    detach_log(DETACH_LOG_INFO, "on_shutdown_done", "job=%s exit_code=%d", detach_job_id(job),
               WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status));
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    free(environment);
    free(run);
}

/* The job could not be started: it fails, with "what[ subject]: errno" as
 * its reason (in the log and on the status page). */
static void start_failed(detach_job *job, const char *what, const char *subject)
{
    char reason[160];
    int saved = errno;

    snprintf(reason, sizeof(reason), "cannot start: %s%s%s: %s", what, subject ? " " : "",
             subject ? subject : "", strerror(saved));
    detach_job_fail(job, reason);
    /* An attached client waits for an answer: fcgiwrap's for a script it
     * cannot run, rather than an empty 200. */
    if (detach_job_mode(job) == DETACH_ATTACHED && detach_header(job, "Status: 502 Bad Gateway") < 0)
        detach_log(DETACH_LOG_INFO, "bad_header", "job=%s error=\"%s\"", detach_job_id(job),
                   detach_last_error());
    errno = saved;
}

void script_run_job(detach_job *job, void *arg)
{
    const struct script_route *route = arg;
    struct script_run *run = calloc(1, sizeof(*run));
    struct output_relay *relay = NULL;
    struct progress_reader reader = { .length = 0 };
    char **environment = NULL;
    int output_pipe[2] = { -1, -1 }, progress_pipe[2] = { -1, -1 }, log_pipe[2] = { -1, -1 };
    int body_fd = -1, log_fd = -1, pidfd = -1, wait_status = 0;
    struct stop_watch stop = { .group = 0, .fd = -1, .kill_grace = 0 };
    int attached = detach_job_mode(job) == DETACH_ATTACHED;
    /* The cap is for a job's own log file; detachd's stderr is shared. */
    int capped = !attached && route->log_dir && route->job_log_max > 0;
    struct log_relay log_relay = { .fd = -1, .max = route->job_log_max };
    pid_t pid;

    if (!run) {
        detach_job_fail(job, "starting: out of memory");
        return;
    }
    run->route = route;
    run->exit_code = 127;
    run->exit_signal = -1;
    /* Registered first: the hook runs however the rest of this ends. */
    if (detach_register_shutdown(job, run_on_shutdown, run) < 0) {
        detach_job_fail(job, "starting: out of memory");
        free(run);
        return;
    }
    detach_ignore_user_abort(job, route->ignore_user_abort);
    if (route->time_limit)
        detach_set_time_limit(job, route->time_limit);
    if (detach_should_stop(job)) {
        /* Aborted while queued, or the server is stopping (then, with a
         * spool, the job is kept for the next start whatever this says):
         * it never ran, so it did not complete. */
        detach_job_fail(job, detach_connection_aborted(job) ? "aborted before it started"
                                                           : "stopped before it started");
        goto out;
    }

    /* Each step that can fail names itself: the reason is the job's result. */
    if (!(environment = build_environment(job, NULL, 0))) {
        start_failed(job, "environment", NULL);
        goto out;
    }
    if ((body_fd = body_descriptor(job)) < 0) {
        start_failed(job, "request body", NULL);
        goto out;
    }
    if ((log_fd = open_job_log(route, job)) < 0) {
        start_failed(job, "job log", route->log_dir);
        goto out;
    }
    if (pipe2(progress_pipe, O_CLOEXEC) < 0 || (attached && pipe2(output_pipe, O_CLOEXEC) < 0) ||
        (capped && pipe2(log_pipe, O_CLOEXEC) < 0)) {
        start_failed(job, "pipe", NULL);
        goto out;
    }
    if (attached && !(relay = calloc(1, sizeof(*relay)))) {
        start_failed(job, "output relay", NULL);
        goto out;
    }
    log_relay.fd = log_fd;
    int fds[4] = { body_fd, attached ? output_pipe[1] : capped ? log_pipe[1] : log_fd,
                   capped ? log_pipe[1] : log_fd, progress_pipe[1] };
    pid = spawn_supervised(route, route->argv, route->on_shutdown_argv, environment, fds, log_fd);
    if (pid < 0) {
        detach_log(DETACH_LOG_ERROR, "spawn", "job=%s command=%s error=\"%s\"", detach_job_id(job),
                   route->argv[0], strerror(errno));
        start_failed(job, "spawn", route->argv[0]);
        goto out;
    }
    /* Our copies of the child's ends go, so EOF means the child closed them. */
    close(progress_pipe[1]);
    progress_pipe[1] = -1;
    if (attached) {
        close(output_pipe[1]);
        output_pipe[1] = -1;
    }
    if (capped) {
        close(log_pipe[1]);
        log_pipe[1] = -1;
    }
    /* From here a stop signals the group; one that came already does so now. */
    stop.group = pid;
    stop.kill_grace = route->kill_grace;
    stop.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop.fd < 0)
        detach_log(DETACH_LOG_ERROR, "eventfd", "job=%s error=\"%s\" note=\"stop polled\"",
                   detach_job_id(job), strerror(errno));
    detach_on_stop(job, term_group, &stop);
    pidfd = pidfd_for(pid);
    if (pidfd >= 0)
        supervise(job, pidfd, attached ? output_pipe[0] : capped ? log_pipe[0] : -1,
                  progress_pipe[0], relay, capped ? &log_relay : NULL, &reader, &stop);
    else
        detach_log(DETACH_LOG_ERROR, "pidfd_open", "job=%s error=\"%s\"", detach_job_id(job),
                   strerror(errno));
    detach_on_stop(job, NULL, NULL);
    /* A stopped job's leader is gone but not reaped yet, so the group id is
     * still ours: sweep whatever it left behind. */
    if (detach_should_stop(job))
        kill(-pid, SIGKILL);
    while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(wait_status)) {
        run->exit_signal = WTERMSIG(wait_status);
        run->exit_code = -1;
    } else {
        run->exit_code = WEXITSTATUS(wait_status);
    }
    detach_job_set_exit(job, run->exit_code, run->exit_signal);
    if (relay && !relay->decided)
        relay_output(job, relay, "", 0, 1);
out:
    if (stop.fd >= 0)
        close(stop.fd);
    if (pidfd >= 0)
        close(pidfd);
    for (int i = 0; i < 2; i++) {
        if (output_pipe[i] >= 0)
            close(output_pipe[i]);
        if (progress_pipe[i] >= 0)
            close(progress_pipe[i]);
        if (log_pipe[i] >= 0)
            close(log_pipe[i]);
    }
    if (body_fd >= 0)
        close(body_fd);
    if (log_fd >= 0)
        close(log_fd);
    free(relay);
    free(environment);
}
