/*
 * request.h - what a whole request asks for, and its answer.
 *
 * The watcher reads every request (connection.c).  Most of them -- a
 * trigger admitted or refused for a full queue -- are answered at once on
 * the watcher thread; the rest go to a worker, which answers with
 * fcgi_response.c's blocking writes.
 */
#ifndef DETACH_REQUEST_H
#define DETACH_REQUEST_H

struct server_core;
struct connection;

/*
 * Watcher thread, the lock not held: answers the request just read when
 * that needs no waiting.  1: answered, the connection is
 * gone on (waiting for the next request, or closed); 0: a worker's.
 */
int dt_request_serve_at_once(struct server_core *core, struct connection *connection);

/* A worker: answers the request read whole, then releases the connection. */
void dt_request_serve(struct server_core *core, struct connection *connection);

#endif
