/*
 * request.c - what a whole request asks for, and its answer.
 *
 * The watcher has read the request, every record checked.  Find the
 * route, admit the job, answer.  A trigger with no spool is answered on
 * the watcher thread at once (dt_request_serve_at_once): its 200 is three
 * records in one send().  What may block -- a spool
 * write, the status page, a refusal, an attached job that answers on the
 * connection -- is a worker's (dt_request_serve).  Nothing here waits for a
 * job.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "fcgi/fcgi_response.h"
#include "fcgi/request_reader.h"
#include "io/connection.h"
#include "sched/executor.h"
#include "sched/job.h"
#include "sched/spool.h"
#include "server/access.h"
#include "server/request.h"
#include "server/route.h"
#include "server/server_core.h"
#include "server/status_page.h"

#define MAX_PATH_LENGTH 4096

/* Copies what fits and says whether all did: cheaper than snprintf("%s")
 * on the ack path. */
static int append(char *out, size_t size, size_t *used, const char *text, size_t length)
{
    if (length >= size - *used)
        return -1;
    memcpy(out + *used, text, length);
    *used += length;
    out[*used] = '\0';
    return 0;
}

/* Once submitted a job may run and end before we answer: its id is
 * copied first. */
static void copy_job_id(char out[64], detach_job *job)
{
    size_t used = 0;

    append(out, 64, &used, detach_job_id(job), strlen(detach_job_id(job)));
}

/* The path routes match: nginx's normalized DOCUMENT_URI when there is one,
 * else SCRIPT_NAME + PATH_INFO (Apache), else REQUEST_URI without query. */
static int request_path(const char *params, char *path, size_t size)
{
    const char *document_uri = dt_request_param(params, "DOCUMENT_URI");
    const char *script_name, *request_uri;
    size_t used = 0;

    /* Looked up in turn: behind nginx the first is there, and each
     * lookup walks the params. */
    if (document_uri && *document_uri)
        return append(path, size, &used, document_uri, strlen(document_uri));
    script_name = dt_request_param(params, "SCRIPT_NAME");
    if (script_name && *script_name) {
        const char *path_info = dt_request_param(params, "PATH_INFO");
        return append(path, size, &used, script_name, strlen(script_name)) < 0 ||
               append(path, size, &used, path_info ? path_info : "",
                      path_info ? strlen(path_info) : 0) < 0 ? -1 : 0;
    }
    request_uri = dt_request_param(params, "REQUEST_URI");
    if (request_uri && *request_uri)
        return append(path, size, &used, request_uri, strcspn(request_uri, "?"));
    return -1;
}

/* The empty 200 that acknowledges a trigger, naming its job. */
static int format_acknowledgement(char *out, size_t size, const char *job_id)
{
    static const char head[] = "Status: 200 OK\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 0\r\nX-Detach-Job: ";
    size_t used = 0;

    if (append(out, size, &used, head, sizeof(head) - 1) < 0 ||
        append(out, size, &used, job_id, strlen(job_id)) < 0 ||
        append(out, size, &used, "\r\n\r\n", 4) < 0)
        return -1;
    return (int)used;
}

static void acknowledge(struct connection *connection, const char *job_id)
{
    char head[256];
    int n = format_acknowledgement(head, sizeof(head), job_id);

    if (n < 0 || dt_fcgi_response_send_whole(dt_connection_response(connection), head, (size_t)n) < 0)
        dt_connection_forbid_keepalive(connection);
}

static void log_rejected(const char *path, const char *reason)
{
    char quoted[256];

    dt_log_line(LOG_INFO, "rejected", "path=%s reason=%s",
             dt_log_quote(quoted, sizeof(quoted), path), reason);
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
                         const char *params, const char *subpath)
{
    const char *remote = dt_request_param(params, "REMOTE_ADDR");
    const char *query = dt_request_param(params, "QUERY_STRING");
    struct status_response response = { NULL, 0 };

    if (!dt_access_allowed(core->options.status_allow, remote)) {
        dt_connection_respond(connection, "403 Forbidden", NULL);
        return;
    }
    if (dt_status_page_render(&core->registry, subpath, query ? query : "", &response) < 0) {
        dt_connection_respond(connection, "500 Internal Server Error", NULL);
        return;
    }
    if (dt_fcgi_response_send_whole(dt_connection_response(connection), response.text,
                                 response.length) < 0)
        dt_connection_forbid_keepalive(connection);
    free(response.text);
}

enum admission { ADMITTED, QUEUE_FULL, SPOOL_FAILED };

/* The 503 for a refused job: soon again when the queue was full,
 * later when the spool could not be written. */
static const char *retry_after(enum admission admission)
{
    return admission == SPOOL_FAILED ? "Retry-After: 5\r\n" : "Retry-After: 1\r\n";
}

/* The log's reason for an executor refusal (its errno). */
static const char *refusal_reason(int error)
{
    return error == ENOBUFS ? "queue_bytes" : "queue_full";
}

