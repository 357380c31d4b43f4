/*
 * fcgi_connection.c - the libfcgi wrapper.
 *
 * libfcgi reads and writes through one descriptor, request.ipcFd, looked
 * up at each read and write.  We point it at a memfd holding the checked
 * head while FCGX_Accept_r() parses, then at the socket for the answer.
 * So libfcgi parses nothing we have not checked (its management-record
 * handling overflows a stack buffer in 2.4.2), and it never blocks on,
 * or times out on, a client.
 *
 * Two more behaviours are worked around here, and only here:
 *  - FCGX_Accept_r() accepts on its own listening socket when ipcFd is
 *    closed; we give it no listening socket (-1), so it fails at once
 *    instead of blocking in accept(), and keepConnection on, so its
 *    opening FCGX_Finish_r() keeps our descriptor.
 *  - Its close lingers up to 2 s reading until the peer closes;
 *    FCGX_Detach() before every close makes it immediate.
 * The fields set directly are below libfcgi's "don't use" line in
 * fcgiapp.h; they have had this layout since 2.4.0 and this file is the one
 * place that depends on it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "base/error.h"
#include "fcgi/fcgi_connection.h"

struct fcgi_connection {
    FCGX_Request request;
    int socket_fd;  /* ours to answer on; -1 once libfcgi closed it */
    int head_fd;    /* memfd the head is parsed from */
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
    connection->socket_fd = fd;
    connection->head_fd = -1;
    connection->request.ipcFd = fd;
    connection->request.keepConnection = 1;
    return connection;
}

static int load_head(struct fcgi_connection *connection, const void *head, size_t length)
{
    if (connection->head_fd < 0) {
        connection->head_fd = memfd_create("detach-request-head", MFD_CLOEXEC);
        if (connection->head_fd < 0)
            return error_set("memfd_create: %s", strerror(errno));
    }
    /* No truncation: bytes of a longer earlier head may follow, but libfcgi
     * stops parsing at the empty PARAMS record, which ends every head. */
    if (pwrite(connection->head_fd, head, length, 0) != (ssize_t)length ||
        lseek(connection->head_fd, 0, SEEK_SET) < 0)
        return error_set("request head: %s", strerror(errno));
    return 0;
}

int fcgi_connection_accept(struct fcgi_connection *connection, const void *head, size_t length)
{
    int rc;

    if (connection->socket_fd < 0) {
        errno = ENOTCONN;
        return -1;
    }
    if (load_head(connection, head, length) < 0)
        return -1;
    connection->request.ipcFd = connection->head_fd;
    FCGX_Detach(&connection->request);
    rc = FCGX_Accept_r(&connection->request);
    if (rc < 0) {
        /* It closed what it read from, the memfd, on its way out. */
        connection->head_fd = -1;
        connection->request.ipcFd = connection->socket_fd;
        connection->accepted = 0;
        errno = rc == -1 ? EIO : -rc;
        return error_set("libfcgi refused a checked request head (%d)", rc);
    }
    /* From here on it writes: to the socket. */
    connection->request.ipcFd = connection->socket_fd;
    connection->accepted = 1;
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
    if (connection->request.ipcFd < 0)
        connection->socket_fd = -1;   /* closed: not kept alive */
    return connection->socket_fd >= 0;
}

void fcgi_connection_free(struct fcgi_connection *connection)
{
    if (!connection)
        return;
    if (connection->request.ipcFd >= 0)
        FCGX_Detach(&connection->request);
    /* Free with close: the streams, the params and the descriptor. */
    FCGX_Free(&connection->request, 1);
    if (connection->head_fd >= 0)
        close(connection->head_fd);
    free(connection);
}
