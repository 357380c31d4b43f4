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
#else
#define DETACH_API
#endif

/* Connection status bits, as PHP's connection_status(). */
enum { DETACH_NORMAL = 0, DETACH_ABORTED = 1, DETACH_TIMEOUT = 2 };

typedef enum {
    DETACH_TRIGGER,  /* 200 at once, the job runs detached from the client */
    DETACH_ATTACHED  /* the job's output is the response */
} detach_mode;

typedef struct detach_server detach_server;
typedef struct detach_job detach_job;

typedef void (*detach_handler)(detach_job *job, void *arg);
typedef void (*detach_shutdown_fn)(detach_job *job, void *arg);

/*
 * Server options.  Start from detach_options_init(), which fills in every
 * default, then change what you need; NULL means all defaults.
 */
typedef struct detach_options {
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
                                  holds no thread, and may go on on another
                                  job thread afterwards; 1: it keeps its
                                  thread, blocked, for code that needs one
                                  thread throughout (thread-local state,
                                  pthread_self(), a lock held across the
                                  sleep).  0 */
    const char *spool;         /* directory: triggers survive a crash; NULL */
    const char *status_path;   /* e.g. "/detach-status"; NULL: no status page */
    const char *status_allow;  /* REMOTE_ADDRs allowed, space-separated,
                                  "10.0.0.0/8" ranges too: "127.0.0.1 ::1" */
    size_t job_memory;         /* bytes of job memory (a job, queued or
                                  running, takes about 1 KiB) faulted in at
                                  start and always kept: a queue growing
                                  within it takes no new memory on the ack
                                  path.  0: taken as needed */
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

DETACH_API void detach_options_init(detach_options *options);

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

typedef struct detach_route_spec {
    const char *path;
    detach_mode mode;
    detach_handler handler;
    void *arg;
    /* From the moment a job is admitted: a client that leaves while the
     * job still waits in the queue is judged by it too. */
    detach_abort_policy on_abort;
} detach_route_spec;
DETACH_API int detach_server_replace_routes(detach_server *server, const detach_route_spec *routes,
                                            size_t count);

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
 * The sleeping job holds no thread: its stack is parked, and it goes on
 * on whichever job thread is free, so thousands of jobs may sleep at once
 * on a few threads.  So nothing bound to a thread may be kept across the
 * call: thread-local variables, pthread_self(), a mutex held, or errno
 * (a compiler may keep errno's or pthread_self()'s address across a call,
 * so set and read errno on the same side of a detach_sleep(), or in a
 * function of its own).  detach_options.sleep_on_thread = 1 keeps a
 * sleeping job on its thread instead.
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

/* The trigger client, detach_trigger(), is in <detach_trigger.h> and its own
 * library, libdetach-trigger (pkg-config detach-trigger). */

#ifdef __cplusplus
}
#endif

#endif /* DETACH_H */
