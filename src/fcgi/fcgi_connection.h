/*
 * fcgi_connection.h - one FastCGI connection, parsed and answered through
 * libfcgi.  This module and its .c are the only code that includes
 * fcgiapp.h: libfcgi's global state and quirks stay behind this line.
 *
 * libfcgi never reads the socket.  The watcher reads each request and
 * checks every record (request_reader.c), and a trigger's 200 is built
 * without libfcgi (fcgi_record.c).  For the other answers, libfcgi parses
 * the checked head (BEGIN_REQUEST and the params) from memory, and writes
 * the response to the socket.  The descriptor is accepted by us (listener.c), so a
 * kept-alive connection waits in the watcher's epoll set, not in a thread.
 */
#ifndef DETACH_FCGI_CONNECTION_H
#define DETACH_FCGI_CONNECTION_H

#include <stddef.h>

struct fcgi_connection;

/* Once per process, before any connection; keeps the caller's SIGTERM. */
int fcgi_library_init(void);

/* Takes ownership of fd (a connected stream socket) for writing answers. */
struct fcgi_connection *fcgi_connection_new(int fd);
/* Closes the descriptor at once (never lingers) and frees. */
void fcgi_connection_free(struct fcgi_connection *connection);

/*
 * Parses a request's head -- BEGIN_REQUEST through the empty PARAMS record,
 * already checked -- with libfcgi.  0 on success; -1 on failure.
 */
int fcgi_connection_accept(struct fcgi_connection *connection, const void *head, size_t length);

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
