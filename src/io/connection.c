/*
 * connection.c - hand-overs of a connection between watcher, worker and
 * attached job, and the deadlines that bound each state.
 *
 * Deadlines: a new connection's first request must arrive whole within
 * read_timeout of the connect (one that never sends a byte is closed
 * then); on a kept connection, idle_timeout runs between requests, and
 * read_timeout from a request's first byte to its last.  Bytes read past
 * a request (a pipelining client) are the next request's start: it is
 * served in turn, as soon as the answer before it is out.
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

#include "base/log.h"
#include "fcgi/fcgi_record.h"
#include "fcgi/fcgi_response.h"
#include "io/connection.h"

/*
 * While the watcher holds a connection (waiting for a request, or for the
 * rest of one) it stays in epoll level-triggered, not one-shot: serving a
 * trigger and waiting for the next costs no epoll_ctl().  It leaves epoll
 * when a worker or an attached job takes it.
 */
#define WAITING_EVENTS (EPOLLIN | EPOLLRDHUP)

/* At most this much of one request is read per readiness event. */
#define MAX_READ_PER_EVENT (256u * 1024)

#define container_of(pointer, type, member) \
    ((type *)((char *)(pointer) - offsetof(type, member)))

static void idle_list_remove_locked(struct connection *connection)
{
    struct io_context *io = connection->io;

    if (connection->previous_idle)
        connection->previous_idle->next_idle = connection->next_idle;
    else if (io->idle_connections == connection)
        io->idle_connections = connection->next_idle;
    if (connection->next_idle)
        connection->next_idle->previous_idle = connection->previous_idle;
    connection->next_idle = connection->previous_idle = NULL;
}

static void free_locked(struct connection *connection)
{
    dt_watcher_unwatch_locked(connection->io->watcher, &connection->watch);
    dt_watcher_disarm_locked(connection->io->watcher, &connection->deadline);
    dt_watcher_disarm_locked(connection->io->watcher, &connection->resume);
    idle_list_remove_locked(connection);
    dt_request_reader_free(&connection->reader);
    close(connection->watch.fd);
    atomic_fetch_sub(&connection->io->connections, 1);   /* the listener's cap */
    free(connection);
}

static int wait_for_more_locked(struct connection *connection);

/*
 * Reads what has arrived, without blocking, and parses it.  A whole
 * request is answered here when it can be (dt_request_serve_at_once: a
 * trigger's 200 costs no thread hand-over); anything else goes to a
 * worker.  A request still incomplete waits in epoll for the rest, under
 * its read deadline, so a slow peer holds no thread at all.
 */
static void read_request(struct connection *connection)
{
    struct io_context *io = connection->io;
    struct request_reader *reader = &connection->reader;
    size_t read_now = 0;

    for (;;) {
        enum request_verdict verdict = dt_request_reader_parse(reader);
        ssize_t n;

        if (verdict == REQUEST_INVALID) {
            dt_log_line(LOG_INFO, "bad_request", "fd=%d reason=\"%s\"", connection->watch.fd,
                     reader->why);
            dt_connection_close(connection);
            return;
        }
        if (verdict != REQUEST_NEED_MORE)
            break;
        /* A long body arriving fast must not keep the other connections
         * waiting: back to epoll after this much, level-triggered. */
        if (read_now >= MAX_READ_PER_EVENT)
            goto wait;
        if (dt_request_reader_room(reader, 4096) < 0) {
            dt_log_line(LOG_ERROR, "request", "fd=%d error=\"out of memory\"", connection->watch.fd);
            dt_connection_close(connection);
            return;
        }
        n = recv(connection->watch.fd, reader->data + reader->length,
                 reader->capacity - reader->length, MSG_DONTWAIT);
        if (n > 0) {
            reader->length += (size_t)n;
            read_now += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            goto wait;
        } else {
            dt_connection_close(connection);   /* closed between requests, or reset */
            return;
        }
    }
    if (io->answer_now(io->handler_arg, connection))
        return;
    dt_watcher_lock(io->watcher);
    dt_watcher_unwatch_locked(io->watcher, &connection->watch);
    dt_watcher_disarm_locked(io->watcher, &connection->deadline);
    dt_watcher_unlock(io->watcher);
    dt_fcgi_response_begin(&connection->response, connection->watch.fd, reader->request_id,
                        reader->keep_connection);
    io->hand_off(io->handler_arg, connection);
    return;
wait:
    dt_watcher_lock(io->watcher);
    if (wait_for_more_locked(connection) < 0)
        free_locked(connection);
    dt_watcher_unlock(io->watcher);
}

