/*
 * job.c - one job's life on its fiber, and the public calls a handler
 * makes about it.
 *
 * The handler runs, then the shutdown callbacks, then an attached
 * response is finished: one place where a job ends, however it ends, so
 * callbacks run exactly once.  Events from outside (the time limit, the
 * peer leaving, a stop at shutdown) arrive on the watcher thread under its
 * lock; they set status bits and, when the job must stop, resume it from
 * detach_sleep() and signal a script's process group.  A C handler sees
 * detach_should_stop().
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/log.h"
#include "base/shutdown.h"
#include "base/timer_heap.h"
#include "base/wakeup.h"
#include "fcgi/fcgi_response.h"
#include "fcgi/request_reader.h"
#include "io/connection.h"
#include "io/watcher.h"
#include "sched/connection_status.h"
#include "sched/executor.h"
#include "sched/job.h"
#include "sched/registry.h"
#include "sched/spool.h"

#define container_of(pointer, type, member) \
    ((type *)((char *)(pointer) - offsetof(type, member)))

struct detach_job {
    struct executor_task task;       /* the executor's part: fiber, parking */
    struct job_env *env;
    const struct job_kind *kind;
    char id[64];
    char *params;                    /* packed (request_reader.h), in the job's block */
    char *body;                      /* in the job's block too; NULL: none */
    size_t body_length;

    struct connection *connection;   /* attached, until the response ends */
    char *headers;                   /* attached: lines not sent yet */
    size_t headers_length;
    int headers_sent;

    struct connection_status status;
    struct shutdown_list shutdown;
    struct timer time_limit;
    /* detach_on_stop()'s hook; watcher lock (the lock every stop takes). */
    detach_stop_fn on_stop;
    void *on_stop_arg;
    int stop_announced;              /* the hook ran, or had no reason to */

    struct registry_entry listing;   /* on the status page while live */
    int listed;
    _Atomic int state;               /* enum job_state */
    uint64_t accepted_unix_ms, started_unix_ms;
    int spooled;                     /* a spool file to remove at the end */
    int retry;                       /* recovered from the spool */
    int handler_done;                /* watcher lock: the handler returned */
    int cut_short;                   /* watcher lock: the server's stop came
                                        while the handler ran */
    uint64_t accepted_ms, started_ms;

    struct wakeup stopped;           /* a stop wakes a detach_sleep() on a thread */
    /* What the status page reads from other threads. */
    pthread_mutex_t report_lock;
    int progress_percent;            /* -1: none reported */
    int exit_code, exit_signal;      /* -1: none */
    char *error;                     /* why the run failed (detach_job_fail); NULL */
    int error_is_static;             /* error is not ours to free */
    /* PROGRESS_MESSAGE_SIZE bytes from the first report on: most jobs
     * report none, and a queued job is all the memory a long queue holds. */
    char *progress_message;
};

enum { PROGRESS_MESSAGE_SIZE = 160 };

static void time_limit_expired(struct timer *timer);

static uint64_t wall_clock_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* The executor sees a job only as a task and these. */
static detach_job *task_job(struct executor_task *task)
{
    return container_of(task, detach_job, task);
}

static void task_run(struct executor_task *task)
{
    dt_job_run(task_job(task));
}

static void task_release(struct executor_task *task)
{
    dt_job_free(task_job(task));
}

static void task_discard(struct executor_task *task)
{
    dt_job_discard(task_job(task));
}

static void task_request_stop(struct executor_task *task)
{
    dt_job_request_stop(task_job(task));
}

static int task_should_stop(struct executor_task *task)
{
    return detach_should_stop(task_job(task));
}

static const char *task_name(struct executor_task *task)
{
    return task_job(task)->id;
}

static const struct executor_ops job_ops = {
    .run = task_run,
    .release = task_release,
    .discard = task_discard,
    .request_stop = task_request_stop,
    .should_stop = task_should_stop,
    .name = task_name,
};

/* Eight lowercase hex digits, as "%08x" would write them, without printf's
 * cost on the ack path. */
static void hex32(char *out, uint32_t value)
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 7; i >= 0; i--, value >>= 4)
        out[i] = digits[value & 0xf];
}

detach_job *dt_job_new(struct job_env *env, const struct job_kind *kind,
                    const char *params, const char *body, size_t body_length,
                    struct connection *connection)
{
    size_t params_bytes = dt_request_params_size(params);
    /* One block: the job, its params, its body (NUL-terminated, as a
     * convenience to handlers that read text). */
    detach_job *job = malloc(sizeof(*job) + params_bytes + (body ? body_length + 1 : 0));
    uint32_t number;

