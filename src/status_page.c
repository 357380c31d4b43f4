/*
 * status_page.c - rendering the status endpoint from a registry copy.
 *
 * The registry is copied once under its lock; everything here works on
 * the copy, so a slow reader never holds up a job.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status_page.h"

#define MAX_JOBS_SHOWN (REGISTRY_RECENT + 1024)

struct text {
    char *data;
    size_t length, capacity;
    int failed;
};

static void append(struct text *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append(struct text *text, const char *fmt, ...)
{
    va_list args;
    int n;

    if (text->failed)
        return;
    for (;;) {
        size_t room = text->capacity - text->length;
        va_start(args, fmt);
        n = vsnprintf(text->data ? text->data + text->length : NULL, room, fmt, args);
        va_end(args);
        if (n < 0) {
            text->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            text->length += (size_t)n;
            return;
        }
        size_t capacity = (text->capacity + (size_t)n + 1) * 2;
        char *grown = realloc(text->data, capacity);
        if (!grown) {
            text->failed = 1;
            return;
        }
        text->data = grown;
        text->capacity = capacity;
    }
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void append_json_string(struct text *text, const char *value)
{
    append(text, "\"");
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\')
            append(text, "\\%c", *p);
        else if (*p < 0x20)
            append(text, "\\u%04x", *p);
        else
            append(text, "%c", *p);
    }
    append(text, "\"");
}

static const char *state_name(enum job_state state)
{
    switch (state) {
    case JOB_QUEUED:  return "queued";
    case JOB_RUNNING: return "running";
    default:          return "ended";
    }
}

static void append_job_json(struct text *text, const struct job_snapshot *job)
{
    append(text, "{\"id\":");
    append_json_string(text, job->id);
    append(text, ",\"route\":");
    append_json_string(text, job->route);
    append(text, ",\"mode\":\"%s\",\"state\":\"%s\",\"connection_status\":%d",
           job->mode == DETACH_ATTACHED ? "attached" : "trigger", state_name(job->state),
           job->connection_status);
    if (job->exit_signal >= 0)
        append(text, ",\"exit\":{\"signal\":%d}", job->exit_signal);
    else if (job->exit_code >= 0)
        append(text, ",\"exit\":{\"code\":%d}", job->exit_code);
    else
        append(text, ",\"exit\":null");
    if (job->progress >= 0) {
        append(text, ",\"progress\":{\"percent\":%d,\"message\":", job->progress);
        append_json_string(text, job->message);
        append(text, "}");
    } else {
        append(text, ",\"progress\":null");
    }
    append(text, ",\"retry\":%s,\"times\":{\"accepted_ms\":%llu,\"started_ms\":%llu,"
                 "\"ended_ms\":%llu}}",
           job->retry ? "true" : "false", (unsigned long long)job->accepted_unix_ms,
           (unsigned long long)job->started_unix_ms, (unsigned long long)job->ended_unix_ms);
}

static void append_counters_json(struct text *text, const struct registry_counters *counters)
{
    append(text,
           "{\"accepted\":%llu,\"queued\":%llu,\"running\":%llu,\"completed\":%llu,"
           "\"failed\":%llu,\"aborted\":%llu,\"timed_out\":%llu,\"rejected\":%llu,"
           "\"uptime\":%llu}\n",
           (unsigned long long)counters->accepted, (unsigned long long)counters->queued,
           (unsigned long long)counters->running, (unsigned long long)counters->completed,
           (unsigned long long)counters->failed, (unsigned long long)counters->aborted,
           (unsigned long long)counters->timed_out, (unsigned long long)counters->rejected,
           (unsigned long long)counters->uptime_seconds);
}

static int finish(struct text *body, const char *status, const char *type,
                  struct status_response *response)
{
    struct text whole = { NULL, 0, 0, 0 };

    if (body->failed) {
        free(body->data);
        return -1;
    }
    append(&whole, "Status: %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
                   "Content-Length: %zu\r\n\r\n", status, type, body->length);
    if (body->length)
        append(&whole, "%.*s", (int)body->length, body->data);
    free(body->data);
    if (whole.failed) {
        free(whole.data);
        return -1;
    }
    response->text = whole.data;
    response->length = whole.length;
    return 0;
}

static int render_job(struct registry *registry, const char *id, struct status_response *response)
{
    struct text body = { NULL, 0, 0, 0 };
    struct job_snapshot job;

    if (registry_find(registry, id, &job) < 0) {
        append(&body, "{\"error\":\"no such job\",\"id\":");
        append_json_string(&body, id);
        append(&body, "}\n");
        return finish(&body, "404 Not Found", "application/json", response);
    }
    append_job_json(&body, &job);
    append(&body, "\n");
    return finish(&body, "200 OK", "application/json", response);
}

static const char *query_format(const char *query)
{
    for (const char *p = query; p && *p; p += strcspn(p, "&"), p += *p == '&') {
        if (strncmp(p, "format=", 7) == 0) {
            if (strncmp(p + 7, "prometheus", 10) == 0 && (p[17] == '\0' || p[17] == '&'))
                return "prometheus";
            if (strncmp(p + 7, "html", 4) == 0 && (p[11] == '\0' || p[11] == '&'))
                return "html";
            if (strncmp(p + 7, "json", 4) == 0 && (p[11] == '\0' || p[11] == '&'))
                return "json";
            return "unknown";
        }
    }
    return "json";
}

int status_page_render(struct registry *registry, const char *subpath, const char *query,
                       struct status_response *response)
{
    struct registry_counters counters;
    struct text body = { NULL, 0, 0, 0 };
    const char *format;
    int rc;

    if (strncmp(subpath, "/jobs/", 6) == 0)
        return render_job(registry, subpath + 6, response);
    format = query_format(query);
    if (strcmp(format, "json") != 0) {
        append(&body, "{\"error\":\"unknown format; try json, prometheus or html\"}\n");
        return finish(&body, "400 Bad Request", "application/json", response);
    }
    registry_copy(registry, &counters, NULL, 0);
    append_counters_json(&body, &counters);
    rc = finish(&body, "200 OK", "application/json", response);
    return rc;
}