/* Watcher thread: bytes (or an EOF) for an idle or half-read connection. */
static void readable(struct watch *watch, uint32_t events)
{
    struct connection *connection = container_of(watch, struct connection, watch);
    struct io_context *io = connection->io;

    /* Bytes in the socket or bytes held, one read_request() takes both. */
    dt_watcher_disarm_locked(io->watcher, &connection->resume);
    if (connection->state == CONNECTION_IDLE) {
        if (!(events & EPOLLIN) || atomic_load(&io->stopping)) {
            free_locked(connection);   /* hung up with nothing to say */
            return;
        }
        connection->state = CONNECTION_READING;
        /* The whole request must arrive within the read deadline, however
         * it trickles. */
        dt_watcher_arm_locked(io->watcher, &connection->deadline, io->read_timeout_ms);
    }
    idle_list_remove_locked(connection);
    /*
     * Read and answered with the lock released, so job threads and workers
     * are not held up meanwhile.  The connection is ours alone: it is on
     * no list, and its watch and deadline fire only on this thread, which
     * is busy here.
     */
    dt_watcher_unlock(io->watcher);
    read_request(connection);
    dt_watcher_lock(io->watcher);
}

static void deadline_expired(struct timer *timer)
{
    struct connection *connection = container_of(timer, struct connection, deadline);
    const struct request_reader *reader = &connection->reader;

    /* Only a connection the watcher holds has a deadline: a new one,
     * idle, waiting for the rest of a request, or lingering.  received=0:
     * a peer that connected and never said a word. */
    if (connection->state == CONNECTION_READING)
        dt_log_line(LOG_INFO, "request_read_timeout", "fd=%d received=%zu", connection->watch.fd,
                 reader->length + reader->dropped);
    else if (connection->state == CONNECTION_IDLE)
        dt_log_line(LOG_DEBUG, "connection_idle_timeout", "fd=%d", connection->watch.fd);
    else
        dt_log_line(LOG_DEBUG, "connection_closed_by_deadline", "fd=%d", connection->watch.fd);
    free_locked(connection);
}

/* The answer before it is out: the next request, read along with an
 * earlier one, is served now, as if its bytes had just arrived. */
static void resume_due(struct timer *timer)
{
    struct connection *connection = container_of(timer, struct connection, resume);

    readable(&connection->watch, EPOLLIN);
}

/* The watcher owns it now (idle or lingering): a stop must find it. */
static void idle_list_add_locked(struct connection *connection)
{
    struct io_context *io = connection->io;

    connection->previous_idle = NULL;
    connection->next_idle = io->idle_connections;
    if (io->idle_connections)
        io->idle_connections->previous_idle = connection;
    io->idle_connections = connection;
}

/* Part of a request came: the rest is awaited under the read deadline. */
static int wait_for_more_locked(struct connection *connection)
{
    /* A stop closes every connection the watcher holds; none may come back. */
    if (atomic_load(&connection->io->stopping))
        return -1;
    if (dt_watcher_watch_locked(connection->io->watcher, &connection->watch, WAITING_EVENTS) < 0)
        return -1;
    idle_list_add_locked(connection);
    return 0;
}

/*
 * A request answered on a kept connection: wait for the next under the
 * idle timeout, or serve it at once when its first bytes were read with
 * the last (the reset keeps them).
 */
static int wait_for_request_locked(struct connection *connection)
{
    struct io_context *io = connection->io;

    if (atomic_load(&io->stopping))
        return -1;
    connection->state = CONNECTION_IDLE;
    connection->watch.ready = readable;
    dt_request_reader_reset(&connection->reader);
    if (dt_watcher_watch_locked(io->watcher, &connection->watch, WAITING_EVENTS) < 0)
        return -1;
    dt_watcher_arm_locked(io->watcher, &connection->deadline, io->idle_timeout_ms);
    /* epoll will not say so: the bytes are out of the socket already. */
    if (connection->reader.length > 0)
        dt_watcher_arm_locked(io->watcher, &connection->resume, 0);
    idle_list_add_locked(connection);
    return 0;
}