    if (!job) {
        dt_error_set("job: out of memory");
        return NULL;
    }
    memset(job, 0, sizeof(*job));
    job->params = memcpy((char *)(job + 1), params, params_bytes);
    if (body) {
        job->body = memcpy(job->params + params_bytes, body, body_length);
        job->body[body_length] = '\0';
        job->body_length = body_length;
    }
    dt_executor_task_init(&job->task, &job_ops);
    job->task.bytes = params_bytes + (body ? body_length : 0);   /* the queue_bytes budget */
    job->env = env;
    job->kind = kind;
    job->connection = connection;
    /* Seconds first, so ids sort by time and differ across restarts. */
    number = atomic_fetch_add(&env->next_job_number, 1);
    hex32(job->id, (uint32_t)time(NULL));
    hex32(job->id + 8, number);
    job->id[16] = '\0';
    dt_connection_status_init(&job->status, kind->ignore_user_abort);
    dt_shutdown_list_init(&job->shutdown);
    dt_timer_init(&job->time_limit, time_limit_expired);
    job->accepted_ms = dt_monotonic_ms();
    job->accepted_unix_ms = wall_clock_ms();
    atomic_init(&job->state, JOB_QUEUED);
    job->exit_code = job->exit_signal = -1;
    pthread_mutex_init(&job->report_lock, NULL);
    dt_wakeup_init(&job->stopped);
    job->progress_percent = -1;
    return job;
}

void dt_job_free(detach_job *job)
{
    if (!job)
        return;
    dt_shutdown_list_destroy(&job->shutdown);
    pthread_mutex_destroy(&job->report_lock);
    free(job->headers);
    free(job->progress_message);
    if (!job->error_is_static)
        free(job->error);
    free(job);
}

struct executor_task *dt_job_task(detach_job *job)
{
    return &job->task;
}

/* Stops what can be stopped from outside: a sleep in detach_sleep()
 * (parked, or waiting on a thread), and whatever the handler's stop hook
 * stops (detach_on_stop(): a script's process group).  A C handler
 * otherwise polls detach_should_stop().  Watcher lock held. */
static void stop_locked(detach_job *job, const char *reason)
{
    dt_log_line(LOG_INFO, "stopping", "job=%s reason=%s", job->id, reason);
    dt_executor_wake(&job->task);
    dt_wakeup_all(&job->stopped);
    if (!job->stop_announced && job->on_stop) {
        job->stop_announced = 1;
        job->on_stop(job, job->on_stop_arg);
    }
}

static void time_limit_expired(struct timer *timer)
{
    detach_job *job = container_of(timer, detach_job, time_limit);

    dt_log_line(LOG_INFO, "timeout", "job=%s", job->id);
    if (dt_connection_status_timeout(&job->status))
        stop_locked(job, "timeout");
}

void dt_job_abort_locked(detach_job *job)
{
    dt_log_line(LOG_INFO, "aborted", "job=%s ignored=%d", job->id,
             dt_connection_status_ignore_user_abort(&job->status, -1, &(int){0}));
    if (dt_connection_status_abort(&job->status))
        stop_locked(job, "aborted");
}

void dt_job_request_stop(detach_job *job)
{
    dt_watcher_lock(job->env->watcher);
    /* Stopped before its handler returned: the run did not finish, and
     * with a spool the job runs again at the next start. */
    if (!job->handler_done)
        job->cut_short = 1;
    if (dt_connection_status_request_stop(&job->status))
        stop_locked(job, "server_stopping");
    dt_watcher_unlock(job->env->watcher);
}

int detach_on_stop(detach_job *job, detach_stop_fn fn, void *arg)
{
    int stopped;

    dt_watcher_lock(job->env->watcher);
    job->on_stop = fn;
    job->on_stop_arg = arg;
    stopped = dt_connection_status_should_stop(&job->status);
    /* The stop came before the hook did: it runs now, as it would have. */
    if (fn && stopped && !job->stop_announced) {
        job->stop_announced = 1;
        fn(job, arg);
    }
    dt_watcher_unlock(job->env->watcher);
    return fn ? stopped : 0;
}

const char *detach_params(detach_job *job)
{
    return job->params;
}

