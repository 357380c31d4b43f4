/*
 * connection.c - hand-overs of a connection between watcher, worker and
 * attached job, and the deadlines that bound each state.
 *
 * Idle connections wait in the watcher's epoll set, not in a thread, so a
 * web server's keep-alive pool costs us no worker (PHP-FPM's keep-alive
 * deadlock, php-src#10335, cannot happen here).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connection.h"
#include "fcgi_connection.h"
#include "job.h"
#include "log.h"
#include "server_core.h"
#include "worker.h"

#define container_of(pointer, type, member) \
    ((type *)((char *)(pointer) - offsetof(type, member)))

static void idle_list_remove_locked(struct connection *connection)
{
    struct server_core *core = connection->core;

    if (connection->previous_idle)
        connection->previous_idle->next_idle = connection->next_idle;
    else if (core->idle_connections == connection)
        core->idle_connections = connection->next_idle;
    if (connection->next_idle)
        connection->next_idle->previous_idle = connection->previous_idle;
    connection->next_idle = connection->previous_idle = NULL;
}

static void free_locked(struct connection *connection)
{
    watcher_unwatch_locked(connection->core->watcher, &connection->watch);
    watcher_disarm_locked(connection->core->watcher, &connection->deadline);
    idle_list_remove_locked(connection);
    fcgi_connection_free(connection->fcgi);
    close(connection->watch.fd);
    free(connection);
}

/* Watcher thread: the idle connection has bytes (or an EOF) to read. */
static void idle_ready(struct watch *watch, uint32_t events)
{
    struct connection *connection = container_of(watch, struct connection, watch);
    struct server_core *core = connection->core;

    if (!(events & EPOLLIN) || atomic_load(&core->stopping)) {
        free_locked(connection);   /* hung up with nothing to say */
        return;
    }
    idle_list_remove_locked(connection);
    connection->state = CONNECTION_READING;
    /* The whole request must arrive within the read deadline, however it
     * trickles: a slow peer cannot hold a worker for longer. */
    watcher_arm_locked(core->watcher, &connection->deadline, core->options.read_timeout_ms);
    worker_pool_push(core->workers, connection);
}

static void deadline_expired(struct timer *timer)
{
    struct connection *connection = container_of(timer, struct connection, deadline);

    if (connection->state == CONNECTION_IDLE || connection->state == CONNECTION_LINGERING) {
        log_line(LOG_DEBUG, "connection_closed_by_deadline", "fd=%d", connection->watch.fd);
        free_locked(connection);
        return;
    }
    /* READING: the worker is blocked in read(); this makes it return. */
    log_line(LOG_INFO, "request_read_timeout", "fd=%d", connection->watch.fd);
    shutdown(connection->watch.fd, SHUT_RDWR);
}

/* The watcher owns it now (idle or lingering): a stop must find it. */
static void idle_list_add_locked(struct connection *connection)
{
    struct server_core *core = connection->core;

    connection->previous_idle = NULL;
    connection->next_idle = core->idle_connections;
    if (core->idle_connections)
        core->idle_connections->previous_idle = connection;
    core->idle_connections = connection;
}

static int wait_for_request_locked(struct connection *connection)
{
    struct server_core *core = connection->core;

    connection->state = CONNECTION_IDLE;
    connection->watch.ready = idle_ready;
    if (watcher_watch_locked(core->watcher, &connection->watch,
                             EPOLLIN | EPOLLRDHUP | EPOLLONESHOT) < 0)
        return -1;
    watcher_arm_locked(core->watcher, &connection->deadline, core->options.idle_timeout_ms);
    idle_list_add_locked(connection);
    return 0;
}

void connection_accepted_locked(struct server_core *core, int fd)
{
    struct connection *connection = calloc(1, sizeof(*connection));
    int library_fd = -1;

    if (!connection) {
        log_line(LOG_ERROR, "accept", "error=\"out of memory\"");
        close(fd);
        return;
    }
    connection->core = core;
    /* libfcgi gets its own descriptor for the socket and may close it
     * whenever it likes; ours stays open until we free the connection, so
     * its number is never reused under a watch or a pending deadline. */
    library_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (library_fd < 0) {
        log_line(LOG_ERROR, "accept", "error=\"dup: %s\"", strerror(errno));
        goto fail;
    }
    connection->fcgi = fcgi_connection_new(library_fd);
    if (!connection->fcgi)
        goto fail;
    watch_init(&connection->watch, fd, idle_ready);
    timer_init(&connection->deadline, deadline_expired);
    if (wait_for_request_locked(connection) < 0) {
        log_line(LOG_ERROR, "accept", "error=\"%s\"", strerror(errno));
        free_locked(connection);
    }
    return;
fail:
    if (library_fd >= 0)
        close(library_fd);
    free(connection);
    close(fd);
}

