/*
 * detach.h - the one public header of libdetach.
 *
 * libdetach lets a FastCGI request trigger a long job: a trigger route is
 * acknowledged with an empty 200 at once and its job runs on, whatever the
 * client does next; an attached route streams the job's output as the
 * response and watches the connection while it runs.  Every job carries a
 * connection status with PHP's semantics (NORMAL 0, ABORTED 1, TIMEOUT 2,
 * bits), ignore_user_abort, set_time_limit and shutdown callbacks.
 *
 * Conventions: every name starts with detach_; types are opaque; functions
 * that can fail return 0 (or a handle) on success and -1 (or NULL) on
 * failure with errno set and a message in detach_last_error().
 */
#ifndef DETACH_H
#define DETACH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DETACH_VERSION "0.1.0"

#if defined(__GNUC__)
#define DETACH_API __attribute__((visibility("default")))
#define DETACH_PRINTF(fmt_index, first_index) \
    __attribute__((format(printf, fmt_index, first_index)))
#else
#define DETACH_API
#define DETACH_PRINTF(fmt_index, first_index)
#endif

/* Connection status bits, as PHP's connection_status(). */
enum { DETACH_NORMAL = 0, DETACH_ABORTED = 1, DETACH_TIMEOUT = 2 };

typedef enum {
    DETACH_TRIGGER,  /* 200 at once, the job runs detached from the client */
    DETACH_ATTACHED  /* the job's output is the response */
} detach_mode;

typedef struct detach_server detach_server;
typedef struct detach_job detach_job;

/*
 * ---- Ownership and lifetimes (stated once, for every call below) ----
 *
 * Route arg: the `arg` of detach_route() and of a detach_route_spec is
 *   the caller's.  The library only passes it to the handler; it must
 *   outlive the server (detach_server_free()), since jobs admitted under
 *   a route replaced by detach_server_replace_routes() may still run with
 *   it.  The route path is copied.
 * Job pointer: a detach_job * is valid from the handler's call until the
 *   job's last shutdown callback has returned (so in the handler, in
 *   detach_register_shutdown() callbacks and in a detach_on_stop() hook);
 *   never keep it past that.  The library frees the job.
 * Strings a job returns: detach_param(), detach_params(), detach_body(),
 *   detach_job_id() and detach_job_route() point into memory the job (or
 *   its server) owns: read-only, valid as long as the job pointer is.
 *   detach_job_result() returns a static string.  Copy what must live on.
 * Strings a job is given: detach_job_fail()'s reason, detach_progress()'s
 *   message, detach_header()'s line and detach_write()'s data are copied
 *   before the call returns.
 * Options: the strings in detach_options (socket_owner, spool,
 *   status_path, status_allow) are copied by detach_server_new(); the
 *   caller's may go once it returns.  The struct itself is read only
 *   during the call.
 * detach_last_error(): a thread-local buffer the library owns, holding the
 *   message of this thread's last failure; valid until the next call into
 *   the library on this thread (one that fails overwrites it).
 * detach_log_quote() returns the caller's buf.  Anything the library
 *   mallocs for the caller says so at its declaration (detach_trigger_url_
 *   with_path() in detach_trigger.h): the caller frees it with free().
 */

typedef void (*detach_handler)(detach_job *job, void *arg);
typedef void (*detach_shutdown_fn)(detach_job *job, void *arg);

/*
 * Server options.  Start from detach_options_init(), which fills in every
 * default, then change what you need; NULL means all defaults.
 *
 * The struct can grow: fields are only ever added at its end, and `size`,
 * which detach_options_init() sets to sizeof(detach_options) as the
 * caller was compiled, tells the library how many of them the caller
 * knows.  Fields past `size` take their defaults, so a program built
 * against an older, smaller detach_options keeps working with a newer
 * library.  detach_server_new() refuses (EINVAL) options whose size is 0:
 * they did not come from detach_options_init().
 *
 * The strings (socket_owner, spool, status_path, status_allow) are copied
 * by detach_server_new(): the caller's may go once it returns.
 */