/* The registry reads a listed job through this (registry lock held). */
static void listing_snapshot(const struct registry_entry *entry, struct dt_job_snapshot *snapshot)
{
    dt_job_snapshot(container_of(entry, detach_job, listing), snapshot);
}

void dt_job_list(detach_job *job)
{
    dt_registry_add(job->env->registry, &job->listing, job->id, listing_snapshot);
    job->listed = 1;
}

void dt_job_unlist(detach_job *job, int rejected)
{
    if (job->listed)
        dt_registry_remove(job->env->registry, &job->listing, rejected);
    job->listed = 0;
}

void dt_job_snapshot(detach_job *job, struct dt_job_snapshot *snapshot)
{
    memset(snapshot, 0, sizeof(*snapshot));
    snprintf(snapshot->id, sizeof(snapshot->id), "%s", job->id);
    snprintf(snapshot->route, sizeof(snapshot->route), "%s", job->kind->path);
    snapshot->mode = job->kind->mode;
    snapshot->state = atomic_load(&job->state);
    snapshot->connection_status = dt_connection_status_bits(&job->status);
    pthread_mutex_lock(&job->report_lock);
    snapshot->exit_code = job->exit_code;
    snapshot->exit_signal = job->exit_signal;
    if (job->error)
        snprintf(snapshot->error, sizeof(snapshot->error), "%s", job->error);
    pthread_mutex_unlock(&job->report_lock);
    snapshot->progress = dt_job_progress(job, snapshot->message, sizeof(snapshot->message));
    snapshot->accepted_unix_ms = job->accepted_unix_ms;
    snapshot->started_unix_ms = job->started_unix_ms;
    snapshot->retry = job->retry;
}

int dt_job_spool(detach_job *job)
{
    struct spool_record record = {
        .accepted_unix_ms = job->accepted_unix_ms,
        .route = job->kind->path,
        .params = job->params,
        .body = job->body,
        .body_length = job->body_length,
    };

    snprintf(record.id, sizeof(record.id), "%s", job->id);
    if (dt_spool_write(job->env->spool, &record) < 0)
        return -1;
    job->spooled = 1;
    return 0;
}

void dt_job_restore(detach_job *job, const char *id, uint64_t accepted_unix_ms)
{
    snprintf(job->id, sizeof(job->id), "%s", id);
    /* Its first acceptance, not this restart; 0 (an old spool file): the
     * restart is all we know. */
    if (accepted_unix_ms)
        job->accepted_unix_ms = accepted_unix_ms;
    job->spooled = 1;
    job->retry = 1;
}

unsigned long long detach_job_elapsed_ms(detach_job *job)
{
    return job->started_ms ? dt_monotonic_ms() - job->started_ms : 0;
}

void detach_job_set_exit(detach_job *job, int exit_code, int exit_signal)
{
    pthread_mutex_lock(&job->report_lock);
    job->exit_code = exit_code;
    job->exit_signal = exit_signal;
    pthread_mutex_unlock(&job->report_lock);
}

int dt_job_progress(detach_job *job, char *message, size_t size)
{
    int percent;

    pthread_mutex_lock(&job->report_lock);
    percent = job->progress_percent;
    if (message && size)
        snprintf(message, size, "%s", job->progress_message ? job->progress_message : "");
    pthread_mutex_unlock(&job->report_lock);
    return percent;
}

/*
 * Attached output: data (may be empty) as STDOUT content, the CGI head in
 * front of it the first time, and the end of the response after it when
 * last is set -- one sendmsg() for an ordinary write, flushed on return.
 */
static int send_output(detach_job *job, const void *data, size_t length, int last)
{
    static const char default_type[] = "Content-Type: text/plain; charset=utf-8\r\n";
    struct fcgi_response *response = dt_connection_response(job->connection);
    struct iovec parts[4];
    size_t count = 0;
    int has_type = 0;

    if (!job->headers_sent) {
        job->headers_sent = 1;
        for (const char *line = job->headers; line && *line; line = strchr(line, '\n') + 1)
            if (strncasecmp(line, "Content-Type:", 13) == 0)
                has_type = 1;
        if (job->headers_length)
            parts[count++] = (struct iovec){ job->headers, job->headers_length };
        if (!has_type)
            parts[count++] = (struct iovec){ (void *)default_type, sizeof(default_type) - 1 };
        parts[count++] = (struct iovec){ "\r\n", 2 };
    }
    if (length)
        parts[count++] = (struct iovec){ (void *)data, length };
    return dt_fcgi_response_writev(response, parts, count, last);
}