/*
 * A new connection: its first request must be whole within read_timeout
 * of the connect, as nginx's client_header_timeout counts.  The idle
 * timeout is for a web server's kept connections between requests, not
 * for a peer that connects and says nothing.
 */
static int wait_for_first_request_locked(struct connection *connection)
{
    struct io_context *io = connection->io;

    connection->state = CONNECTION_READING;
    if (dt_watcher_watch_locked(io->watcher, &connection->watch, WAITING_EVENTS) < 0)
        return -1;
    dt_watcher_arm_locked(io->watcher, &connection->deadline, io->read_timeout_ms);
    idle_list_add_locked(connection);
    return 0;
}

void dt_connection_accepted_locked(struct io_context *io, int fd)
{
    struct connection *connection = calloc(1, sizeof(*connection));

    if (!connection) {
        dt_log_line(LOG_ERROR, "accept", "error=\"out of memory\"");
        atomic_fetch_sub(&io->connections, 1);   /* the listener counted it */
        close(fd);
        return;
    }
    connection->io = io;
    dt_request_reader_init(&connection->reader, io->max_body);
    dt_watch_init(&connection->watch, fd, readable);
    dt_timer_init(&connection->deadline, deadline_expired);
    dt_timer_init(&connection->resume, resume_due);
    if (wait_for_first_request_locked(connection) < 0) {
        dt_log_line(LOG_ERROR, "accept", "error=\"%s\"", strerror(errno));
        free_locked(connection);
    }
}

void dt_connection_close(struct connection *connection)
{
    struct watcher *watcher = connection->io->watcher;

    dt_watcher_lock(watcher);
    free_locked(connection);
    dt_watcher_unlock(watcher);
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
        dt_watcher_watch_locked(connection->io->watcher, &connection->watch,
                             EPOLLIN | EPOLLRDHUP) < 0)
        return -1;
    dt_watcher_arm_locked(connection->io->watcher, &connection->deadline, LINGER_MS);
    idle_list_add_locked(connection);
    return 0;
}

void dt_connection_expect_unread(struct connection *connection)
{
    connection->unread_input = 1;
    dt_fcgi_response_forbid_keepalive(&connection->response);
}

/* A connection about to close holds the start of a pipelined request:
 * it goes unserved, and the log says why rather than nothing. */
static void log_unserved(const struct connection *connection, struct io_context *io)
{
    const struct request_reader *reader = &connection->reader;

    if (!dt_request_reader_next_is_request(reader))
        return;
    dt_log_line(LOG_INFO, "pipelined_request_dropped", "fd=%d bytes=%zu reason=\"%s\"",
             connection->watch.fd, reader->trailing_length,
             atomic_load(&io->stopping) ? "stopping"
             : !reader->keep_connection ? "the request before it did not ask to keep the connection"
                                        : "the answer before it could not be sent");
}

void dt_connection_release(struct connection *connection)
{
    struct io_context *io = connection->io;
    int kept;

    if (atomic_load(&io->stopping))
        dt_fcgi_response_forbid_keepalive(&connection->response);
    kept = dt_fcgi_response_end(&connection->response);
    dt_watcher_lock(io->watcher);
    if (kept) {
        if (wait_for_request_locked(connection) < 0)
            free_locked(connection);
    } else {
        log_unserved(connection, io);
        if (!connection->unread_input || linger_locked(connection) < 0)
            free_locked(connection);
    }
    dt_watcher_unlock(io->watcher);
}

