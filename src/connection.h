/*
 * connection.h - a FastCGI connection's life between its owners.
 *
 * At any moment exactly one party owns a connection: the watcher while it
 * waits for a request (idle), reads it, and answers it when that takes no
 * waiting (a trigger's 200); a worker when the answer needs libfcgi or may
 * block (a spool write, the status page, a refusal); or an attached job
 * while the job's output is the response.  Each hand-over is one call here.
 */
#ifndef DETACH_CONNECTION_H
#define DETACH_CONNECTION_H

#include "detach.h"
#include "request_reader.h"
#include "timer_heap.h"
#include "watcher.h"

struct server_core;
struct fcgi_connection;

enum connection_state {
    CONNECTION_IDLE, CONNECTION_READING, CONNECTION_RESPONDING, CONNECTION_LINGERING
};

struct connection {
    struct server_core *core;
    struct fcgi_connection *fcgi;
    struct watch watch;
    struct timer deadline;       /* idle timeout, or the request read deadline */
    struct timer resume;         /* due at once: read bytes hold the next request */
    enum connection_state state;
    struct request_reader reader;    /* the request read; the owner's */
    int unread_input;            /* the peer sent more than we read */
    detach_job *job;             /* the attached job it answers; watcher lock */
    struct connection *next_idle, *previous_idle;
    struct connection *next_ready;   /* the worker queue */
};

/* From the listener, on the watcher thread (lock held): a new connection. */
void connection_accepted_locked(struct server_core *core, int fd);

/*
 * A worker is done with the request: the connection goes back to waiting
 * when the web server keeps it alive, else it is closed and freed.
 */
void connection_release(struct connection *connection);
void connection_close(struct connection *connection);

/*
 * Watcher thread, for the request just read: text (a CGI-style head and
 * body, at most 65535 bytes) goes out as the whole response in one send(),
 * and the connection waits for the next request or closes.
 */
void connection_answer_now(struct connection *connection, const char *text, size_t length);
/* The same with a short text/plain refusal, as connection_respond(). */
void connection_refuse_now(struct connection *connection, const char *status, const char *extra);

/*
 * Attached jobs: watch the connection for the peer leaving while the job
 * runs (within milliseconds, writes or not), and stop watching at the end.
 */
int connection_watch_for_abort(struct connection *connection, detach_job *job);
void connection_unwatch_abort(struct connection *connection);
/* The peer spoke after its request (we read it along with the request):
 * for an attached job that is the peer leaving, as if the watcher saw it. */
void connection_report_abort(struct connection *connection);

struct fcgi_connection *connection_fcgi(struct connection *connection);
int connection_fd(const struct connection *connection);
void connection_forbid_keepalive(struct connection *connection);
/*
 * The peer sent bytes we will not read (a body over max_body, a request
 * sent before our answer).  Closing on unread bytes makes TCP send a reset,
 * which can destroy our answer in flight, so such a connection is closed
 * the slow way: write side shut, the rest read and dropped by the watcher
 * for up to two seconds.  Implies no keep-alive.
 */
void connection_expect_unread(struct connection *connection);
/* A short text/plain answer: status is "404 Not Found"; extra is more
 * header lines, each ending in CRLF, or NULL. */
void connection_respond(struct connection *connection, const char *status, const char *extra);

/* Closes every idle connection; on stop, after the listener is closed. */
void connection_close_idle(struct server_core *core);

#endif