/*
 * Is the queue full, in jobs or in bytes (queue_bytes)?  Then the request is refused before its job is
 * built, counted and logged as a refusal.  A job built only to be
 * refused is carved from the job memory and released at once, and with
 * such jobs between the admitted ones, each admitted job sat alone in a
 * 64-KiB chunk: under overload, with the queue full and 503s in between,
 * a queued job held 64 KiB instead of 1 (tests/soak: 13 MiB for its 200
 * queued jobs).  Racy, as a look without the executor's count can be:
 * the submit still decides.
 */
static int queue_is_full(struct server_core *core, const char *path, const char *params,
                         size_t body_length)
{
    int refused;

    if (dt_executor_has_room(core->executor, dt_request_params_size(params) + body_length))
        return 0;
    refused = errno;   /* which limit */
    dt_registry_rejected(&core->registry);
    log_rejected(path, refusal_reason(refused));
    return 1;
}

static void refuse_full(struct connection *connection, const char *path, int error)
{
    log_rejected(path, refusal_reason(error));
    dt_connection_respond(connection, "503 Service Unavailable", retry_after(QUEUE_FULL));
}

/* Watcher thread, watcher lock held: an attached job's peer went away. */
static void peer_left(void *job)
{
    dt_job_abort_locked(job);
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
    int refused;

    copy_job_id(job_id, job);
    dt_job_list(job);
    if (dt_connection_watch_for_abort(connection, peer_left, job) < 0)
        goto refused;
    /* Before the submit: once submitted, the job may end and free the
     * connection at any moment. */
    if (peer_spoke)
        dt_connection_report_abort(connection);
    /* Before the submit: once submitted, the job thread may log
     * "started" at once, and "accepted" must come first. */
    dt_log_line(LOG_INFO, "accepted", "job=%s route=%s mode=attached", job_id, path);
    if (dt_executor_submit(core->executor, dt_job_task(job)) < 0) {
        int saved = errno;   /* says why, for refuse_full() */

        dt_log_line(LOG_INFO, "withdrawn", "job=%s reason=%s", job_id, refusal_reason(saved));
        errno = saved;
        goto refused;
    }
    return 1;
refused:
    refused = errno;
    dt_connection_unwatch_abort(connection);
    dt_job_unlist(job, 1);
    dt_job_free(job);
    refuse_full(connection, path, refused);
    return 0;
}

/*
 * A trigger's job: spooled (with a spool) and queued, or freed.  Logged
 * either way; the caller answers, on the watcher or on a worker.  job_id
 * gets the id for the 200.  On the watcher the job thread is woken at the
 * end of the epoll round, once for the round's triggers.
 */
static enum admission admit_trigger_job(struct server_core *core, detach_job *job,
                                        const char *path, char job_id[64], int on_watcher)
{
    int submitted;

    copy_job_id(job_id, job);
    /* The caller looked for room (queue_is_full()): nothing is written
     * for a request that would be refused anyway. */
    if (core->spool && dt_job_spool(job) < 0) {
        dt_log_line(LOG_ERROR, "spool_write", "job=%s error=\"%s\"", job_id, detach_last_error());
        dt_job_free(job);
        return SPOOL_FAILED;
    }
    dt_job_list(job);
    /* Before the submit, so that "accepted" always precedes the job's
     * "started"; a submit that fails after all says "withdrawn". */
    dt_log_line(LOG_INFO, "accepted", "job=%s route=%s mode=trigger", job_id, path);
    submitted = on_watcher ? dt_executor_submit_deferred(core->executor, dt_job_task(job))
                           : dt_executor_submit(core->executor, dt_job_task(job));
    if (submitted < 0) {
        int refused = errno;

        dt_log_line(LOG_INFO, "withdrawn", "job=%s reason=%s", job_id, refusal_reason(refused));
        dt_job_unlist(job, 1);
        if (core->spool && dt_spool_remove(core->spool, job_id) < 0)
            dt_log_line(LOG_ERROR, "spool_remove", "job=%s error=\"%s\"", job_id, detach_last_error());
        dt_job_free(job);
        log_rejected(path, refusal_reason(refused));
        return QUEUE_FULL;
    }
    return ADMITTED;
}

/* On a worker: a trigger with a spool, or one the watcher left. */
static void admit_trigger(struct server_core *core, struct connection *connection,
                          detach_job *job, const char *path)
{
    char job_id[64];
    enum admission admission = admit_trigger_job(core, job, path, job_id, 0);

    if (admission == ADMITTED)
        acknowledge(connection, job_id);
    else
        dt_connection_respond(connection, "503 Service Unavailable", retry_after(admission));
}

/*
 * Watcher thread.  Only the common case is served here: a whole trigger
 * request, nothing sent after it but the next request (a pipelining
 * client), no spool to write (an fsync would stall every connection), a
 * server not stopping.  Admission never blocks: the executor only queues,
 * and its spawner starts threads.
 */
