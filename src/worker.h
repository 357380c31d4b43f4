/*
 * worker.h - the worker threads that read and answer requests.
 *
 * A worker gets a connection only once it is readable, reads one request,
 * admits or refuses its job and answers; it never runs a job and never
 * waits for one, so acks stay fast however many jobs run.
 */
#ifndef DETACH_WORKER_H
#define DETACH_WORKER_H

struct server_core;
struct connection;

struct worker_pool *worker_pool_new(struct server_core *core, unsigned count);
/* Hands a readable connection to the next free worker; never blocks. */
void worker_pool_push(struct worker_pool *pool, struct connection *connection);
/* Finishes the requests in hand, closes the ones still queued, joins. */
void worker_pool_free(struct worker_pool *pool);

/* One request on a readable connection (request.c). */
void request_serve(struct server_core *core, struct connection *connection);

#endif
