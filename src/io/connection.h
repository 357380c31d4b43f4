/*
 * connection.h - a FastCGI connection's life between its owners.
 *
 * At any moment exactly one party owns a connection: the watcher while it
 * waits for a request (idle), reads it, and answers it when that takes no
 * waiting (a trigger's 200); a worker when the answer may
 * block (a spool write, the status page, a refusal); or an attached job
 * while the job's output is the response.  Each hand-over is one call here.
 */
#ifndef DETACH_CONNECTION_H
#define DETACH_CONNECTION_H

#include <stdatomic.h>
#include <stddef.h>
#include "base/timer_heap.h"
#include "fcgi/fcgi_response.h"
#include "fcgi/request_reader.h"
#include "io/watcher.h"

struct connection;

/*
 * What the connections of one server share; the server owns it (embedded
 * in its core) and it outlives every connection.
 */
struct io_context {
    struct watcher *watcher;          /* borrowed from the server */
    unsigned read_timeout_ms, idle_timeout_ms;
    size_t max_body;
    _Atomic int stopping;             /* no new requests, no keep-alive */
    /* Connections only the watcher holds (waiting for their next request,
     * or lingering before a close), so a stop can close them; guarded by
     * the watcher lock. */
    struct connection *idle_connections;
    /* Open connections: counted up by the listener as it accepts one,
     * down as connection.c frees one.  The listener's cap keeps them
     * within the descriptor budget (fd_budget.h). */
    _Atomic unsigned long long connections;
    /*
     * A request read whole, on the watcher thread, no lock held.
     * answer_now: 1 when it answered (the connection is handed back with
     * dt_connection_answer_now() or the like), 0 to let hand_off have it;
     * hand_off takes the connection (out of epoll, no deadline) and must
     * not block.  Both get handler_arg.
     */
    int (*answer_now)(void *arg, struct connection *connection);
    void (*hand_off)(void *arg, struct connection *connection);
    void *handler_arg;
};

enum connection_state {
    CONNECTION_IDLE, CONNECTION_READING, CONNECTION_RESPONDING, CONNECTION_LINGERING
};

struct connection {
    struct io_context *io;
    struct fcgi_response response;   /* the answer being written; its owner's */
    struct watch watch;
    struct timer deadline;       /* idle timeout, or the request read deadline */
    struct timer resume;         /* due at once: read bytes hold the next request */
    enum connection_state state;
    struct request_reader reader;    /* the request read; the owner's */
    int unread_input;            /* the peer sent more than we read */
    /* The attached job's "peer left" callback and its argument; watcher lock. */
    void (*peer_left)(void *arg);
    void *peer_left_arg;
    struct connection *next_idle, *previous_idle;
    struct connection *next_ready;   /* the worker queue */
};

/* From the listener, on the watcher thread (lock held): a new connection. */
void dt_connection_accepted_locked(struct io_context *io, int fd);

/*
 * A worker is done with the request: the connection goes back to waiting
 * when the web server keeps it alive, else it is closed and freed.
 */
void dt_connection_release(struct connection *connection);
void dt_connection_close(struct connection *connection);

/*
 * Watcher thread, for the request just read: text (a CGI-style head and
 * body, at most 65535 bytes) goes out as the whole response in one send(),
 * and the connection waits for the next request or closes.
 */
void dt_connection_answer_now(struct connection *connection, const char *text, size_t length);
/* The same with a short text/plain refusal, as dt_connection_respond(). */
void dt_connection_refuse_now(struct connection *connection, const char *status, const char *extra);

/*
 * Attached jobs: watch the connection for the peer leaving while the job
 * runs (within milliseconds, writes or not), and stop watching at the end.
 * peer_left(arg) runs on the watcher thread with the watcher lock held,
 * at most once per watch, never after dt_connection_unwatch_abort() returns.
 */
int dt_connection_watch_for_abort(struct connection *connection, void (*peer_left)(void *arg),
                               void *arg);
void dt_connection_unwatch_abort(struct connection *connection);
/* The peer spoke after its request (we read it along with the request):
 * for an attached job that is the peer leaving, as if the watcher saw it. */
void dt_connection_report_abort(struct connection *connection);

/* The worker's or attached job's answer, begun when the request was handed off. */
struct fcgi_response *dt_connection_response(struct connection *connection);
int dt_connection_fd(const struct connection *connection);
void dt_connection_forbid_keepalive(struct connection *connection);
/*
 * The peer sent bytes we will not read (a body over max_body, a request
 * sent before our answer).  Closing on unread bytes makes TCP send a reset,
 * which can destroy our answer in flight, so such a connection is closed
 * the slow way: write side shut, the rest read and dropped by the watcher
 * for up to two seconds.  Implies no keep-alive.
 */
void dt_connection_expect_unread(struct connection *connection);
/* A short text/plain answer: status is "404 Not Found"; extra is more
 * header lines, each ending in CRLF, or NULL. */
void dt_connection_respond(struct connection *connection, const char *status, const char *extra);

/* Closes every idle connection; on stop, after the listener is closed. */
void dt_connection_close_idle(struct io_context *io);

#endif