typedef struct detach_options {
    size_t size;               /* set by detach_options_init(); see above */
    unsigned workers;          /* threads answering what may block (spool, status page, refusals): 4 */
    unsigned max_jobs;         /* jobs running at once: 64 */
    unsigned queue;            /* jobs waiting beyond max_jobs: 1024; 0 none */
    size_t max_body;           /* largest request body in bytes: 1 MiB */
    unsigned read_timeout_ms;  /* whole-request read deadline: 10000 */
    unsigned idle_timeout_ms;  /* idle kept-alive connection: 75000 */
    unsigned drain_timeout;    /* seconds jobs get to finish on stop: 30 */
    unsigned socket_mode;      /* unix socket permissions: 0660 */
    const char *socket_owner;  /* unix socket "user" or "user:group"; NULL */
    int log_level;             /* 0 events, 1 also debug, -1 errors only */
    int job_nice;              /* niceness of job threads and their scripts: 10;
                                  0 keeps the caller's.  Acks stay fast while
                                  jobs keep the CPUs busy */
    int sleep_on_thread;       /* 0: a job in detach_sleep() is parked and
                                  holds no thread; 1: it keeps its thread,
                                  blocked, for code that holds a lock
                                  across the sleep.  0 */
    int fiber_migrate;         /* 0: a parked job goes on on the job thread
                                  it started on (thread-locals, errno and
                                  pthread_self() hold across detach_sleep()),
                                  once that thread is free: a job blocking
                                  its thread for long delays the jobs
                                  parked there.  1: on any free job thread,
                                  so sooner, but nothing bound to a thread
                                  may be kept across detach_sleep().  0 */
    const char *spool;         /* directory: triggers survive a crash; NULL */
    const char *status_path;   /* e.g. "/detach-status"; NULL: no status page */
    const char *status_allow;  /* REMOTE_ADDRs allowed, space-separated,
                                  "10.0.0.0/8" ranges too: "127.0.0.1 ::1" */
    size_t queue_bytes;        /* params + body of all queued jobs, at most:
                                  64 MiB.  A trigger that would go past it
                                  gets 503 with Retry-After, as with a full
                                  queue; a job always fits an empty queue */
    unsigned job_descriptors;  /* descriptors one running job holds at most
                                  (files, sockets, pipes it opens): 4.
                                  max_jobs of them are kept free for jobs:
                                  connections are closed at once rather
                                  than take them */
} detach_options;

/* Fills every default into the first `size` bytes and sets options->size;
 * call it as detach_options_init(&options), which passes the caller's
 * sizeof. */
DETACH_API void detach_options_init_sized(detach_options *options, size_t size);
#define detach_options_init(options) detach_options_init_sized((options), sizeof *(options))

/*
 * listen: "unix:/path", "127.0.0.1:9000", "[::1]:9000", or NULL for a
 * listening socket inherited on fd 0 (spawn-fcgi, systemd).
 */
DETACH_API detach_server *detach_server_new(const char *listen, const detach_options *opts);

/*
 * Routes are matched on the request path: "/jobs/report" exactly, or
 * "/jobs/" followed by "*" for every path under "/jobs/".  A trigger route defaults to
 * ignore_user_abort on, an attached one to off.
 */
DETACH_API int detach_route(detach_server *server, const char *path, detach_mode mode,
                 detach_handler handler, void *arg);

/*
 * Replaces every route at once, also while serving (detachd's SIGHUP): a
 * request sees the old table or the new one, never a mix; running and
 * queued jobs keep the route they were admitted with.
 */
typedef enum {
    DETACH_ABORT_DEFAULT,   /* trigger: ignore; attached: stop */
    DETACH_ABORT_IGNORE,    /* ignore_user_abort on from admission */
    DETACH_ABORT_STOP       /* ignore_user_abort off from admission */
} detach_abort_policy;

/*
 * The spec can grow too: fields are only ever added at its end, and the
 * library walks the array with the caller's sizeof(detach_route_spec),
 * which detach_server_replace_routes() passes for you (spec_size): fields
 * past it take their defaults (on_abort: DETACH_ABORT_DEFAULT), so a
 * program built against an older, smaller spec keeps working.  The path
 * is copied; `arg` is the caller's, see "Ownership and lifetimes".
 */
typedef struct detach_route_spec {
    const char *path;
    detach_mode mode;
    detach_handler handler;
    void *arg;
    /* From the moment a job is admitted: a client that leaves while the
     * job still waits in the queue is judged by it too. */
    detach_abort_policy on_abort;
} detach_route_spec;
DETACH_API int detach_server_replace_routes_sized(detach_server *server,
                                                  const detach_route_spec *routes, size_t count,
                                                  size_t spec_size);
#define detach_server_replace_routes(server, routes, count) \
    detach_server_replace_routes_sized((server), (routes), (count), sizeof *(routes))

/* Serves until detach_server_stop(); 0 after a clean stop and drain. */
DETACH_API int detach_serve(detach_server *server);

/* Async-signal-safe: call it from a SIGTERM handler. */
DETACH_API void detach_server_stop(detach_server *server);
DETACH_API void detach_server_free(detach_server *server);

/* The request, as the job sees it.  NULL when absent. */
DETACH_API const char *detach_param(detach_job *job, const char *name);
DETACH_API const void *detach_body(detach_job *job, size_t *len);
DETACH_API const char *detach_job_id(detach_job *job);
DETACH_API const char *detach_job_route(detach_job *job);
DETACH_API detach_mode detach_job_mode(detach_job *job);
/* 1 when this run is a retry: the job was spooled and detach restarted
 * before it ended (delivery is at least once). */