void dt_connection_answer_now(struct connection *connection, const char *text, size_t length)
{
    struct io_context *io = connection->io;
    uint8_t wire[1024];
    size_t needed = dt_fcgi_short_response_encode(wire, sizeof(wire), connection->reader.request_id,
                                               text, (uint16_t)(length > 65535 ? 0 : length));
    ssize_t sent = -1;
    int kept;

    if (needed <= sizeof(wire) && length <= 65535)
        do
            sent = send(connection->watch.fd, wire, needed, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (sent < 0 && errno == EINTR);
    /* The web server reads each answer before it sends the next request,
     * so the socket buffer is empty here and one send() takes it all.  A
     * peer that lets it fill up is not a web server we can keep. */
    if (sent != (ssize_t)needed)
        dt_log_line(LOG_INFO, "answer_not_sent", "fd=%d error=\"%s\"", connection->watch.fd,
                 sent < 0 ? strerror(errno) : "short write");
    kept = sent == (ssize_t)needed && connection->reader.keep_connection &&
           !atomic_load(&io->stopping);
    dt_watcher_lock(io->watcher);
    if (kept) {
        if (wait_for_request_locked(connection) < 0)
            free_locked(connection);
    } else {
        log_unserved(connection, io);
        /* More of what we will not read may follow: close the slow way,
         * so a reset cannot destroy the answer just sent. */
        if (sent != (ssize_t)needed || !connection->reader.trailing_length ||
            linger_locked(connection) < 0)
            free_locked(connection);
    }
    dt_watcher_unlock(io->watcher);
}

/* Watcher thread: readable while a job answers means the peer is gone:
 * EOF, a reset, or FCGI_ABORT_REQUEST (nginx and Apache send nothing else
 * once the request is read, and we refuse multiplexing). */
static void responding_ready(struct watch *watch, uint32_t events)
{
    struct connection *connection = container_of(watch, struct connection, watch);

    dt_watcher_unwatch_locked(connection->io->watcher, watch);
    if (connection->peer_left)
        connection->peer_left(connection->peer_left_arg);
}

int dt_connection_watch_for_abort(struct connection *connection, void (*peer_left)(void *arg),
                               void *arg)
{
    struct watcher *watcher = connection->io->watcher;
    int rc;

    dt_watcher_lock(watcher);
    connection->state = CONNECTION_RESPONDING;
    connection->peer_left = peer_left;
    connection->peer_left_arg = arg;
    connection->watch.ready = responding_ready;
    rc = dt_watcher_watch_locked(watcher, &connection->watch,
                              EPOLLIN | EPOLLRDHUP | EPOLLONESHOT);
    dt_watcher_unlock(watcher);
    return rc;
}

void dt_connection_unwatch_abort(struct connection *connection)
{
    struct watcher *watcher = connection->io->watcher;

    dt_watcher_lock(watcher);
    dt_watcher_unwatch_locked(watcher, &connection->watch);
    connection->peer_left = NULL;
    connection->peer_left_arg = NULL;
    dt_watcher_unlock(watcher);
}

void dt_connection_report_abort(struct connection *connection)
{
    struct watcher *watcher = connection->io->watcher;

    dt_watcher_lock(watcher);
    dt_watcher_unwatch_locked(watcher, &connection->watch);
    if (connection->peer_left)
        connection->peer_left(connection->peer_left_arg);
    dt_watcher_unlock(watcher);
}

void dt_connection_close_idle(struct io_context *io)
{
    dt_watcher_lock(io->watcher);
    while (io->idle_connections)
        free_locked(io->idle_connections);
    dt_watcher_unlock(io->watcher);
}

struct fcgi_response *dt_connection_response(struct connection *connection)
{
    return &connection->response;
}

int dt_connection_fd(const struct connection *connection)
{
    return connection->watch.fd;
}

void dt_connection_forbid_keepalive(struct connection *connection)
{
    dt_fcgi_response_forbid_keepalive(&connection->response);
}

/* "Status: 404 Not Found" and a one-line text body; -1 if it does not fit. */
static int format_short_answer(char *out, size_t size, const char *status, const char *extra)
{
    const char *text = status + 4;   /* "404 Not Found" -> "Not Found" */
    int n = snprintf(out, size,
                     "Status: %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s\n",
                     status, strlen(text) + 1, extra ? extra : "", text);

    return n < 0 || (size_t)n >= size ? -1 : n;
}

void dt_connection_respond(struct connection *connection, const char *status, const char *extra)
{
    char head[512];
    int n = format_short_answer(head, sizeof(head), status, extra);

    if (n < 0 || dt_fcgi_response_send_whole(&connection->response, head, (size_t)n) < 0)
        dt_fcgi_response_forbid_keepalive(&connection->response);
}

void dt_connection_refuse_now(struct connection *connection, const char *status, const char *extra)
{
    char head[512];
    int n = format_short_answer(head, sizeof(head), status, extra);

    dt_connection_answer_now(connection, head, n < 0 ? 0 : (size_t)n);
}
