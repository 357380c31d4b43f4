/*
 * status_page.c - rendering the status endpoint from a registry copy.
 *
 * The registry is copied once under its lock; everything here works on
 * the copy, so a slow reader never holds up a job.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/status_page.h"

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

static void append_job_json(struct text *text, const struct dt_job_snapshot *job)
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
    append(text, ",\"error\":");
    if (job->error[0])
        append_json_string(text, job->error);
    else
        append(text, "null");
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
    struct dt_job_snapshot job;

    if (dt_registry_find(registry, id, &job) < 0) {
        append(&body, "{\"error\":\"no such job\",\"id\":");
        append_json_string(&body, id);
        append(&body, "}\n");
        return finish(&body, "404 Not Found", "application/json", response);
    }
    append_job_json(&body, &job);
    append(&body, "\n");
    return finish(&body, "200 OK", "application/json", response);
}

/* ---- Prometheus text format 0.0.4 ---- */

static void append_metric(struct text *text, const char *name, const char *type,
                          const char *help, uint64_t value)
{
    append(text, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
           (unsigned long long)value);
}

static void append_prometheus(struct text *text, const struct registry_counters *counters)
{
    static const char histogram[] = "detach_job_duration_seconds";

    append_metric(text, "detach_jobs_accepted_total", "counter",
                  "Jobs accepted (acknowledged and queued) since detachd started.",
                  counters->accepted);
    append_metric(text, "detach_jobs_completed_total", "counter",
                  "Jobs that ended with exit code 0 (or a C handler that returned).", counters->completed);
    append_metric(text, "detach_jobs_failed_total", "counter",
                  "Jobs that ended with a non-zero exit code or a signal, or could not start.", counters->failed);
    append_metric(text, "detach_jobs_aborted_total", "counter",
                  "Jobs whose client went away (connection status bit 1).", counters->aborted);
    append_metric(text, "detach_jobs_timed_out_total", "counter",
                  "Jobs whose time limit ran out (connection status bit 2).",
                  counters->timed_out);
    append_metric(text, "detach_jobs_rejected_total", "counter",
                  "Triggers refused with 503 because the queue was full.", counters->rejected);
    append_metric(text, "detach_jobs_queued", "gauge", "Jobs waiting for a job thread.",
                  counters->queued);
    append_metric(text, "detach_jobs_running", "gauge", "Jobs running now.", counters->running);
    append_metric(text, "detach_uptime_seconds", "gauge", "Seconds since detachd started.",
                  counters->uptime_seconds);
    append(text, "# HELP %s How long jobs ran, from start to end.\n# TYPE %s histogram\n",
           histogram, histogram);
    /* The registry's buckets are cumulative already: a job counts in every
     * bucket whose bound it is under. */
    for (int i = 0; i < REGISTRY_BUCKETS; i++) {
        if (i == REGISTRY_BUCKETS - 1)
            append(text, "%s_bucket{le=\"+Inf\"} %llu\n", histogram,
                   (unsigned long long)counters->duration_buckets[i]);
        else
            append(text, "%s_bucket{le=\"%g\"} %llu\n", histogram, dt_registry_bucket_bounds[i],
                   (unsigned long long)counters->duration_buckets[i]);
    }
    append(text, "%s_sum %.6f\n%s_count %llu\n", histogram, counters->duration_sum_seconds,
           histogram, (unsigned long long)counters->duration_buckets[REGISTRY_BUCKETS - 1]);
}

/* ---- HTML ---- */

/* Text and attribute values alike: & < > " ' escaped, control bytes gone. */
static void append_html(struct text *text, const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        switch (*p) {
        case '&':  append(text, "&amp;"); break;
        case '<':  append(text, "&lt;"); break;
        case '>':  append(text, "&gt;"); break;
        case '"':  append(text, "&quot;"); break;
        case '\'': append(text, "&#39;"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                append(text, " ");
            else
                append(text, "%c", *p);
        }
    }
}