DETACH_API int detach_job_is_retry(detach_job *job);
/* Which run of the job this is: 1 for the first, 2 for a rerun. */
DETACH_API unsigned detach_job_attempt(detach_job *job);

/*
 * Says this run failed, and why: a handler that could not do its work (a
 * script that could not be started, a resource it could not get) calls it
 * before it returns.  The job then ends "failed" however the handler ends,
 * never counted as completed, with reason in the log ("job_failed", and
 * error= on "ended") and as "error" on the status page.  The first reason
 * given is kept; NULL or "" says "failed".  Any thread, while the job runs
 * or in its shutdown callbacks.
 */
DETACH_API void detach_job_fail(detach_job *job, const char *reason);
/*
 * For shutdown callbacks: how this run ended, "ok" or "failed" (a
 * detach_job_fail(), or a script's non-zero exit or signal); and 1 when
 * another run of the job is scheduled: the server's stop cut this run short
 * and the spool keeps the job for the next start (0 before the handler
 * returned).
 */
DETACH_API const char *detach_job_result(detach_job *job);
DETACH_API int detach_job_will_retry(detach_job *job);

/* The connection-status tracker. */
DETACH_API int detach_connection_status(detach_job *job);
DETACH_API int detach_connection_aborted(detach_job *job);
/* on: 1 or 0 sets it, -1 only queries; returns the previous setting. */
DETACH_API int detach_ignore_user_abort(detach_job *job, int on);
/* Seconds from now; 0 means no limit.  A second call restarts the clock. */
DETACH_API void detach_set_time_limit(detach_job *job, unsigned seconds);
/* True once the job was asked to stop (timeout, or abort not ignored). */
DETACH_API int detach_should_stop(detach_job *job);
/*
 * Sleeps up to ms milliseconds, waking at once when the job is asked to
 * stop: 0 after the full sleep, -1 with ECANCELED when stopped.  A job that
 * waits this way costs no wake-ups, where a loop of short sleeps checking
 * detach_should_stop() costs one per nap.
 *
 * The sleeping job holds no thread: its stack is parked, so thousands of
 * jobs may sleep at once on a few threads.  It goes on on the job thread
 * it started on, so thread-local variables, errno and pthread_self() hold
 * across the call; a mutex held across it does not (another job runs on
 * the thread meanwhile): detach_options.sleep_on_thread = 1 keeps the
 * thread blocked instead.  With detach_options.fiber_migrate = 1 the job
 * goes on on whichever job thread is free first, and then nothing bound
 * to a thread may be kept across the call (a compiler may keep errno's
 * address across it: set and read errno on the same side).
 */
DETACH_API int detach_sleep(detach_job *job, unsigned ms);
/*
 * Runs once after the handler returns, however the job ends, in the order
 * registered; a callback may register another, which then runs too.
 */
DETACH_API int detach_register_shutdown(detach_job *job, detach_shutdown_fn fn, void *arg);

/*
 * Attached mode output.  detach_header() adds a CGI header line
 * ("Status: 404 Not Found", "Content-Type: text/html") before the first
 * detach_write(); without one the response is 200 text/plain.  A failed
 * write marks the job ABORTED.  In trigger mode, or after
 * detach_finish_request(), both fail with ENOTCONN.
 */
DETACH_API int detach_header(detach_job *job, const char *line);
DETACH_API int detach_write(detach_job *job, const void *data, size_t len);
/* Ends the response now and lets the job run on, like fastcgi_finish_request(). */
DETACH_API int detach_finish_request(detach_job *job);

/* Progress for the logs and the status page; percent is clamped to 0..100. */
DETACH_API void detach_progress(detach_job *job, int percent, const char *message);

/* The message of the last failure in this thread. */
DETACH_API const char *detach_last_error(void);

/*
 * ---- For handlers that run a process ----
 *
 * What detachd's scripts need beyond the calls above; any handler that
 * starts a process group may use them the same way.
 */

/*
 * Every request param at once, packed: "NAME=value" strings one after the
 * other, each '\0'-ended, the last followed by an empty string.  Walk them
 * with  for (const char *p = detach_params(job); *p; p += strlen(p) + 1).
 * HTTP_PROXY is never among them (httpoxy).  Owned by the job: valid until
 * its last shutdown callback returns.
 */
DETACH_API const char *detach_params(detach_job *job);
/* Milliseconds since the job started running (monotonic); 0 before. */
DETACH_API unsigned long long detach_job_elapsed_ms(detach_job *job);
/*
 * How the job's process ended: exit_code (0..255, or -1 when a signal
 * ended it) and exit_signal (-1 when none).  Shown as exit_code= or
 * exit_signal= on "ended" and as "exit" on the status page; a non-zero code
 * or a signal makes the result "failed".  Any thread, while the job runs.
 */
