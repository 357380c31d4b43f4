/*
 * fcgi_connection.c - the libfcgi wrapper.
 *
 * Two libfcgi behaviours are worked around here, and only here:
 *  - FCGX_Accept_r() accepts on its own listening socket.  We hand it a
 *    connection we accepted ourselves by setting ipcFd with keepConnection
 *    on (so its opening FCGX_Finish_r() keeps it), and give it no
 *    listening socket (-1), so that after a broken request it fails at
 *    once instead of blocking in accept().
 *  - Its close path shuts down the write side and then reads until the
 *    peer closes, for up to 2 s.  FCGX_Detach() before every request makes
 *    every close immediate: a peer that sends garbage and stays silent
 *    cannot hold a worker.  We have read the whole request by then, so the
 *    lingering close protects nothing of ours.
 * The fields set directly are below libfcgi's "don't use" line in
 * fcgiapp.h; they have had this layout since 2.4.0 and this file is the one
 * place that depends on it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "error.h"
#include "fcgi_connection.h"

struct fcgi_connection {
    FCGX_Request request;
    int accepted;   /* a request is open: streams exist */
};

int fcgi_library_init(void)
{
    static pthread_mutex_t once_lock = PTHREAD_MUTEX_INITIALIZER;
    static int done;
    struct sigaction term, usr1;
    int rc = 0;

    pthread_mutex_lock(&once_lock);
    if (done)
        goto out;
    /* FCGX_Init() claims SIGTERM and SIGUSR1 for its own accept loop, which
     * we never run; give the application its signals back. */
    sigaction(SIGTERM, NULL, &term);
    sigaction(SIGUSR1, NULL, &usr1);
    rc = FCGX_Init();
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGUSR1, &usr1, NULL);
    if (rc != 0) {
        errno = rc > 0 ? rc : EIO;
        rc = error_set("FCGX_Init failed (%d)", rc);
        goto out;
    }
    done = 1;
out:
    pthread_mutex_unlock(&once_lock);
    return rc;
}

struct fcgi_connection *fcgi_connection_new(int fd)
{
    struct fcgi_connection *connection = calloc(1, sizeof(*connection));

    if (!connection) {
        error_set("connection: out of memory");
        return NULL;
    }
    FCGX_InitRequest(&connection->request, -1, 0);
    connection->request.ipcFd = fd;
    connection->request.keepConnection = 1;
    return connection;
}

int fcgi_connection_accept(struct fcgi_connection *connection)
{
    int rc;

    if (connection->request.ipcFd < 0) {
        errno = ENOTCONN;
        return -1;
    }
    FCGX_Detach(&connection->request);
    rc = FCGX_Accept_r(&connection->request);
    if (rc < 0) {
        /* libfcgi closed the descriptor on its way out. */
        connection->request.ipcFd = -1;
        connection->accepted = 0;
        errno = rc == -1 ? EIO : -rc;
        return -1;
    }
    connection->accepted = 1;
    return 0;
}

char **fcgi_connection_params(struct fcgi_connection *connection)
{
    return connection->request.envp;
}

const char *fcgi_connection_param(struct fcgi_connection *connection, const char *name)
{
    return connection->accepted ? FCGX_GetParam(name, connection->request.envp) : NULL;
}

int fcgi_connection_read_body(struct fcgi_connection *connection, size_t max_body,
                              char **body, size_t *length)
{
    size_t capacity = 4096, used = 0;
    char *buffer = malloc(capacity + 1);

    *body = NULL;
    *length = 0;
    if (!buffer)
        return error_set("request body: out of memory");
    for (;;) {
        int n;
        if (used == capacity) {
            size_t grown = capacity * 2;
            char *bigger;
            if (capacity > max_body) {
                free(buffer);
                return 1;
            }
            bigger = realloc(buffer, grown + 1);
            if (!bigger) {
                free(buffer);
                return error_set("request body: out of memory");
            }
            buffer = bigger;
            capacity = grown;
        }
        n = FCGX_GetStr(buffer + used, (int)(capacity - used), connection->request.in);
        if (n <= 0)
            break;
        used += (size_t)n;
        if (used > max_body) {
            free(buffer);
            return 1;
        }
    }
    if (FCGX_GetError(connection->request.in) != 0) {
        free(buffer);
        errno = EIO;
        return error_set("request body: read failed");
    }
    buffer[used] = '\0';
    *body = buffer;
    *length = used;
    return 0;
}

static int stream_error(FCGX_Stream *stream)
{
    int error = FCGX_GetError(stream);

    errno = error > 0 ? error : EPIPE;
    return -1;
}

int fcgi_connection_write(struct fcgi_connection *connection, const void *data, size_t length)
{
    const char *bytes = data;

    if (!connection->accepted) {
        errno = ENOTCONN;
        return -1;
    }
    while (length > 0) {
        int chunk = length > (1u << 30) ? (1 << 30) : (int)length;
        int n = FCGX_PutStr(bytes, chunk, connection->request.out);
        if (n < 0)
            return stream_error(connection->request.out);
        bytes += n;
        length -= (size_t)n;
    }
    return 0;
}

int fcgi_connection_flush(struct fcgi_connection *connection)
{
    if (!connection->accepted) {
        errno = ENOTCONN;
        return -1;
    }
    if (FCGX_FFlush(connection->request.out) < 0)
        return stream_error(connection->request.out);
    return 0;
}

void fcgi_connection_forbid_keepalive(struct fcgi_connection *connection)
{
    connection->request.keepConnection = 0;
}

int fcgi_connection_finish(struct fcgi_connection *connection)
{
    if (connection->request.ipcFd >= 0)
        FCGX_Detach(&connection->request);
    FCGX_Finish_r(&connection->request);
    connection->accepted = 0;
    return connection->request.ipcFd >= 0;
}

void fcgi_connection_free(struct fcgi_connection *connection)
{
    if (!connection)
        return;
    if (connection->request.ipcFd >= 0)
        FCGX_Detach(&connection->request);
    /* Free with close: the streams, the params and the descriptor. */
    FCGX_Free(&connection->request, 1);
    free(connection);
}
