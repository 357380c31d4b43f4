/*
 * fcgi_connection.h - one FastCGI connection, read and written through
 * libfcgi.  This module and its .c are the only code that includes
 * fcgiapp.h: libfcgi's global state and quirks stay behind this line.
 *
 * The descriptor is accepted by us (listener.c), not by libfcgi, so that a
 * connection kept alive by the web server can wait in the watcher's epoll
 * set instead of pinning a worker thread, and so that no accept path ever
 * waits in libfcgi's 2-second unix-socket probe.  Reads block: a worker
 * only gets a connection once it is readable, and the watcher bounds the
 * whole read with a deadline (shutdown(2) on expiry).
 */
#ifndef DETACH_FCGI_CONNECTION_H
#define DETACH_FCGI_CONNECTION_H

#include <stddef.h>

struct fcgi_connection;

/* Once per process, before any connection; keeps the caller's SIGTERM. */
int fcgi_library_init(void);

/* Takes ownership of fd (a connected stream socket, blocking). */
struct fcgi_connection *fcgi_connection_new(int fd);
/* Closes the descriptor at once (never lingers) and frees. */
void fcgi_connection_free(struct fcgi_connection *connection);

/*
 * Reads the next request's BEGIN_REQUEST and PARAMS.  0 on success; -1
 * when the connection is closed or broken (libfcgi has closed it then).
 */
int fcgi_connection_accept(struct fcgi_connection *connection);
/* "NAME=value" strings, NULL-terminated, valid until finish. */
char **fcgi_connection_params(struct fcgi_connection *connection);
const char *fcgi_connection_param(struct fcgi_connection *connection, const char *name);

/*
 * Reads the whole body into a new buffer (NUL-terminated for convenience).
 * 0 on success; 1 when it is larger than max_body (nothing kept); -1 on a
 * read error.
 */
int fcgi_connection_read_body(struct fcgi_connection *connection, size_t max_body,
                              char **body, size_t *length);

/* Writes to FCGI_STDOUT; -1 with errno (EPIPE...) when the peer is gone. */
int fcgi_connection_write(struct fcgi_connection *connection, const void *data, size_t length);
int fcgi_connection_flush(struct fcgi_connection *connection);

/* Refuses keep-alive for this request: the connection closes at finish. */
void fcgi_connection_forbid_keepalive(struct fcgi_connection *connection);
/*
 * Ends the request (FCGI_END_REQUEST).  Returns 1 when the connection
 * stays open for the web server's next request, 0 when it was closed.
 */
int fcgi_connection_finish(struct fcgi_connection *connection);

#endif