static const char *connection_status_words(int status)
{
    switch (status & 3) {
    case 0:  return "normal";
    case 1:  return "aborted";
    case 2:  return "timeout";
    default: return "aborted + timeout";
    }
}

/* "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min". */
static void append_duration(struct text *text, uint64_t ms)
{
    uint64_t seconds = ms / 1000;

    if (ms < 1000)
        append(text, "%llu ms", (unsigned long long)ms);
    else if (seconds < 60)
        append(text, "%.1f s", (double)ms / 1000.0);
    else if (seconds < 3600)
        append(text, "%llu min %02llu s", (unsigned long long)(seconds / 60),
               (unsigned long long)(seconds % 60));
    else
        append(text, "%llu h %02llu min", (unsigned long long)(seconds / 3600),
               (unsigned long long)(seconds / 60 % 60));
}

static uint64_t wall_clock_now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* Queued: waiting so far; running: running so far; ended: how long it ran. */
static uint64_t elapsed_ms(const struct dt_job_snapshot *job, uint64_t now_ms)
{
    uint64_t from = job->started_unix_ms ? job->started_unix_ms : job->accepted_unix_ms;
    uint64_t to = job->state == JOB_ENDED && job->ended_unix_ms ? job->ended_unix_ms : now_ms;

    if (job->state == JOB_QUEUED)
        from = job->accepted_unix_ms;
    return from && to > from ? to - from : 0;
}

static void append_time(struct text *text, uint64_t unix_ms)
{
    char stamp[32];
    time_t seconds = (time_t)(unix_ms / 1000);
    struct tm utc;

    if (!unix_ms || !gmtime_r(&seconds, &utc)) {
        append(text, "&mdash;");
        return;
    }
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &utc);
    append(text, "<time datetime=\"%sZ\">%s</time>", stamp, stamp + 11);
}

static void append_job_row(struct text *text, const struct dt_job_snapshot *job, uint64_t now_ms)
{
    const char *state = state_name(job->state);

    append(text, "<tr id=\"job-");
    append_html(text, job->id);
    append(text, "\" class=\"%s\" data-job=\"", state);
    append_html(text, job->id);
    append(text, "\" data-state=\"%s\" data-connection-status=\"%d\">\n<td class=\"id\">",
           state, job->connection_status);
    append_html(text, job->id);
    if (job->retry)
        append(text, " <span class=\"tag\">retry</span>");
    append(text, "</td><td>");
    append_html(text, job->route);
    if (job->mode == DETACH_ATTACHED)
        append(text, " <span class=\"tag\">attached</span>");
    append(text, "</td><td class=\"state %s\">%s</td>\n<td class=\"progress\">", state, state);
    /* A bar only for a job that reported progress: an empty <progress>
     * is drawn as an animated "indeterminate" bar, which said "busy" for
     * ended jobs that never reported anything. */
    if (job->progress >= 0) {
        append(text, "<progress id=\"progress-");
        append_html(text, job->id);
        append(text, "\" data-job=\"");
        append_html(text, job->id);
        append(text, "\" value=\"%d\" max=\"100\">%d%%</progress> <span class=\"percent\">%d%%</span>",
               job->progress, job->progress, job->progress);
    } else {
        append(text, "<span class=\"none\">&mdash;</span>");
    }
    if (job->message[0]) {
        append(text, " <span class=\"message\">");
        append_html(text, job->message);
        append(text, "</span>");
    }
    append(text, "</td>\n<td class=\"cs%d\">%d <span class=\"words\">%s</span></td>",
           job->connection_status & 3, job->connection_status,
           connection_status_words(job->connection_status));
    append(text, "<td class=\"num\">");
    append_duration(text, elapsed_ms(job, now_ms));
    append(text, "</td><td>");
    append_time(text, job->accepted_unix_ms);
    append(text, "</td><td class=\"exit\">");
    if (job->error[0]) {
        /* A start that failed has no exit to show: its reason instead. */
        append(text, "<span class=\"bad error\" title=\"");
        append_html(text, job->error);
        append(text, "\">");
        append_html(text, job->error);
        append(text, "</span>");
    } else if (job->exit_signal >= 0)
        append(text, "<span class=\"bad\">signal %d</span>", job->exit_signal);
    else if (job->exit_code > 0)
        append(text, "<span class=\"bad\">%d</span>", job->exit_code);
    else if (job->exit_code == 0)
        append(text, "0");
    else
        append(text, "&mdash;");
    append(text, "</td></tr>\n");
}