static void output_failed(detach_job *job)
{
    dt_watcher_lock(job->env->watcher);
    dt_job_abort_locked(job);
    dt_watcher_unlock(job->env->watcher);
}

/* Ends an attached response and hands the connection back. */
static void end_response(detach_job *job)
{
    struct connection *connection = job->connection;

    if (!connection)
        return;
    dt_connection_unwatch_abort(connection);
    job->connection = NULL;
    if (dt_connection_status_bits(&job->status) & DETACH_ABORTED) {
        dt_connection_forbid_keepalive(connection);
    } else {
        job->connection = connection;   /* send_output writes through it */
        if (send_output(job, NULL, 0, 1) < 0)
            dt_connection_forbid_keepalive(connection);
        job->connection = NULL;
    }
    dt_connection_release(connection);
}

void dt_job_discard(detach_job *job)
{
    struct connection *connection = job->connection;

    dt_job_unlist(job, 0);
    if (job->spooled)
        dt_log_line(LOG_INFO, "kept_in_spool", "job=%s", job->id);
    else
        dt_log_line(LOG_ERROR, "dropped", "job=%s reason=stopping", job->id);
    if (connection) {
        dt_connection_unwatch_abort(connection);
        dt_connection_respond(connection, "503 Service Unavailable", "Retry-After: 1\r\n");
        dt_connection_release(connection);
    }
    dt_job_free(job);
}

/* A non-zero exit, a signal, or detach_job_fail(). */
static int job_failed(detach_job *job)
{
    int failed;

    pthread_mutex_lock(&job->report_lock);
    failed = job->exit_signal >= 0 || job->exit_code > 0 || job->error;
    pthread_mutex_unlock(&job->report_lock);
    return failed;
}

/* The handler returned: from now on a stop does not cut the run short.
 * Returns 1 when one did and the spool keeps the job for the next start. */
static int handler_returned(detach_job *job)
{
    int kept;

    dt_watcher_lock(job->env->watcher);
    job->handler_done = 1;
    kept = job->cut_short && job->spooled;
    dt_watcher_unlock(job->env->watcher);
    return kept;
}

/* Leaves the status page's live list with a last snapshot. */
static void unlist_ended(detach_job *job)
{
    struct dt_job_snapshot final;

    if (!job->listed)
        return;
    atomic_store(&job->state, JOB_ENDED);
    dt_job_snapshot(job, &final);
    final.ended_unix_ms = wall_clock_ms();
    dt_registry_ended(job->env->registry, &job->listing, &final,
                   (double)detach_job_elapsed_ms(job) / 1000.0, job_failed(job));
    job->listed = 0;
}

/* A run cut short by the drain, kept in the spool: no result, it is not
 * over.  Leaves the live list without counting as completed or failed. */
static void unlist_interrupted(detach_job *job)
{
    if (!job->listed)
        return;
    dt_registry_interrupted(job->env->registry, &job->listing);
    job->listed = 0;
}

/* "ended" with the result, or "interrupted" for a run kept for a rerun. */
static void log_end(detach_job *job, int kept)
{
    char exit_field[48] = "", error_field[300] = "", quoted[280];

    if (job->exit_signal >= 0)
        snprintf(exit_field, sizeof(exit_field), " exit_signal=%d", job->exit_signal);
    else if (job->exit_code >= 0)
        snprintf(exit_field, sizeof(exit_field), " exit_code=%d", job->exit_code);
    pthread_mutex_lock(&job->report_lock);
    if (job->error)
        snprintf(error_field, sizeof(error_field), " error=%s",
                 dt_log_quote(quoted, sizeof(quoted), job->error));
    pthread_mutex_unlock(&job->report_lock);
    if (kept)
        dt_log_line(LOG_INFO, "interrupted", "job=%s route=%s reason=drain_timeout will_retry=1 "
                 "connection_status=%d elapsed_ms=%llu%s", job->id, job->kind->path,
                 dt_connection_status_bits(&job->status), detach_job_elapsed_ms(job),
                 exit_field);
    else
        dt_log_line(LOG_INFO, "ended", "job=%s route=%s result=%s connection_status=%d "
                 "elapsed_ms=%llu%s%s", job->id, job->kind->path,
                 job_failed(job) ? "failed" : "ok", dt_connection_status_bits(&job->status),
                 (unsigned long long)detach_job_elapsed_ms(job), exit_field, error_field);
}

