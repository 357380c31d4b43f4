/*
 * server.c - detach_server: builds the parts, serves, and takes them down
 * in the order that loses nothing.
 *
 * Stop order: stop accepting; let workers finish the requests in hand;
 * close idle connections; drain jobs (up to drain_timeout, then ask them
 * to stop and wait for their shutdown callbacks); only then free.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"
#include "io/connection.h"
#include "io/listener.h"
#include "io/watcher.h"
#include "sched/executor.h"
#include "sched/job.h"
#include "sched/spool.h"
#include "server/fd_budget.h"
#include "server/request.h"
#include "server/server_core.h"
#include "server/worker.h"

struct detach_server {
    struct server_core core;
    pthread_mutex_t reload_lock;
    struct listener listener;
    int stop_pipe[2];     /* detach_server_stop() writes; detach_serve() reads */
    char *option_strings[4];  /* our copies: the caller's may go */
    int served;
};

/* Every default, in the library's own (newest) layout. */
static void options_defaults(detach_options *options)
{
    memset(options, 0, sizeof(*options));
    options->size = sizeof(*options);
    options->workers = 4;
    options->max_jobs = 64;
    options->queue = 1024;
    options->max_body = 1024 * 1024;
    options->read_timeout_ms = 10000;
    options->idle_timeout_ms = 75000;
    options->drain_timeout = 30;
    options->socket_mode = 0660;
    options->status_allow = "127.0.0.1 ::1";
    options->job_nice = 10;
    options->queue_bytes = 64 * 1024 * 1024;
    options->job_descriptors = 4;
}

/* The caller's struct may be older and smaller than ours (or, built
 * against a newer header, larger): write only the bytes it has, and only
 * the fields we know. */
void detach_options_init_sized(detach_options *options, size_t size)
{
    detach_options defaults;

    if (!options || size < sizeof(options->size))
        return;
    options_defaults(&defaults);
    memset(options, 0, size);
    memcpy(options, &defaults, size < sizeof(defaults) ? size : sizeof(defaults));
    options->size = size;
}

/* Only the fields inside given->size are the caller's; the rest keep
 * their defaults.  queue and drain_timeout may be 0; the rest may not,
 * and 0 there means the caller left the field unset: take the default. */
static int resolve_options(detach_options *options, const detach_options *given)
{
    detach_options defaults;

    options_defaults(&defaults);
    *options = defaults;
    if (!given)
        return 0;
    if (given->size < sizeof(given->size)) {
        errno = EINVAL;
        return dt_error_set("detach_options.size is %zu: start from detach_options_init()",
                            given->size);
    }
    memcpy(options, given, given->size < sizeof(*options) ? given->size : sizeof(*options));
    options->size = sizeof(*options);
    if (!options->workers)
        options->workers = defaults.workers;
    if (!options->max_jobs)
        options->max_jobs = defaults.max_jobs;
    if (!options->max_body)
        options->max_body = defaults.max_body;
    if (!options->read_timeout_ms)
        options->read_timeout_ms = defaults.read_timeout_ms;
    if (!options->idle_timeout_ms)
        options->idle_timeout_ms = defaults.idle_timeout_ms;
    if (!options->socket_mode)
        options->socket_mode = defaults.socket_mode;
    if (!options->status_allow)
        options->status_allow = defaults.status_allow;
    if (!options->queue_bytes)
        options->queue_bytes = defaults.queue_bytes;
    if (!options->job_descriptors)
        options->job_descriptors = defaults.job_descriptors;
    return 0;
}

static int copy_option_strings(detach_server *server)
{
    const char **fields[] = {
        &server->core.options.spool, &server->core.options.status_path,
        &server->core.options.status_allow, &server->core.options.socket_owner,
    };

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (!*fields[i])
            continue;
        server->option_strings[i] = strdup(*fields[i]);
        if (!server->option_strings[i])
            return dt_error_set("out of memory");
        *fields[i] = server->option_strings[i];
    }
    return 0;
}

/* A request read whole: a trigger is answered on the watcher thread when
 * it can be (request.c), anything else goes to a worker. */
