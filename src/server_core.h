/*
 * server_core.h - what the modules of one server share.
 *
 * detach_server (server.c) owns every part; the others get this context
 * so that no module reaches for global state.
 */
#ifndef DETACH_SERVER_CORE_H
#define DETACH_SERVER_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "detach.h"
#include "registry.h"
#include "route.h"

struct watcher;
struct worker_pool;
struct executor;
struct connection;
struct spool;
struct job_memory;

struct server_core {
    detach_options options;           /* every default resolved */
    struct watcher *watcher;
    struct worker_pool *workers;
    struct executor *executor;
    struct job_memory *job_memory;    /* every job's block */
    /* Swapped whole on reload; a request matches against one table. */
    _Atomic(struct route_table *) routes;
    struct spool *spool;              /* NULL: no durability promised */
    struct registry registry;         /* for the status page */
    _Atomic uint32_t next_job_number; /* job ids; seeded at random per start */
    _Atomic int stopping;             /* no new requests, no keep-alive */
    /* Connections only the watcher holds (waiting for their next request,
     * or lingering before a close), so a stop can close them; guarded by
     * the watcher lock. */
    struct connection *idle_connections;
    /* Open connections: counted up by the listener as it accepts one,
     * down as connection.c frees one.  The listener's cap keeps them
     * within the descriptor budget (fd_budget.h). */
    _Atomic unsigned long long connections;
};

#endif
