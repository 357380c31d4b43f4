/*
 * request.c - one request, from its first byte to its answer.
 *
 * Read params and body (bounded in size and in time), find the route,
 * admit the job, answer.  For a trigger the answer is the empty 200 and
 * the connection is free again at once; for an attached job the
 * connection goes to the job.  Nothing here waits for a job.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connection.h"
#include "executor.h"
#include "fcgi_connection.h"
#include "job.h"
#include "access.h"
#include "log.h"
#include "status_page.h"
#include "request_head.h"
#include "route.h"
#include "server_core.h"
#include "spool.h"
#include "worker.h"

#define MAX_PATH_LENGTH 4096

/* The path routes match: nginx's normalized DOCUMENT_URI when there is one,
 * else SCRIPT_NAME + PATH_INFO (Apache), else REQUEST_URI without query. */
static int request_path(struct fcgi_connection *fcgi, char *path, size_t size)
{
    const char *document_uri = fcgi_connection_param(fcgi, "DOCUMENT_URI");
    const char *script_name = fcgi_connection_param(fcgi, "SCRIPT_NAME");
    const char *request_uri = fcgi_connection_param(fcgi, "REQUEST_URI");
    int n;

    if (document_uri && *document_uri) {
        n = snprintf(path, size, "%s", document_uri);
    } else if (script_name && *script_name) {
        const char *path_info = fcgi_connection_param(fcgi, "PATH_INFO");
        n = snprintf(path, size, "%s%s", script_name, path_info ? path_info : "");
    } else if (request_uri && *request_uri) {
        n = snprintf(path, size, "%.*s", (int)strcspn(request_uri, "?"), request_uri);
    } else {
        return -1;
    }
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* One allocation holding the pointer array and the strings, so the job
 * frees its params with one free().  HTTP_PROXY is dropped here (httpoxy):
 * a client's "Proxy:" header must never steer a job's outgoing requests. */
static char **copy_params(char **envp)
{
    size_t count = 0, bytes = 0, kept = 0;
    char **copy, *text;

    for (char **p = envp; *p; p++) {
        count++;
        bytes += strlen(*p) + 1;
    }
    copy = malloc((count + 1) * sizeof(char *) + bytes);
    if (!copy)
        return NULL;
    text = (char *)(copy + count + 1);
    for (char **p = envp; *p; p++) {
        size_t length = strlen(*p) + 1;
        if (strncmp(*p, "HTTP_PROXY=", 11) == 0)
            continue;
        memcpy(text, *p, length);
        copy[kept++] = text;
        text += length;
    }
    copy[kept] = NULL;
    return copy;
}

static void acknowledge(struct connection *connection, const char *job_id)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
                     "X-Detach-Job: %s\r\n\r\n", job_id);

    if (fcgi_connection_write(connection->fcgi, head, (size_t)n) < 0)
        fcgi_connection_forbid_keepalive(connection->fcgi);
}

static void log_rejected(const char *path, const char *reason)
{
    char quoted[256];

    log_line(LOG_INFO, "rejected", "path=%s reason=%s",
             log_quote(quoted, sizeof(quoted), path), reason);
}

/* A params phase split into records this small is an attack, not nginx. */
#define MAX_HEAD_BYTES (2 * REQUEST_HEAD_MAX_PARAMS_BYTES + 4096)

/*
 * Waits for bytes beyond those already in the socket buffer.  A peek
 * leaves the buffer readable, so level-triggered readiness would return at
 * once; an edge-triggered epoll set wakes on each new arrival.  Only
 * requests that arrive in pieces come here.
 */
static int wait_for_more(int fd, int *epoll_fd)
{
    struct epoll_event event = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET };

    if (*epoll_fd < 0) {
        *epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (*epoll_fd < 0 || epoll_ctl(*epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0)
            return -1;
    }
    /* Unbounded here: the read deadline shuts the socket down (HUP). */
    while (epoll_wait(*epoll_fd, &event, 1, -1) < 0)
        if (errno != EINTR)
            return -1;
    /* Shut down (the deadline) or half-closed by the peer: the bytes still
     * buffered can never complete the request, and no new edge will come. */
    if (event.events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))
        return -1;
    return 0;
}