static int answer_now(void *core, struct connection *connection)
{
    return dt_request_serve_at_once(core, connection);
}

static void hand_off(void *core, struct connection *connection)
{
    dt_worker_pool_push(((struct server_core *)core)->workers, connection);
}

/* The watcher's submits wake a job thread once per epoll round
 * (dt_executor_submit_deferred()). */
static void flush_job_wakeups(void *executor)
{
    dt_executor_flush_wakeup(executor);
}

detach_server *detach_server_new(const char *listen_address, const detach_options *options)
{
    detach_server *server = calloc(1, sizeof(*server));
    uint32_t seed = 0;

    if (!server) {
        dt_error_set("out of memory");
        return NULL;
    }
    server->stop_pipe[0] = server->stop_pipe[1] = -1;
    server->listener.fd = -1;
    if (resolve_options(&server->core.options, options) < 0 || copy_option_strings(server) < 0)
        goto fail;
    dt_log_set_level(server->core.options.log_level);
    pthread_mutex_init(&server->reload_lock, NULL);
    dt_registry_init(&server->core.registry);
    struct route_table *routes = malloc(sizeof(*routes));
    if (!routes) {
        free(server);
        dt_error_set("out of memory");
        return NULL;
    }
    dt_route_table_init(routes);
    atomic_init(&server->core.routes, routes);
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
        seed = (uint32_t)getpid() * 2654435761u;
    atomic_init(&server->core.jobs.next_job_number, seed);
    server->core.jobs.registry = &server->core.registry;
    if (pipe2(server->stop_pipe, O_CLOEXEC) < 0) {
        dt_error_set("pipe: %s", strerror(errno));
        goto fail;
    }
    /* A second stop request must never block a signal handler. */
    fcntl(server->stop_pipe[1], F_SETFL, O_NONBLOCK);
    if (dt_listener_open(&server->listener, listen_address, server->core.options.socket_mode,
                      server->core.options.socket_owner) < 0)
        goto fail;
    server->core.watcher = dt_watcher_new();
    if (!server->core.watcher)
        goto fail;
    server->core.io.watcher = server->core.watcher;
    server->core.jobs.watcher = server->core.watcher;
    server->core.io.read_timeout_ms = server->core.options.read_timeout_ms;
    server->core.io.idle_timeout_ms = server->core.options.idle_timeout_ms;
    server->core.io.max_body = server->core.options.max_body;
    server->core.io.answer_now = answer_now;
    server->core.io.hand_off = hand_off;
    server->core.io.handler_arg = &server->core;
    server->core.executor = dt_executor_new(server->core.options.max_jobs, server->core.options.queue,
                                         server->core.options.job_nice,
                                         server->core.options.sleep_on_thread);
    if (!server->core.executor)
        goto fail;
    dt_executor_set_queue_bytes(server->core.executor, server->core.options.queue_bytes);
    dt_executor_set_migrate(server->core.executor, server->core.options.fiber_migrate);
    dt_watcher_on_round_end(server->core.watcher, flush_job_wakeups, server->core.executor);
    if (server->core.options.spool) {
        server->core.spool = dt_spool_open(server->core.options.spool);
        if (!server->core.spool)
            goto fail;
        server->core.jobs.spool = server->core.spool;
    }
    return server;
fail:
    detach_server_free(server);
    return NULL;
}

int detach_route(detach_server *server, const char *path, detach_mode mode,
                 detach_handler handler, void *arg)
{
    if (server->served) {
        errno = EBUSY;
        return dt_error_set("detach_route: routes are fixed once detach_serve() started");
    }
    return dt_route_table_add(atomic_load(&server->core.routes), path, mode, DETACH_ABORT_DEFAULT,
                           handler, arg);
}

/* The first published spec ended before on_abort: every caller has at
 * least path, mode, handler and arg. */
#define ROUTE_SPEC_MIN_SIZE offsetof(detach_route_spec, on_abort)

