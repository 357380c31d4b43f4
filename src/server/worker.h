/*
 * worker.h - the worker threads that read and answer requests.
 *
 * A worker gets a connection whose request the watcher has read whole
 * when answering it may block (a spool write, the status
 * page, a refusal, an attached job's start).  It never runs a job and
 * never waits for one.
 */
#ifndef DETACH_WORKER_H
#define DETACH_WORKER_H

struct server_core;
struct connection;

struct worker_pool *dt_worker_pool_new(struct server_core *core, unsigned count);
/* Hands a connection with a whole request to the next free worker; never blocks. */
void dt_worker_pool_push(struct worker_pool *pool, struct connection *connection);
/*
 * Finishes the requests in hand, closes the ones still queued, joins; a
 * connection pushed later is closed at once.  The pool is freed only
 * after the watcher thread, which pushes, is gone.
 */
void dt_worker_pool_stop(struct worker_pool *pool);
void dt_worker_pool_free(struct worker_pool *pool);

#endif