/*
 * Peeks (never consumes) until the request's params phase is all in the
 * socket buffer, and checks it.  Bounded by the read deadline, which shuts
 * the socket down.  0: libfcgi may parse; -1: drop the connection.
 */
static int check_request_head(struct connection *connection)
{
    uint8_t first[4096], *buffer = first;
    size_t capacity = sizeof(first), needed = 0, seen = 0;
    int fd = connection_fd(connection), epoll_fd = -1, rc = -1;
    const char *why = NULL;

    for (;;) {
        ssize_t n = recv(fd, buffer, capacity, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            n = 0;
        else if (n <= 0)
            goto out;   /* closed, reset, or the read deadline passed */
        if ((size_t)n <= seen) {
            /* Nothing new since the last look: wait for an arrival. */
            if (n > 0 && (size_t)n < seen)
                goto out;
            if (wait_for_more(fd, &epoll_fd) < 0)
                goto out;
            continue;
        }
        seen = (size_t)n;
        switch (request_head_check(buffer, (size_t)n, REQUEST_HEAD_MAX_PARAMS_BYTES, &needed, &why)) {
        case REQUEST_HEAD_COMPLETE:
            rc = 0;
            goto out;
        case REQUEST_HEAD_INVALID:
            log_line(LOG_INFO, "bad_request", "reason=\"%s\"", why);
            goto out;
        case REQUEST_HEAD_INCOMPLETE:
            break;
        }
        if (needed > MAX_HEAD_BYTES) {
            log_line(LOG_INFO, "bad_request", "reason=\"the params phase is too large\"");
            goto out;
        }
        if (needed > capacity) {
            uint8_t *grown = malloc(needed);
            if (!grown)
                goto out;
            if (buffer != first)
                free(buffer);
            buffer = grown;
            capacity = needed;
        }
    }
out:
    if (epoll_fd >= 0)
        close(epoll_fd);
    if (buffer != first)
        free(buffer);
    return rc;
}

/* "<status_path>" or "<status_path>/jobs/<id>": *subpath is the rest. */
static int is_status_request(const char *status_path, const char *path, const char **subpath)
{
    size_t length;

    if (!status_path)
        return 0;
    length = strlen(status_path);
    if (strncmp(path, status_path, length) != 0)
        return 0;
    if (path[length] == '\0' || strncmp(path + length, "/jobs/", 6) == 0) {
        *subpath = path + length;
        return 1;
    }
    return 0;
}

static void serve_status(struct server_core *core, struct connection *connection,
                         const char *subpath)
{
    const char *remote = fcgi_connection_param(connection->fcgi, "REMOTE_ADDR");
    const char *query = fcgi_connection_param(connection->fcgi, "QUERY_STRING");
    struct status_response response = { NULL, 0 };

    if (!access_allowed(core->options.status_allow, remote)) {
        connection_respond(connection, "403 Forbidden", NULL);
        return;
    }
    if (status_page_render(&core->registry, subpath, query ? query : "", &response) < 0) {
        connection_respond(connection, "500 Internal Server Error", NULL);
        return;
    }
    if (fcgi_connection_write(connection->fcgi, response.text, response.length) < 0)
        connection_forbid_keepalive(connection);
    free(response.text);
}

void request_serve(struct server_core *core, struct connection *connection)
{
    char path[MAX_PATH_LENGTH], job_id[64];
    const struct route *route;
    char **params = NULL, *body = NULL;
    size_t body_length = 0;
    detach_job *job;
    int rc;

    if (check_request_head(connection) < 0 || fcgi_connection_accept(connection->fcgi) < 0) {
        /* EOF between requests, garbage, a timeout: this connection only. */
        connection_reading_done(connection);
        connection_close(connection);
        return;
    }
    rc = fcgi_connection_read_body(connection->fcgi, core->options.max_body, &body, &body_length);
    connection_reading_done(connection);
    if (rc < 0) {
        fcgi_connection_forbid_keepalive(connection->fcgi);
        goto release;
    }
    if (request_path(connection->fcgi, path, sizeof(path)) < 0) {
        connection_respond(connection, "400 Bad Request", NULL);
        goto release;
    }
    if (rc == 1) {
        /* The rest of the body is still on the wire: the connection cannot
         * carry another request. */
        log_rejected(path, "body_too_large");
        fcgi_connection_forbid_keepalive(connection->fcgi);
        connection_respond(connection, "413 Payload Too Large", NULL);
        goto release;
    }
    const char *subpath;
    if (is_status_request(core->options.status_path, path, &subpath)) {
        serve_status(core, connection, subpath);
        goto release;
    }
    route = route_table_match(atomic_load(&core->routes), path);
    if (!route) {
        log_rejected(path, "no_route");
        connection_respond(connection, "404 Not Found", NULL);
        goto release;
    }
    if (atomic_load(&core->stopping)) {
        log_rejected(path, "stopping");
        connection_respond(connection, "503 Service Unavailable", "Retry-After: 5\r\n");
        goto release;
    }
    params = copy_params(fcgi_connection_params(connection->fcgi));
    if (!params) {
        connection_respond(connection, "500 Internal Server Error", NULL);
        goto release;
    }
    job = job_new(core, route, params, body, body_length,
                  route->mode == DETACH_ATTACHED ? connection : NULL);
    params = NULL;
    body = NULL;   /* both belong to the job now */
    if (!job) {
        connection_respond(connection, "500 Internal Server Error", NULL);
        goto release;
    }
    /* Once submitted the job may run and end before we answer: keep its id. */
    snprintf(job_id, sizeof(job_id), "%s", detach_job_id(job));
    if (route->mode == DETACH_ATTACHED) {
        job_list(job);
        if (connection_watch_for_abort(connection, job) < 0 || executor_submit(core->executor, job) < 0) {
            connection_unwatch_abort(connection);
            job_unlist(job, 1);
            job_free(job);
            log_rejected(path, "queue_full");
            connection_respond(connection, "503 Service Unavailable", "Retry-After: 1\r\n");
            goto release;
        }
        log_line(LOG_INFO, "accepted", "job=%s route=%s mode=attached", job_id, route->path);
        return;   /* the job answers on this connection and releases it */
    }
    /* With a spool the 200 promises durability: on disk first. */
    if (core->spool) {
        if (!executor_has_room(core->executor)) {
            registry_rejected(&core->registry);
            job_free(job);
            log_rejected(path, "queue_full");
            connection_respond(connection, "503 Service Unavailable", "Retry-After: 1\r\n");
            goto release;
        }
        if (job_spool(job) < 0) {
            log_line(LOG_ERROR, "spool_write", "job=%s error=\"%s\"", job_id, detach_last_error());
            job_free(job);
            connection_respond(connection, "503 Service Unavailable", "Retry-After: 5\r\n");
            goto release;
        }
    }
    job_list(job);
    if (executor_submit(core->executor, job) < 0) {
        job_unlist(job, 1);
        if (core->spool && spool_remove(core->spool, job_id) < 0)
            log_line(LOG_ERROR, "spool_remove", "job=%s error=\"%s\"", job_id, detach_last_error());
        job_free(job);
        log_rejected(path, "queue_full");
        connection_respond(connection, "503 Service Unavailable", "Retry-After: 1\r\n");
        goto release;
    }
    log_line(LOG_INFO, "accepted", "job=%s route=%s mode=trigger", job_id, route->path);
    acknowledge(connection, job_id);
release:
    free(params);
    free(body);
    connection_release(connection);
}