void dt_job_run(detach_job *job)
{
    int kept;

    job->started_ms = dt_monotonic_ms();
    job->started_unix_ms = wall_clock_ms();
    atomic_store(&job->state, JOB_RUNNING);
    if (job->listed)
        dt_registry_started(job->env->registry);
    dt_log_line(LOG_INFO, "started", "job=%s route=%s waited_ms=%llu%s", job->id, job->kind->path,
             (unsigned long long)(job->started_ms - job->accepted_ms), job->retry ? " retry=1" : "");
    job->kind->handler(job, job->kind->arg);
    kept = handler_returned(job);
    dt_shutdown_list_run(&job->shutdown, job);
    dt_watcher_lock(job->env->watcher);
    dt_watcher_disarm_locked(job->env->watcher, &job->time_limit);
    job->on_stop = NULL;
    job->on_stop_arg = NULL;
    dt_watcher_unlock(job->env->watcher);
    end_response(job);
    if (kept) {
        /* As a crash would have left it: in the spool, for the next start. */
        log_end(job, 1);
        unlist_interrupted(job);
        return;
    }
    /* Only now is the promise kept: the callbacks ran. */
    if (job->spooled && dt_spool_remove(job->env->spool, job->id) < 0)
        dt_log_line(LOG_ERROR, "spool_remove", "job=%s error=\"%s\"", job->id, detach_last_error());
    log_end(job, 0);
    unlist_ended(job);
}

/* ---- the public API a handler calls ---- */

const char *detach_param(detach_job *job, const char *name)
{
    return dt_request_param(job->params, name);
}

const void *detach_body(detach_job *job, size_t *length)
{
    if (length)
        *length = job->body_length;
    return job->body;
}

const char *detach_job_id(detach_job *job)
{
    return job->id;
}

const char *detach_job_route(detach_job *job)
{
    return job->kind->path;
}

detach_mode detach_job_mode(detach_job *job)
{
    return job->kind->mode;
}

int detach_job_is_retry(detach_job *job)
{
    return job->retry;
}

unsigned detach_job_attempt(detach_job *job)
{
    /* The spool does not count runs yet: a recovered job is on its second. */
    return job->retry ? 2 : 1;
}

void detach_job_fail(detach_job *job, const char *reason)
{
    static const char no_memory[] = "failed (reason dropped: out of memory)";
    char quoted[280];
    int first;

    if (!reason || !*reason)
        reason = "failed";
    pthread_mutex_lock(&job->report_lock);
    first = !job->error;
    if (first) {
        job->error = strdup(reason);
        /* The failure must stand even when its words cannot. */
        if (!job->error) {
            job->error = (char *)no_memory;
            job->error_is_static = 1;
        }
    }
    pthread_mutex_unlock(&job->report_lock);
    if (first)
        dt_log_line(LOG_ERROR, "job_failed", "job=%s error=%s", job->id,
                 dt_log_quote(quoted, sizeof(quoted), reason));
}

const char *detach_job_result(detach_job *job)
{
    return job_failed(job) ? "failed" : "ok";
}

int detach_job_will_retry(detach_job *job)
{
    int will_retry;

    dt_watcher_lock(job->env->watcher);
    /* Before the handler returned nothing is decided. */
    will_retry = job->handler_done && job->cut_short && job->spooled;
    dt_watcher_unlock(job->env->watcher);
    return will_retry;
}

int detach_connection_status(detach_job *job)
{
    return dt_connection_status_bits(&job->status);
}

int detach_connection_aborted(detach_job *job)
{
    return (dt_connection_status_bits(&job->status) & DETACH_ABORTED) != 0;
}

int detach_ignore_user_abort(detach_job *job, int on)
{
    int stop_now;
    int previous = dt_connection_status_ignore_user_abort(&job->status, on, &stop_now);

    if (stop_now) {
        dt_watcher_lock(job->env->watcher);
        stop_locked(job, "aborted");
        dt_watcher_unlock(job->env->watcher);
    }
    return previous;
}

void detach_set_time_limit(detach_job *job, unsigned seconds)
{
    if (seconds == 0)
        dt_watcher_disarm(job->env->watcher, &job->time_limit);
    else
        dt_watcher_arm(job->env->watcher, &job->time_limit, (uint64_t)seconds * 1000);
}

int detach_should_stop(detach_job *job)
{
    return dt_connection_status_should_stop(&job->status);
}