int detach_server_replace_routes_sized(detach_server *server, const detach_route_spec *routes,
                                       size_t count, size_t spec_size)
{
    struct route_table *fresh, *old;

    if (count > 0 && spec_size < ROUTE_SPEC_MIN_SIZE) {
        errno = EINVAL;
        return dt_error_set("replacing routes: a detach_route_spec of %zu bytes, at least %zu",
                            spec_size, (size_t)ROUTE_SPEC_MIN_SIZE);
    }
    fresh = malloc(sizeof(*fresh));
    if (!fresh)
        return dt_error_set("replacing routes: out of memory");
    dt_route_table_init(fresh);
    for (size_t i = 0; i < count; i++) {
        /* The caller's layout: its stride, only the fields it has. */
        detach_route_spec spec = {0};
        memcpy(&spec, (const char *)routes + i * spec_size,
               spec_size < sizeof(spec) ? spec_size : sizeof(spec));
        if (dt_route_table_add(fresh, spec.path, spec.mode, spec.on_abort, spec.handler,
                               spec.arg) < 0) {
            dt_route_table_destroy(fresh);
            free(fresh);
            return -1;
        }
    }
    pthread_mutex_lock(&server->reload_lock);
    old = atomic_exchange(&server->core.routes, fresh);
    /* Running and queued jobs point into the old table: it lives on until
     * the server is freed.  A reload costs its few hundred bytes. */
    fresh->retired = old;
    pthread_mutex_unlock(&server->reload_lock);
    dt_log_line(LOG_INFO, "routes_replaced", "routes=%zu", count);
    return 0;
}

/* A job the last run acknowledged but did not finish: run it again. */
static void recovered(void *context, struct spool_record *record)
{
    struct server_core *core = context;
    const struct route_table *routes = atomic_load(&core->routes);
    const struct route *route = NULL;
    detach_job *job;

    for (size_t i = 0; i < routes->count; i++)
        if (strcmp(routes->routes[i].kind.path, record->route) == 0)
            route = &routes->routes[i];
    if (!route) {
        dt_log_line(LOG_ERROR, "spool_orphan", "job=%s route=%s reason=\"no such route now; left in the spool\"",
                 record->id, record->route);
        dt_spool_record_free(record);
        return;
    }
    job = dt_job_new(&core->jobs, &route->kind, record->params, record->body, record->body_length, NULL);
    dt_spool_record_free(record);
    if (!job)
        return;
    dt_job_restore(job, record->id, record->accepted_unix_ms);
    dt_job_list(job);
    if (dt_executor_submit_recovered(core->executor, dt_job_task(job)) < 0) {
        dt_log_line(LOG_ERROR, "spool_recover", "job=%s error=\"%s\"", record->id, strerror(errno));
        dt_job_discard(job);
        return;
    }
    dt_log_line(LOG_INFO, "recovered", "job=%s route=%s", record->id, route->kind.path);
}

/*
 * The descriptor budget (fd_budget.h) from what is open now (every part
 * is, the listener too) and RLIMIT_NOFILE: the connection cap, returned,
 * and the jobs that may run at once, set on the executor, both logged
 * with the figures.  When max_jobs does not fit the limit, an error line
 * says by how much, and the jobs past what fits wait queued rather than
 * start without descriptors.  detachd raised the soft limit to the hard
 * one before this, and said so.
 */
static unsigned long long descriptor_budget(const struct server_core *core)
{
    struct rlimit limit;
    struct fd_budget budget;
    char figures[256];

    if (getrlimit(RLIMIT_NOFILE, &limit) < 0) {
        dt_log_line(LOG_ERROR, "descriptors", "error=\"getrlimit: %s\" note=\"no connection cap\"",
                 strerror(errno));
        return 0;
    }
    dt_fd_budget_compute(&budget, limit.rlim_cur == RLIM_INFINITY ? ~0ULL : limit.rlim_cur,
                      dt_fd_budget_open_now(), core->options.workers, core->options.max_jobs,
                      core->options.job_descriptors);
    dt_fd_budget_describe(&budget, figures, sizeof(figures));
    if (budget.verdict == FD_BUDGET_FITS)
        dt_log_line(LOG_INFO, "descriptors", "%s max_jobs=%u job_descriptors=%u", figures,
                 core->options.max_jobs, core->options.job_descriptors);
    else
        dt_log_line(LOG_ERROR, "descriptors", "%s max_jobs=%u job_descriptors=%u "
                 "error=\"RLIMIT_NOFILE %llu is short of the %llu descriptors max_jobs needs: "
                 "jobs beyond jobs_at_once wait queued\"", figures, core->options.max_jobs,
                 core->options.job_descriptors, budget.limit, budget.needed);
    dt_executor_limit_running(core->executor, budget.jobs_at_once);
    return budget.connections;
}