DETACH_API void detach_job_set_exit(detach_job *job, int exit_code, int exit_signal);

typedef void (*detach_stop_fn)(detach_job *job, void *arg);
/*
 * A hook for the job's first stop request (a timeout, an abort not
 * ignored, the server's stop): fn(job, arg) runs once, on the thread that
 * asks for the stop (often the server's event thread) with an internal
 * lock held, so it must only signal -- kill(), a write to an eventfd --
 * and return at once, never block or call back into libdetach.  When the
 * stop came already, fn runs from this call before it returns, and the
 * call returns 1; otherwise 0.  fn NULL removes the hook: once that call
 * returns, fn is not running and never runs again, so arg may be freed.
 * The hook goes by itself once the shutdown callbacks ran.  One hook per
 * job; a second call replaces the first.
 */
DETACH_API int detach_on_stop(detach_job *job, detach_stop_fn fn, void *arg);

/*
 * ---- The server's log, for programs built on libdetach ----
 *
 * One line per event, "ts=... level=info event=NAME key=value ...", in
 * the order of the calls, never interleaved: a program's own events join
 * the library's in one stream.
 */
enum { DETACH_LOG_ERROR = -1, DETACH_LOG_INFO = 0, DETACH_LOG_DEBUG = 1 };

/* fields: printf-style "key=value key2=%s"; quote values that may hold
 * spaces with detach_log_quote().  Levels above detach_options.log_level
 * of the server are dropped. */
DETACH_API void detach_log(int level, const char *event, const char *fields, ...)
    DETACH_PRINTF(3, 4);
/* s as a logfmt value in buf (size bytes): bare when safe, else quoted
 * and escaped, cut to fit.  Returns buf (or a constant for size < 3). */
DETACH_API const char *detach_log_quote(char *buf, size_t size, const char *s);
/*
 * Where lines go; each is set once at start, before any thread logs.
 * json: one JSON object per line instead of logfmt.  syslog: to syslog(3)
 * as "detachd", LOG_DAEMON.  journal: to the systemd journal, one entry
 * per line with each field as its own.  detach_log_stderr_is_journal():
 * 1 when stderr is the journal stream systemd gave the process.
 * detach_log_set_file(): stderr pointed at path (appended, created 0640),
 * and detach_log_reopen() opens it again after logrotate moved it (a
 * no-op without a file); both 0, or -1 with errno.
 */
DETACH_API void detach_log_set_json(int on);
DETACH_API void detach_log_set_syslog(int on);
DETACH_API void detach_log_set_journal(int on);
DETACH_API int detach_log_stderr_is_journal(void);
DETACH_API int detach_log_set_file(const char *path);
DETACH_API int detach_log_reopen(void);

/*
 * ---- Checking a configuration before serving it ----
 */

/* Why no request could ever match path ("dot_segment", "backslash",
 * "encoded_separator"), or NULL when it is a fine route path. */
DETACH_API const char *detach_route_path_refusal(const char *path);
/* 0 when every address or range of a status_allow list parses; -1 with
 * the bad entry at *bad (into list, *bad_length bytes). */
DETACH_API int detach_allow_list_valid(const char *list, const char **bad, int *bad_length);

enum { DETACH_BUDGET_FITS, DETACH_BUDGET_SHORT, DETACH_BUDGET_IMPOSSIBLE };
typedef struct detach_descriptor_budget {
    int verdict;                 /* FITS: max_jobs jobs and the connections fit;
                                    SHORT: only jobs_at_once jobs run at once;
                                    IMPOSSIBLE: not one job beside one connection */
    unsigned long long limit;    /* RLIMIT_NOFILE as given */
    unsigned long long needed;   /* descriptors for all of it */
    unsigned jobs_at_once;
    char figures[256];           /* "limit=N needed=N own=N ...", for messages */
} detach_descriptor_budget;
/*
 * The descriptor budget detach_serve() applies (and logs) at start, ahead
 * of time: limit is RLIMIT_NOFILE's soft limit (~0ULL for none); the
 * server's own descriptors are estimated.
 */
DETACH_API void detach_descriptor_budget_compute(detach_descriptor_budget *budget,
                                                 unsigned long long limit, unsigned workers,
                                                 unsigned max_jobs, unsigned job_descriptors);

/* The trigger client, detach_trigger(), is in <detach_trigger.h> and its own
 * library, libdetach-trigger (pkg-config detach-trigger). */

#ifdef __cplusplus
}
#endif

#endif /* DETACH_H */
