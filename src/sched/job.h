/*
 * job.h - one job: its request, connection status, time limit, stop
 * request and shutdown callbacks.  The struct body lives in job.c.
 *
 * A job is created from a request (by the watcher or a worker), queued by
 * the executor, run on a fiber of its own carried by job threads
 * (dt_job_run), and freed by the executor once its shutdown callbacks ran.
 * The watcher touches it only through its timers and, in attached mode,
 * its connection's watch, always under the watcher lock.
 */
#ifndef DETACH_JOB_H
#define DETACH_JOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "detach.h"

struct connection;
struct watcher;
struct registry;
struct spool;

/*
 * What kind of job to run: a route's part that a job reads (route.h
 * embeds one).  Borrowed: it must outlive every job made from it (route
 * tables are retired, not freed, while jobs may use them).
 */
struct job_kind {
    char *path;                      /* the route as configured */
    detach_mode mode;
    int ignore_user_abort;           /* a new job's setting */
    detach_handler handler;
    void *arg;
};

/*
 * What the jobs of one server share; the server owns it and the objects
 * it points to (borrowed here), and it outlives every job.  spool NULL:
 * no durability promised.
 */
struct job_env {
    struct watcher *watcher;         /* timers, and the lock a stop takes */
    struct registry *registry;       /* the status page's ledger */
    struct spool *spool;
    _Atomic uint32_t next_job_number;   /* job ids; seeded at random per start */
};

/*
 * params: packed "NAME=value" strings (dt_request_reader_params()); body:
 * NULL when the request had none.  Both are copied into the job's one
 * malloc()ed block, the caller keeps its own.  connection: the one an
 * attached job answers on, NULL for a trigger job.
 */
detach_job *dt_job_new(struct job_env *env, const struct job_kind *kind,
                    const char *params, const char *body, size_t body_length,
                    struct connection *connection);
void dt_job_free(detach_job *job);
/* A job that will never run (dropped at stop): answers an attached job's
 * client with 503 and frees. */
void dt_job_discard(detach_job *job);

/* The executor's part of the job (executor.h). */
struct executor_task *dt_job_task(detach_job *job);

/* On the job's fiber: the handler, then shutdown callbacks, then the end. */
void dt_job_run(detach_job *job);

/*
 * Spool: dt_job_spool() writes the job durably (before its 200); a job found
 * in the spool at start gets its old id back with dt_job_restore().  Either
 * way the spool file goes once the shutdown callbacks ran.
 */
int dt_job_spool(detach_job *job);
void dt_job_restore(detach_job *job, const char *id, uint64_t accepted_unix_ms);

/* Called with the watcher lock held: the peer went away. */
void dt_job_abort_locked(detach_job *job);

/* Asks the job to stop (the server is stopping): as a timeout would,
 * without setting a status bit. */
void dt_job_request_stop(detach_job *job);

struct dt_job_snapshot;
/* Admission: the job is listed as queued on the status page.  Undone with
 * dt_job_unlist() when the executor refuses it after all. */
void dt_job_list(detach_job *job);
void dt_job_unlist(detach_job *job, int rejected);
/* Copies what the status page shows; safe from any thread while listed. */
void dt_job_snapshot(detach_job *job, struct dt_job_snapshot *snapshot);

/* Progress as last reported (percent -1 when none). */
int dt_job_progress(detach_job *job, char *message, size_t size);

#endif