static void wait_for_stop(detach_server *server)
{
    char byte;

    while (read(server->stop_pipe[0], &byte, 1) < 0 && errno == EINTR)
        ;
}

int detach_serve(detach_server *server)
{
    struct server_core *core = &server->core;
    unsigned long long max_connections;

    if (server->served) {
        errno = EBUSY;
        return dt_error_set("detach_serve: a server serves once");
    }
    server->served = 1;
    if (dt_watcher_start(core->watcher) < 0)
        return -1;
    core->workers = dt_worker_pool_new(core, core->options.workers);
    if (!core->workers)
        return -1;
    /* Before any job is submitted, recovered ones included. */
    max_connections = descriptor_budget(core);
    if (core->spool && dt_spool_recover(core->spool, recovered, core) < 0)
        dt_log_line(LOG_ERROR, "spool_recover", "error=\"%s\"", detach_last_error());
    if (dt_listener_start(&server->listener, &core->io, max_connections) < 0)
        return -1;
    dt_log_line(LOG_INFO, "serving", "workers=%u max_jobs=%u queue=%u routes=%zu",
             core->options.workers, core->options.max_jobs, core->options.queue,
             atomic_load(&core->routes)->count);

    wait_for_stop(server);

    dt_log_line(LOG_INFO, "stopping_server", "drain_timeout=%u", core->options.drain_timeout);
    atomic_store(&core->io.stopping, 1);
    dt_listener_close(&server->listener);
    dt_worker_pool_stop(core->workers);
    dt_connection_close_idle(&core->io);
    dt_executor_drain(core->executor, core->options.drain_timeout, core->spool != NULL);
    dt_connection_close_idle(&core->io);
    dt_log_line(LOG_INFO, "stopped", "jobs_running=%d", 0);
    return 0;
}

void detach_server_stop(detach_server *server)
{
    int saved = errno;   /* may run in a signal handler */
    char byte = 1;

    if (write(server->stop_pipe[1], &byte, 1) < 0) {
        /* EAGAIN: a stop is already pending. */
    }
    errno = saved;
}

void detach_server_free(detach_server *server)
{
    if (!server)
        return;
    atomic_store(&server->core.io.stopping, 1);
    dt_listener_close(&server->listener);
    dt_worker_pool_stop(server->core.workers);
    if (server->core.watcher && server->core.executor) {
        dt_connection_close_idle(&server->core.io);
        /* The watcher outlives the executor (jobs ending use its
         * timers), its round hook must not.  The drain closed the
         * executor: no deferred submit is left to flush. */
        dt_watcher_on_round_end(server->core.watcher, NULL, NULL);
    }
    dt_executor_free(server->core.executor);
    dt_spool_close(server->core.spool);
    dt_watcher_free(server->core.watcher);
    dt_worker_pool_free(server->core.workers);   /* the watcher pushed to it */
    for (struct route_table *table = atomic_load(&server->core.routes), *older; table; table = older) {
        older = table->retired;
        dt_route_table_destroy(table);
        free(table);
    }
    pthread_mutex_destroy(&server->reload_lock);
    dt_registry_destroy(&server->core.registry);
    for (size_t i = 0; i < sizeof(server->option_strings) / sizeof(server->option_strings[0]); i++)
        free(server->option_strings[i]);
    if (server->stop_pipe[0] >= 0)
        close(server->stop_pipe[0]);
    if (server->stop_pipe[1] >= 0)
        close(server->stop_pipe[1]);
    free(server);
}