static void append_job_table(struct text *text, const char *title, const char *id,
                             const struct dt_job_snapshot *jobs, size_t count,
                             enum job_state state, uint64_t now_ms)
{
    size_t shown = 0;

    for (size_t i = 0; i < count; i++)
        shown += jobs[i].state == state;
    append(text, "<section id=\"%s\"><h2>%s <span class=\"count\">%zu</span></h2>\n",
           id, title, shown);
    if (!shown) {
        append(text, "<p class=\"none\">none</p></section>\n");
        return;
    }
    append(text, "<table><thead><tr><th>job</th><th>route</th><th>state</th><th>progress</th>"
                 "<th>connection</th><th>elapsed</th><th>accepted (UTC)</th><th>exit</th>"
                 "</tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < count; i++)
        if (jobs[i].state == state)
            append_job_row(text, &jobs[i], now_ms);
    append(text, "</tbody></table></section>\n");
}

static const char page_style[] =
    ":root{color-scheme:light dark;--fg:#1d232a;--bg:#fff;--muted:#68717c;--line:#dde2e7;"
    "--accent:#2f6fb5;--bad:#b3261e;--ok:#2e7d32}"
    "@media (prefers-color-scheme:dark){:root{--fg:#e4e8ec;--bg:#15191d;--muted:#9aa4ae;"
    "--line:#2c333a;--accent:#6aa5e6;--bad:#f28b82;--ok:#81c995}}"
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);"
    "background:var(--bg);margin:1.5rem auto;max-width:80rem;padding:0 1rem}"
    "h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.6rem 0 .4rem}"
    ".sub{color:var(--muted);margin:0 0 1rem}"
    ".counters{display:flex;flex-wrap:wrap;gap:.5rem;margin:0;padding:0;list-style:none}"
    ".counters li{border:1px solid var(--line);border-radius:6px;padding:.35rem .7rem;"
    "min-width:6.5rem}.counters b{display:block;font-size:1.25rem}"
    ".counters span{color:var(--muted);font-size:.8rem}"
    "table{border-collapse:collapse;width:100%;table-layout:fixed}"
    "th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);"
    "vertical-align:middle;overflow-wrap:anywhere}"
    "th{color:var(--muted);font-weight:600;font-size:.8rem}"
    /* The three tables line up: the same fixed column widths.  Short
     * values (time, state, exit) get fixed widths sized for their longest
     * form at 14 px and never wrap; route, progress and connection take
     * the rest and wrap rather than cut, so nothing is hidden from 1024 px
     * windows up (tests/integration/test_browser.py measures it). */
    "th:nth-child(1){width:8.5rem}th:nth-child(3){width:4.5rem}th:nth-child(4){width:24%}"
    "th:nth-child(5){width:5rem}th:nth-child(6){width:5.5rem}th:nth-child(7){width:4.5rem}"
    "th:nth-child(8){width:4.5rem}"
    "td.state,td.num,td.exit,td:nth-child(7){white-space:nowrap}"
    "td.id{font-family:ui-monospace,monospace;font-size:.85rem}"
    "progress{width:8rem;max-width:45%;height:.9rem;vertical-align:middle;accent-color:var(--accent)}"
    ".percent{display:inline-block;min-width:2.8rem;text-align:right}"
    ".message{color:var(--muted)}.tag{font-size:.7rem;border:1px solid var(--line);"
    "border-radius:4px;padding:0 .3rem;color:var(--muted)}"
    ".bad,.cs1,.cs2,.cs3{color:var(--bad)}.state.running{color:var(--accent)}"
    ".none{color:var(--muted)}.count{color:var(--muted);font-weight:400}"
    "footer{color:var(--muted);margin-top:2rem;font-size:.8rem}";

