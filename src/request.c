/*
 * request.c - one request, from its first byte to its answer.
 *
 * Read the request, every record checked (bounded in size and in time),
 * find the route, admit the job, answer.  For a trigger the answer is the empty 200 and
 * the connection is free again at once; for an attached job the
 * connection goes to the job.  Nothing here waits for a job.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "connection.h"
#include "executor.h"
#include "fcgi_connection.h"
#include "job.h"
#include "log.h"
#include "request_reader.h"
#include "route.h"
#include "server_core.h"
#include "spool.h"
#include "status_page.h"
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

static void refuse_full(struct connection *connection, const char *path)
{
    log_rejected(path, "queue_full");
    connection_respond(connection, "503 Service Unavailable", "Retry-After: 1\r\n");
}

/*
 * An attached job takes the connection: the watcher watches it for the
 * peer leaving from now on.  1 when the job has it; 0 when the answer was
 * a refusal and the connection is still ours.
 */
static int admit_attached(struct server_core *core, struct connection *connection,
                          detach_job *job, const char *path, int peer_spoke)
{
    char job_id[64];

    snprintf(job_id, sizeof(job_id), "%s", detach_job_id(job));
    job_list(job);
    if (connection_watch_for_abort(connection, job) < 0)
        goto refused;
    /* Before the submit: once submitted, the job may end and free the
     * connection at any moment. */
    if (peer_spoke)
        connection_report_abort(connection);
    if (executor_submit(core->executor, job) < 0)
        goto refused;
    log_line(LOG_INFO, "accepted", "job=%s route=%s mode=attached", job_id, path);
    return 1;
refused:
    connection_unwatch_abort(connection);
    job_unlist(job, 1);
    job_free(job);
    refuse_full(connection, path);
    return 0;
}

/* A trigger: queued (and spooled, with a spool) before its 200. */
static void admit_trigger(struct server_core *core, struct connection *connection,
                          detach_job *job, const char *path)
{
    char job_id[64];

    /* Once submitted the job may run and end before we answer: keep its id. */
    snprintf(job_id, sizeof(job_id), "%s", detach_job_id(job));
    if (core->spool) {
        /* Nothing is written for a request that would be refused anyway. */
        if (!executor_has_room(core->executor)) {
            registry_rejected(&core->registry);
            job_free(job);
            refuse_full(connection, path);
            return;
        }
        if (job_spool(job) < 0) {
            log_line(LOG_ERROR, "spool_write", "job=%s error=\"%s\"", job_id, detach_last_error());
            job_free(job);
            connection_respond(connection, "503 Service Unavailable", "Retry-After: 5\r\n");
            return;
        }
    }
    job_list(job);
    if (executor_submit(core->executor, job) < 0) {
        job_unlist(job, 1);
        if (core->spool && spool_remove(core->spool, job_id) < 0)
            log_line(LOG_ERROR, "spool_remove", "job=%s error=\"%s\"", job_id, detach_last_error());
        job_free(job);
        refuse_full(connection, path);
        return;
    }
    log_line(LOG_INFO, "accepted", "job=%s route=%s mode=trigger", job_id, path);
    acknowledge(connection, job_id);
}

void request_serve(struct server_core *core, struct connection *connection)
{
    char path[MAX_PATH_LENGTH];
    struct request_reader reader;
    enum request_verdict verdict;
    const struct route *route;
    const char *subpath;
    char **params = NULL, *body = NULL;
    size_t body_length = 0;
    detach_job *job;
    int read_failed, peer_spoke;

    request_reader_init(&reader, core->options.max_body);
    read_failed = read_request(connection, &reader, &verdict) < 0;
    connection_reading_done(connection);
    if (read_failed || fcgi_connection_accept(connection->fcgi, reader.data, reader.head_length) < 0) {
        /* EOF between requests, garbage, a timeout: this connection only. */
        request_reader_free(&reader);
        connection_close(connection);
        return;
    }
    /* Bytes past the request: a client that does not wait for our answer
     * (pipelining, an abort sent at once).  No keep-alive for it, and an
     * attached job takes it as the peer leaving. */
    peer_spoke = verdict == REQUEST_COMPLETE && reader.trailing_length > 0;
    if (peer_spoke || verdict == REQUEST_TOO_LARGE)
        connection_expect_unread(connection);
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
        connection_respond(connection, "413 Payload Too Large", NULL);
        goto release;
    }
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
    job = params ? job_new(core, route, params, body, body_length,
                           route->mode == DETACH_ATTACHED ? connection : NULL)
                 : NULL;
    if (!job) {
        /* job_new frees what it was given when it fails. */
        if (!params)
            free(body);
        params = NULL;
        body = NULL;
        connection_respond(connection, "500 Internal Server Error", NULL);
        goto release;
    }
    params = NULL;
    body = NULL;   /* both belong to the job now */
    if (route->mode == DETACH_ATTACHED) {
        if (admit_attached(core, connection, job, route->path, peer_spoke))
            return;   /* the job answers on this connection and releases it */
    } else {
        admit_trigger(core, connection, job, route->path);
    }
release:
    free(params);
    free(body);
    connection_release(connection);
}