int dt_request_serve_at_once(struct server_core *core, struct connection *connection)
{
    struct request_reader *reader = &connection->reader;
    char path[MAX_PATH_LENGTH], head[256], job_id[64];
    const struct route *route;
    const char *subpath;
    char *params, *body;
    size_t body_length;
    detach_job *job;
    enum admission admission;

    if (core->spool || reader->request_length == 0 ||
        (reader->trailing_length > 0 && !dt_request_reader_next_is_request(reader)) ||
        atomic_load(&core->io.stopping))
        return 0;
    params = dt_request_reader_params(reader);
    if (!params)
        return 0;
    if (request_path(params, path, sizeof(path)) < 0 ||
        is_status_request(core->options.status_path, path, &subpath) ||
        !(route = dt_route_table_match(atomic_load(&core->routes), path)) ||
        route->kind.mode != DETACH_TRIGGER) {
        free(params);
        return 0;
    }
    body = dt_request_reader_take_body(reader, &body_length);
    if (queue_is_full(core, route->kind.path, params, body_length)) {
        free(params);
        free(body);
        dt_connection_refuse_now(connection, "503 Service Unavailable", retry_after(QUEUE_FULL));
        return 1;
    }
    job = dt_job_new(&core->jobs, &route->kind, params, body, body_length, NULL);
    free(params);
    free(body);
    if (!job) {
        dt_connection_refuse_now(connection, "500 Internal Server Error", NULL);
        return 1;
    }
    admission = admit_trigger_job(core, job, route->kind.path, job_id, 1);
    if (admission != ADMITTED) {
        dt_connection_refuse_now(connection, "503 Service Unavailable", retry_after(admission));
        return 1;
    }
    /* A job id always fits: the head cannot come out short. */
    dt_connection_answer_now(connection, head, (size_t)format_acknowledgement(head, sizeof(head), job_id));
    return 1;
}

void dt_request_serve(struct server_core *core, struct connection *connection)
{
    struct request_reader *reader = &connection->reader;
    enum request_verdict verdict = dt_request_reader_parse(reader);   /* final: read whole */
    char path[MAX_PATH_LENGTH];
    const struct route *route;
    const char *subpath, *refusal;
    char *params = NULL, *body = NULL;
    size_t body_length = 0;
    detach_job *job;
    int peer_spoke;

    /* Bytes past the request that do not begin another (an abort sent at
     * once, garbage): no keep-alive, and an attached job takes them as the
     * peer leaving.  The next request of a pipelining client is kept and
     * served after this one (connection.c), unless the connection closes
     * anyway: then the rest of it is read and dropped. */
    peer_spoke = verdict == REQUEST_COMPLETE && reader->trailing_length > 0 &&
                 !dt_request_reader_next_is_request(reader);
    if (peer_spoke || verdict == REQUEST_TOO_LARGE ||
        (reader->trailing_length > 0 && !reader->keep_connection))
        dt_connection_expect_unread(connection);
    params = dt_request_reader_params(reader);
    body = dt_request_reader_take_body(reader, &body_length);

    if (!params) {
        dt_connection_respond(connection, "500 Internal Server Error", NULL);
        goto release;
    }
    if (request_path(params, path, sizeof(path)) < 0) {
        dt_connection_respond(connection, "400 Bad Request", NULL);
        goto release;
    }
    /* "/jobs/pre/../../etc" must not run the job of the prefix route
     * "/jobs/pre/", nor reach the status page: refused before anything
     * is matched, and logged as a rejection with its reason. */
    if ((refusal = dt_route_path_refusal(path))) {
        log_rejected(path, refusal);
        dt_connection_respond(connection, "400 Bad Request", NULL);
        goto release;
    }
    if (verdict == REQUEST_TOO_LARGE) {
        /* The rest of the body is still on the wire: the connection cannot
         * carry another request. */
        log_rejected(path, "body_too_large");
        dt_connection_respond(connection, "413 Payload Too Large", NULL);
        goto release;
    }
    if (is_status_request(core->options.status_path, path, &subpath)) {
        serve_status(core, connection, params, subpath);
        goto release;
    }
    route = dt_route_table_match(atomic_load(&core->routes), path);
    if (!route) {
        log_rejected(path, "no_route");
        dt_connection_respond(connection, "404 Not Found", NULL);
        goto release;
    }
    if (atomic_load(&core->io.stopping)) {
        log_rejected(path, "stopping");
        dt_connection_respond(connection, "503 Service Unavailable", "Retry-After: 5\r\n");
        goto release;
    }
    if (queue_is_full(core, route->kind.path, params, body_length)) {
        dt_connection_respond(connection, "503 Service Unavailable", retry_after(QUEUE_FULL));
        goto release;
    }
    job = dt_job_new(&core->jobs, &route->kind, params, body, body_length,
                  route->kind.mode == DETACH_ATTACHED ? connection : NULL);
    free(params);   /* the job has its own copies */
    free(body);
    params = body = NULL;
    if (!job) {
        dt_connection_respond(connection, "500 Internal Server Error", NULL);
        goto release;
    }
    if (route->kind.mode == DETACH_ATTACHED) {
        if (admit_attached(core, connection, job, route->kind.path, peer_spoke))
            return;   /* the job answers on this connection and releases it */
    } else {
        admit_trigger(core, connection, job, route->kind.path);
    }
release:
    free(params);
    free(body);
    dt_connection_release(connection);
}