static void append_html_page(struct text *text, const struct registry_counters *counters,
                             const struct dt_job_snapshot *jobs, size_t count)
{
    uint64_t now_ms = wall_clock_now_ms();
    const struct { const char *id, *name; uint64_t value; } shown[] = {
        { "running", "running", counters->running },
        { "queued", "queued", counters->queued },
        { "accepted", "accepted", counters->accepted },
        { "completed", "completed", counters->completed },
        { "failed", "failed", counters->failed },
        { "aborted", "aborted", counters->aborted },
        { "timed_out", "timed out", counters->timed_out },
        { "rejected", "rejected", counters->rejected },
    };

    append(text, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                 "<meta http-equiv=\"refresh\" content=\"2\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
                 "<title>detach status</title>\n<style>%s</style></head>\n<body>\n"
                 "<h1>detach</h1><p class=\"sub\">up ", page_style);
    append_duration(text, counters->uptime_seconds * 1000);
    append(text, " &middot; this page refreshes every 2 s</p>\n<ul class=\"counters\">");
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
        append(text, "<li id=\"counter-%s\"><b>%llu</b><span>%s</span></li>", shown[i].id,
               (unsigned long long)shown[i].value, shown[i].name);
    append(text, "</ul>\n");
    append_job_table(text, "Running", "running", jobs, count, JOB_RUNNING, now_ms);
    append_job_table(text, "Queued", "queued", jobs, count, JOB_QUEUED, now_ms);
    append_job_table(text, "Recent", "recent", jobs, count, JOB_ENDED, now_ms);
    append(text, "<footer>detach " DETACH_VERSION " &middot; connection status: 0 normal, "
                 "1 aborted, 2 timeout, 3 both &middot; the same data: "
                 "<a href=\"?format=json\">JSON</a>, "
                 "<a href=\"?format=prometheus\">Prometheus</a></footer>\n</body></html>\n");
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

int dt_status_page_render(struct registry *registry, const char *subpath, const char *query,
                       struct status_response *response)
{
    struct registry_counters counters;
    struct text body = { NULL, 0, 0, 0 };
    const char *format;
    int rc;

    if (strncmp(subpath, "/jobs/", 6) == 0)
        return render_job(registry, subpath + 6, response);
    format = query_format(query);
    if (strcmp(format, "prometheus") == 0) {
        dt_registry_copy(registry, &counters, NULL, 0);
        append_prometheus(&body, &counters);
        return finish(&body, "200 OK", "text/plain; version=0.0.4; charset=utf-8", response);
    }
    if (strcmp(format, "html") == 0) {
        /* Heap: a thousand snapshots are too big for a worker's stack. */
        struct dt_job_snapshot *jobs = malloc(MAX_JOBS_SHOWN * sizeof(*jobs));
        size_t count;

        if (!jobs)
            return -1;
        count = dt_registry_copy(registry, &counters, jobs, MAX_JOBS_SHOWN);
        append_html_page(&body, &counters, jobs, count);
        free(jobs);
        return finish(&body, "200 OK", "text/html; charset=utf-8", response);
    }
    if (strcmp(format, "json") != 0) {
        append(&body, "{\"error\":\"unknown format; try json, prometheus or html\"}\n");
        return finish(&body, "400 Bad Request", "application/json", response);
    }
    dt_registry_copy(registry, &counters, NULL, 0);
    append_counters_json(&body, &counters);
    rc = finish(&body, "200 OK", "application/json", response);
    return rc;
}
