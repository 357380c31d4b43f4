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
#include "io/connection.h"
#include "sched/job.h"
#include "sched/registry.h"
#include "server/route.h"

struct watcher;
struct worker_pool;
struct executor;
struct connection;
struct spool;

struct server_core {
    detach_options options;           /* every default resolved */
    struct watcher *watcher;
    struct worker_pool *workers;
    struct executor *executor;
    /* Swapped whole on reload; a request matches against one table. */
    _Atomic(struct route_table *) routes;
    struct spool *spool;              /* NULL: no durability promised */
    struct registry registry;         /* for the status page */
    /* What every job shares (job.h): borrowed pointers to the watcher,
     * registry, spool and job memory above, and the id counter. */
    struct job_env jobs;
    /* The connections' share: the watcher, timeouts, the stopping flag,
     * the idle list, and the callbacks into request.c and the workers. */
    struct io_context io;
};

#endif