static uint64_t monotonic_ns(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Not parked (sleep_on_thread, a job run on a plain thread, or a thread
 * the handler started itself): the thread waits, and a stop's wake-up
 * ends it.  The stop flag is set before the wake-up, so a sleeper either
 * sees the flag or waits on a word the wake-up changes. */
static void sleep_blocking(detach_job *job, uint64_t deadline_ns)
{
    for (;;) {
        uint32_t seen = dt_wakeup_prepare(&job->stopped);
        uint64_t now = monotonic_ns();
        struct timespec left;

        if (dt_connection_status_should_stop(&job->status) || now >= deadline_ns) {
            dt_wakeup_done(&job->stopped, 0);
            return;
        }
        left.tv_sec = (time_t)((deadline_ns - now) / 1000000000u);
        left.tv_nsec = (long)((deadline_ns - now) % 1000000000u);
        dt_wakeup_done(&job->stopped, dt_wakeup_wait(&job->stopped, seen, &left));
    }
}

int detach_sleep(detach_job *job, unsigned ms)
{
    uint64_t deadline_ns = monotonic_ns() + (uint64_t)ms * 1000000u;

    /* On its fiber the job parks and its thread runs other jobs; parked
     * deadlines are whole milliseconds, rounded up so a sleep is never
     * short. */
    if (dt_executor_sleep(&job->task, (deadline_ns + 999999u) / 1000000u) < 0)
        sleep_blocking(job, deadline_ns);
    if (dt_connection_status_should_stop(&job->status)) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int detach_register_shutdown(detach_job *job, detach_shutdown_fn fn, void *arg)
{
    return dt_shutdown_list_add(&job->shutdown, fn, arg);
}

int detach_header(detach_job *job, const char *line)
{
    size_t length = strlen(line);
    char *grown;

    if (!job->connection) {
        errno = ENOTCONN;
        return dt_error_set("detach_header: job %s has no response to write to", job->id);
    }
    if (job->headers_sent) {
        errno = EALREADY;
        return dt_error_set("detach_header: the response head was already sent");
    }
    if (!strchr(line, ':') || strpbrk(line, "\r\n") || line[0] == ':') {
        errno = EINVAL;
        return dt_error_set("detach_header: \"%s\" is not one \"Name: value\" line", line);
    }
    grown = realloc(job->headers, job->headers_length + length + 3);
    if (!grown)
        return dt_error_set("detach_header: out of memory");
    job->headers = grown;
    memcpy(job->headers + job->headers_length, line, length);
    memcpy(job->headers + job->headers_length + length, "\r\n", 3);
    job->headers_length += length + 2;
    return 0;
}

int detach_write(detach_job *job, const void *data, size_t length)
{
    if (!job->connection) {
        errno = ENOTCONN;
        return dt_error_set("detach_write: job %s has no response to write to", job->id);
    }
    if (dt_connection_status_bits(&job->status) & DETACH_ABORTED) {
        errno = EPIPE;
        return dt_error_set("detach_write: the client of job %s went away", job->id);
    }
    /* Flushed at once: an attached client sees output as it is made. */
    if (send_output(job, data, length, 0) < 0) {
        int saved = errno;
        output_failed(job);
        errno = saved;
        return dt_error_set("detach_write: job %s: %s", job->id, strerror(saved));
    }
    return 0;
}

int detach_finish_request(detach_job *job)
{
    end_response(job);
    return 0;
}

void detach_progress(detach_job *job, int percent, const char *message)
{
    char quoted[200];
    int dropped;

    if (!message)
        message = "";
    if (percent < 0)
        percent = 0;
    if (percent > 100)
        percent = 100;
    pthread_mutex_lock(&job->report_lock);
    job->progress_percent = percent;
    if (!job->progress_message)
        job->progress_message = malloc(PROGRESS_MESSAGE_SIZE);
    dropped = !job->progress_message;
    if (!dropped)
        snprintf(job->progress_message, PROGRESS_MESSAGE_SIZE, "%s", message);
    dt_log_quote(quoted, sizeof(quoted), dropped ? "" : job->progress_message);
    pthread_mutex_unlock(&job->report_lock);
    if (dropped && *message)
        dt_log_line(LOG_ERROR, "progress", "job=%s percent=%d error=\"message dropped: out of memory\"",
                 job->id, percent);
    else
        dt_log_line(LOG_INFO, "progress", "job=%s percent=%d message=%s", job->id, percent, quoted);
}
