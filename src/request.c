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
#include "request_reader.h"
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

/*
 * Reads one request off the socket, every record checked as it arrives.
 * Blocking reads, bounded by the read deadline (the watcher shuts the
 * socket down when it passes).  -1: drop the connection.
 */
static int read_request(struct connection *connection, struct request_reader *reader,
                        enum request_verdict *verdict)
{
    int fd = connection_fd(connection);

    for (;;) {
        ssize_t n;

        *verdict = request_reader_parse(reader);
        if (*verdict != REQUEST_NEED_MORE)
            break;
        if (request_reader_room(reader, 4096) < 0)
            return -1;
        n = read(fd, reader->data + reader->length, reader->capacity - reader->length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;   /* closed between requests, reset, or the deadline passed */
        reader->length += (size_t)n;
    }
    if (*verdict == REQUEST_INVALID) {
        log_line(LOG_INFO, "bad_request", "reason=\"%s\"", reader->why);
        return -1;
    }
    return 0;
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
    struct request_reader reader;
    enum request_verdict verdict;
    int excess;
    const struct route *route;
    char **params = NULL, *body = NULL;
    size_t body_length = 0;
    detach_job *job;
    int rc;

    request_reader_init(&reader, core->options.max_body);
    rc = read_request(connection, &reader, &verdict);
    connection_reading_done(connection);
    if (rc < 0 || fcgi_connection_accept(connection->fcgi, reader.data, reader.head_length) < 0) {
        /* EOF between requests, garbage, a timeout: this connection only. */
        request_reader_free(&reader);
        connection_close(connection);
        return;
    }
    /* Bytes past the request: a client that does not wait for our answer
     * (pipelining, an abort sent at once).  No keep-alive for it, and an
     * attached job learns it at once from the watcher. */
    excess = verdict == REQUEST_COMPLETE && reader.length > reader.request_length;
    if (excess)
        fcgi_connection_forbid_keepalive(connection->fcgi);
    body = request_reader_take_body(&reader, &body_length);
    request_reader_free(&reader);
    if (request_path(connection->fcgi, path, sizeof(path)) < 0) {
        connection_respond(connection, "400 Bad Request", NULL);
        goto release;
    }
    if (verdict == REQUEST_TOO_LARGE) {
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
        if (excess)
            connection_report_abort(connection);
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