void connection_reading_done(struct connection *connection)
{
    watcher_disarm(connection->core->watcher, &connection->deadline);
}

void connection_close(struct connection *connection)
{
    struct watcher *watcher = connection->core->watcher;

    watcher_lock(watcher);
    free_locked(connection);
    watcher_unlock(watcher);
}

#define LINGER_MS 2000

/* Watcher thread: drops what the peer still sends, until it closes. */
static void lingering_ready(struct watch *watch, uint32_t events)
{
    struct connection *connection = container_of(watch, struct connection, watch);
    char scratch[16384];

    for (;;) {
        ssize_t n = recv(watch->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        free_locked(connection);   /* the peer closed, or the socket failed */
        return;
    }
}

static int linger_locked(struct connection *connection)
{
    connection->state = CONNECTION_LINGERING;
    connection->watch.ready = lingering_ready;
    if (shutdown(connection->watch.fd, SHUT_WR) < 0 ||
        watcher_watch_locked(connection->core->watcher, &connection->watch,
                             EPOLLIN | EPOLLRDHUP) < 0)
        return -1;
    watcher_arm_locked(connection->core->watcher, &connection->deadline, LINGER_MS);
    idle_list_add_locked(connection);
    return 0;
}

void connection_expect_unread(struct connection *connection)
{
    connection->unread_input = 1;
    fcgi_connection_forbid_keepalive(connection->fcgi);
}

void connection_release(struct connection *connection)
{
    struct server_core *core = connection->core;
    int kept;

    if (atomic_load(&core->stopping))
        fcgi_connection_forbid_keepalive(connection->fcgi);
    kept = fcgi_connection_finish(connection->fcgi);
    watcher_lock(core->watcher);
    if (kept) {
        if (wait_for_request_locked(connection) < 0)
            free_locked(connection);
    } else if (!connection->unread_input || linger_locked(connection) < 0) {
        free_locked(connection);
    }
    watcher_unlock(core->watcher);
}

/* Watcher thread: readable while a job answers means the peer is gone:
 * EOF, a reset, or FCGI_ABORT_REQUEST (nginx and Apache send nothing else
 * once the request is read, and libfcgi refuses multiplexing). */
static void responding_ready(struct watch *watch, uint32_t events)
{
    struct connection *connection = container_of(watch, struct connection, watch);

    watcher_unwatch_locked(connection->core->watcher, watch);
    if (connection->job)
        job_abort_locked(connection->job);
}

int connection_watch_for_abort(struct connection *connection, detach_job *job)
{
    struct watcher *watcher = connection->core->watcher;
    int rc;

    watcher_lock(watcher);
    connection->state = CONNECTION_RESPONDING;
    connection->job = job;
    connection->watch.ready = responding_ready;
    rc = watcher_watch_locked(watcher, &connection->watch,
                              EPOLLIN | EPOLLRDHUP | EPOLLONESHOT);
    watcher_unlock(watcher);
    return rc;
}

void connection_unwatch_abort(struct connection *connection)
{
    struct watcher *watcher = connection->core->watcher;

    watcher_lock(watcher);
    watcher_unwatch_locked(watcher, &connection->watch);
    connection->job = NULL;
    watcher_unlock(watcher);
}

void connection_report_abort(struct connection *connection)
{
    struct watcher *watcher = connection->core->watcher;

    watcher_lock(watcher);
    watcher_unwatch_locked(watcher, &connection->watch);
    if (connection->job)
        job_abort_locked(connection->job);
    watcher_unlock(watcher);
}

void connection_close_idle(struct server_core *core)
{
    watcher_lock(core->watcher);
    while (core->idle_connections)
        free_locked(core->idle_connections);
    watcher_unlock(core->watcher);
}

struct fcgi_connection *connection_fcgi(struct connection *connection)
{
    return connection->fcgi;
}

int connection_fd(const struct connection *connection)
{
    return connection->watch.fd;
}

void connection_forbid_keepalive(struct connection *connection)
{
    fcgi_connection_forbid_keepalive(connection->fcgi);
}

void connection_respond(struct connection *connection, const char *status, const char *extra)
{
    char head[512];
    const char *text = status + 4;   /* "404 Not Found" -> "Not Found" */
    int n = snprintf(head, sizeof(head),
                     "Status: %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s\n",
                     status, strlen(text) + 1, extra ? extra : "", text);

    if (n < 0 || (size_t)n >= sizeof(head) ||
        fcgi_connection_write(connection->fcgi, head, (size_t)n) < 0)
        fcgi_connection_forbid_keepalive(connection->fcgi);
}
