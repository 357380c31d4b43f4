/*
 * test_status_page.c - the status endpoint's renderings (JSON, Prometheus,
 * HTML, one job) from a registry filled by hand, and the job JSON read
 * back as detach-trigger --wait-done reads it (job_status.c, json-c).
 *
 * Live registry entries point at real jobs, so the registry here holds
 * only snapshots: ended ones put in by dt_registry_ended(), as a job thread
 * does, and running or queued ones written into the ring by hand, which
 * dt_registry_copy() hands out the same way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "client/job_status.h"
#include "sched/registry.h"
#include "server/status_page.h"

static struct dt_job_snapshot snapshot(const char *id, const char *route, enum job_state state,
                                    int progress, const char *message)
{
    struct dt_job_snapshot job;

    memset(&job, 0, sizeof(job));
    snprintf(job.id, sizeof(job.id), "%s", id);
    snprintf(job.route, sizeof(job.route), "%s", route);
    job.mode = DETACH_TRIGGER;
    job.state = state;
    job.exit_code = job.exit_signal = -1;
    job.progress = progress;
    snprintf(job.message, sizeof(job.message), "%s", message);
    job.accepted_unix_ms = 1764000000000ULL;
    job.started_unix_ms = state == JOB_QUEUED ? 0 : 1764000000100ULL;
    return job;
}

/* Three ended jobs through dt_registry_ended(), then a running and a queued
 * one written straight into the ring. */
static void fill(struct registry *registry)
{
    struct registry_entry entry = { NULL, NULL, NULL, NULL };
    struct dt_job_snapshot ok = snapshot("a1", "/jobs/ok", JOB_ENDED, 100, "done");
    struct dt_job_snapshot bad = snapshot("b2", "/jobs/<bad>", JOB_ENDED, 40, "half \"way\" <b>&");
    struct dt_job_snapshot killed = snapshot("c3", "/jobs/slow", JOB_ENDED, -1, "");

    dt_registry_init(registry);
    ok.exit_code = 0;
    ok.ended_unix_ms = ok.started_unix_ms + 20;
    bad.exit_code = 3;
    bad.connection_status = DETACH_ABORTED;
    bad.ended_unix_ms = bad.started_unix_ms + 700;
    killed.exit_signal = 9;
    killed.connection_status = DETACH_ABORTED | DETACH_TIMEOUT;
    killed.ended_unix_ms = killed.started_unix_ms + 400000;

    registry->counters.accepted = 6;
    registry->counters.running = 3;   /* the three about to end */
    dt_registry_ended(registry, &entry, &ok, 0.02, 0);
    dt_registry_ended(registry, &entry, &bad, 0.7, 1);
    dt_registry_ended(registry, &entry, &killed, 400.0, 1);
    registry->counters.running = 1;
    registry->counters.queued = 1;
    registry->counters.rejected = 2;

    struct dt_job_snapshot running = snapshot("d4", "/jobs/report", JOB_RUNNING, 40, "halfway");
    struct dt_job_snapshot queued = snapshot("e5", "/jobs/report", JOB_QUEUED, -1, "");
    registry->recent[registry->recent_next++] = running;
    registry->recent[registry->recent_next++] = queued;
    registry->recent_count += 2;
}

static char *render(struct registry *registry, const char *subpath, const char *query,
                    const char *expected_status, const char *expected_type)
{
    struct status_response response = { NULL, 0 };
    char head[256];

    assert_int_equal(dt_status_page_render(registry, subpath, query, &response), 0);
    assert_non_null(response.text);
    assert_int_equal(strlen(response.text), response.length);
    snprintf(head, sizeof(head), "Status: %s\r\nContent-Type: %s\r\n", expected_status,
             expected_type);
    assert_memory_equal(response.text, head, strlen(head));
    char *body = strstr(response.text, "\r\n\r\n");
    assert_non_null(body);
    /* The declared length is the body's. */
    char *length = strstr(response.text, "Content-Length: ");
    assert_non_null(length);
    assert_int_equal(strtoul(length + 16, NULL, 10), strlen(body + 4));
    memmove(response.text, body + 4, strlen(body + 4) + 1);
    return response.text;
}

/* ---- JSON ---- */

static void test_json_counters_unchanged(void **state)
{
    struct registry registry;
    fill(&registry);
    char *body = render(&registry, "", "", "200 OK", "application/json");

    assert_non_null(strstr(body, "{\"accepted\":6,\"queued\":1,\"running\":1,\"completed\":1,"
                                 "\"failed\":2,\"aborted\":2,\"timed_out\":1,\"rejected\":2,"
                                 "\"uptime\":"));
    free(body);
    body = render(&registry, "", "format=json", "200 OK", "application/json");
    assert_non_null(strstr(body, "\"accepted\":6"));
    free(body);
    body = render(&registry, "", "format=xml", "400 Bad Request", "application/json");
    free(body);
    dt_registry_destroy(&registry);
}

/* ---- Prometheus ---- */

static int has_line(const char *text, const char *line)
{
    size_t length = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[length] == '\n')
            return 1;
    return 0;
}

static int has_prefix_line(const char *text, const char *prefix)
{
    for (const char *p = text; (p = strstr(p, prefix)) != NULL; p++)
        if (p == text || p[-1] == '\n')
            return 1;
    return 0;
}

static void test_prometheus(void **state)
{
    static const char *const counters[] = {
        "detach_jobs_accepted_total 6", "detach_jobs_completed_total 1",
        "detach_jobs_failed_total 2", "detach_jobs_aborted_total 2",
        "detach_jobs_timed_out_total 1", "detach_jobs_rejected_total 2",
    };
    struct registry registry;
    fill(&registry);
    char *body = render(&registry, "", "a=b&format=prometheus",
                        "200 OK", "text/plain; version=0.0.4; charset=utf-8");
    char name[128];

    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        assert_true(has_line(body, counters[i]));
        snprintf(name, sizeof(name), "# TYPE %.*s counter",
                 (int)strcspn(counters[i], " "), counters[i]);
        assert_true(has_line(body, name));
    }
    assert_true(has_line(body, "# TYPE detach_jobs_queued gauge"));
    assert_true(has_line(body, "detach_jobs_queued 1"));
    assert_true(has_line(body, "# TYPE detach_jobs_running gauge"));
    assert_true(has_line(body, "detach_jobs_running 1"));
    assert_true(has_line(body, "# TYPE detach_uptime_seconds gauge"));
    assert_true(has_line(body, "# TYPE detach_job_duration_seconds histogram"));
    /* 0.02 s, 0.7 s and 400 s, cumulative. */
    assert_true(has_line(body, "detach_job_duration_seconds_bucket{le=\"0.01\"} 0"));
    assert_true(has_line(body, "detach_job_duration_seconds_bucket{le=\"0.05\"} 1"));
    assert_true(has_line(body, "detach_job_duration_seconds_bucket{le=\"1\"} 2"));
    assert_true(has_line(body, "detach_job_duration_seconds_bucket{le=\"300\"} 2"));
    assert_true(has_line(body, "detach_job_duration_seconds_bucket{le=\"+Inf\"} 3"));
    assert_true(has_line(body, "detach_job_duration_seconds_count 3"));
    assert_true(has_line(body, "detach_job_duration_seconds_sum 400.720000"));

    /* The buckets only grow. */
    unsigned long long previous = 0;
    int buckets = 0;
    for (const char *line = body; *line; line += strcspn(line, "\n") + 1) {
        if (strncmp(line, "detach_job_duration_seconds_bucket{le=", 38) == 0) {
            unsigned long long value = strtoull(line + strcspn(line, " ") + 1, NULL, 10);
            assert_true(value >= previous);
            previous = value;
            buckets++;
        }
    }
    assert_int_equal(buckets, REGISTRY_BUCKETS);

    /* Every sample's family has its HELP and TYPE before it. */
    for (const char *line = body; *line; line += strcspn(line, "\n") + 1) {
        char family[128], help[160], type[160];
        size_t length = strcspn(line, " {\n");
        if (line[0] == '#')
            continue;
        snprintf(family, sizeof(family), "%.*s", (int)length, line);
        if (strncmp(family, "detach_job_duration_seconds", 27) == 0)
            family[27] = '\0';
        snprintf(help, sizeof(help), "# HELP %s ", family);
        snprintf(type, sizeof(type), "# TYPE %s ", family);
        assert_true(has_prefix_line(body, help) && has_prefix_line(body, type));
        assert_true(strstr(body, type) < line);
    }
    free(body);
    dt_registry_destroy(&registry);
}

/* ---- HTML ---- */

static void test_html(void **state)
{
    struct registry registry;
    fill(&registry);
    char *body = render(&registry, "", "format=html", "200 OK", "text/html; charset=utf-8");

    assert_non_null(strstr(body, "<!DOCTYPE html>"));
    assert_non_null(strstr(body, "<meta http-equiv=\"refresh\" content=\"2\">"));
    /* Self-contained: inline style, nothing fetched, no script needed. */
    assert_non_null(strstr(body, "<style>"));
    assert_null(strstr(body, "<script"));
    assert_null(strstr(body, "src="));
    assert_null(strstr(body, "http://"));
    assert_null(strstr(body, "https://"));
    assert_null(strstr(body, "<link"));
    /* Each job: a row and a progress element found by its id. */
    assert_non_null(strstr(body, "<tr id=\"job-d4\" class=\"running\" data-job=\"d4\" "
                                 "data-state=\"running\""));
    assert_non_null(strstr(body, "<progress id=\"progress-d4\" data-job=\"d4\" value=\"40\" "
                                 "max=\"100\">"));
    assert_non_null(strstr(body, "<tr id=\"job-e5\" class=\"queued\" data-job=\"e5\""));
    /* e5 reported no progress: no bar at all (an empty <progress> is an
     * animated "busy" bar), a dash instead. */
    assert_null(strstr(body, "progress-e5"));
    assert_non_null(strstr(body, "<td class=\"progress\"><span class=\"none\">&mdash;</span>"));
    assert_non_null(strstr(body, "<progress id=\"progress-a1\" data-job=\"a1\" value=\"100\""));
    /* Sections in order: running, queued, recent. */
    char *running = strstr(body, "id=\"running\""), *queued = strstr(body, "id=\"queued\"");
    char *recent = strstr(body, "id=\"recent\"");
    assert_true(running && queued && recent && running < queued && queued < recent);
    assert_true(strstr(body, "job-d4") < queued && strstr(body, "job-e5") > queued);
    assert_true(strstr(body, "job-a1") > recent);
    /* Escaped: the route and the message are text, never markup. */
    assert_null(strstr(body, "<bad>"));
    assert_null(strstr(body, "<b>&"));
    assert_non_null(strstr(body, "/jobs/&lt;bad&gt;"));
    assert_non_null(strstr(body, "half &quot;way&quot; &lt;b&gt;&amp;"));
    /* Connection status as a number and in words; exits; elapsed. */
    assert_non_null(strstr(body, "data-connection-status=\"3\""));
    assert_non_null(strstr(body, "3 <span class=\"words\">aborted + timeout</span>"));
    assert_non_null(strstr(body, "1 <span class=\"words\">aborted</span>"));
    assert_non_null(strstr(body, "0 <span class=\"words\">normal</span>"));
    assert_non_null(strstr(body, "signal 9"));
    assert_non_null(strstr(body, "6 min 40 s"));
    assert_non_null(strstr(body, "700 ms"));
    assert_non_null(strstr(body, "<li id=\"counter-accepted\"><b>6</b>"));
    free(body);
    dt_registry_destroy(&registry);
}

static void test_html_escapes_ids(void **state)
{
    struct registry registry;
    struct registry_entry entry = { NULL, NULL, NULL, NULL };
    struct dt_job_snapshot odd = snapshot("x\"><script>alert(1)</script>", "/r'&", JOB_ENDED, 5,
                                       "line\nbreak\x01");

    dt_registry_init(&registry);
    registry.counters.running = 1;
    dt_registry_ended(&registry, &entry, &odd, 1.0, 0);
    char *body = render(&registry, "", "format=html", "200 OK", "text/html; charset=utf-8");
    assert_null(strstr(body, "<script>"));
    assert_null(strstr(body, "alert(1)</script>"));
    assert_non_null(strstr(body, "data-job=\"x&quot;&gt;&lt;script&gt;"));
    assert_non_null(strstr(body, "/r&#39;&amp;"));
    assert_non_null(strstr(body, "line break "));
    free(body);
    dt_registry_destroy(&registry);
}

/* A job that could not start: counted failed, its reason in the JSON (as
 * a string, escaped) and on the page (as text); others say "error":null. */
static void test_failed_start_shows_its_reason(void **state)
{
    struct registry registry;
    struct registry_entry entry = { NULL, NULL, NULL, NULL };
    struct dt_job_snapshot job = snapshot("f6", "/jobs/report", JOB_ENDED, -1, "");
    struct dt_job_snapshot fine = snapshot("g7", "/jobs/report", JOB_ENDED, -1, "");
    struct registry_counters counters;

    snprintf(job.error, sizeof(job.error), "cannot start: job log \"/x\": <No such file>");
    fine.exit_code = 0;
    dt_registry_init(&registry);
    registry.counters.running = 2;
    dt_registry_ended(&registry, &entry, &job, 0.001, 1);
    dt_registry_ended(&registry, &entry, &fine, 0.001, 0);
    dt_registry_copy(&registry, &counters, NULL, 0);
    assert_int_equal(counters.failed, 1);
    assert_int_equal(counters.completed, 1);

    char *body = render(&registry, "/jobs/f6", "", "200 OK", "application/json");
    assert_non_null(strstr(body, "\"exit\":null"));
    assert_non_null(strstr(body, "\"error\":\"cannot start: job log \\\"/x\\\": <No such file>\""));
    free(body);
    body = render(&registry, "/jobs/g7", "", "200 OK", "application/json");
    assert_non_null(strstr(body, "\"error\":null"));
    free(body);
    body = render(&registry, "", "format=html", "200 OK", "text/html; charset=utf-8");
    assert_non_null(strstr(body, "cannot start: job log &quot;/x&quot;: &lt;No such file&gt;"));
    assert_null(strstr(body, "<No such file>"));
    free(body);
    dt_registry_destroy(&registry);
}

/* A run the drain cut short and the spool keeps: it leaves the live list,
 * neither completed nor failed, and is not listed as ended. */
static void test_interrupted_job_is_not_counted(void **state)
{
    struct registry registry;
    struct registry_entry entry;
    struct registry_counters counters;
    struct dt_job_snapshot copy;

    dt_registry_init(&registry);
    /* No snapshot callback: dt_registry_interrupted() never reads the job. */
    dt_registry_add(&registry, &entry, "i1", NULL);
    dt_registry_started(&registry);
    dt_registry_interrupted(&registry, &entry);
    assert_int_equal(dt_registry_copy(&registry, &counters, &copy, 1), 0);
    assert_int_equal(counters.accepted, 1);
    assert_int_equal(counters.running, 0);
    assert_int_equal(counters.queued, 0);
    assert_int_equal(counters.completed, 0);
    assert_int_equal(counters.failed, 0);
    dt_registry_destroy(&registry);
}

static void test_html_empty(void **state)
{
    struct registry registry;

    dt_registry_init(&registry);
    char *body = render(&registry, "", "format=html", "200 OK", "text/html; charset=utf-8");
    assert_null(strstr(body, "<progress"));
    assert_non_null(strstr(body, "<p class=\"none\">none</p>"));
    free(body);
    dt_registry_destroy(&registry);
}

/* ---- one job, and reading it back as detach-trigger does ---- */

static void parse_rendered(struct registry *registry, const char *id, detach_job_status *job)
{
    char subpath[96];

    snprintf(subpath, sizeof(subpath), "/jobs/%s", id);
    char *body = render(registry, subpath, "format=html", "200 OK", "application/json");
    assert_int_equal(dt_job_status_parse(body, strlen(body), job), 0);
    free(body);
}

static void test_job_json_round_trip(void **state)
{
    struct registry registry;
    detach_job_status job;
    fill(&registry);

    parse_rendered(&registry, "d4", &job);
    assert_string_equal(job.state, "running");
    assert_int_equal(job.progress, 40);
    assert_string_equal(job.message, "halfway");
    assert_int_equal(job.connection_status, 0);
    assert_int_equal(job.exit_code, -1);
    assert_int_equal(job.exit_signal, -1);

    parse_rendered(&registry, "e5", &job);
    assert_string_equal(job.state, "queued");
    assert_int_equal(job.progress, -1);
    assert_string_equal(job.message, "");

    parse_rendered(&registry, "b2", &job);
    assert_string_equal(job.state, "ended");
    assert_int_equal(job.exit_code, 3);
    assert_int_equal(job.connection_status, 1);
    assert_string_equal(job.message, "half \"way\" <b>&");

    parse_rendered(&registry, "c3", &job);
    assert_int_equal(job.exit_signal, 9);
    assert_int_equal(job.exit_code, -1);
    assert_int_equal(job.connection_status, 3);

    parse_rendered(&registry, "a1", &job);
    assert_int_equal(job.exit_code, 0);
    assert_int_equal(job.progress, 100);

    char *body = render(&registry, "/jobs/nope", "", "404 Not Found", "application/json");
    assert_int_not_equal(dt_job_status_parse(body, strlen(body), &job), 0);
    free(body);
    dt_registry_destroy(&registry);
}

static void test_job_status_parse(void **state)
{
    detach_job_status job;
    static const char *const bad[] = {
        "", "[]", "null", "{", "{\"state\":\"ended\"", "{\"state\":\"ended\"}x",
        "{\"state\":ended}", "{\"state\":\"ended\",}", "{\"progress\":{\"percent\":1}}",
        "{\"state\":\"a\\q\"}", "{\"state\":\"a\\u12\"}",
        "{\"state\":\"x\",\"n\":01}", "{\"state\":\"x\",\"n\":-}",
        "{\"state\":\"x\",\"n\":[1,]}", "{\"state\":\"x\",\"n\":tru}",
        "{\"state\":\"x\" \"y\":1}", "{\"state\":1}", "{\"state\":\"x\"}{}",
        /* json-c, even strict, takes lone surrogates, "1." and a raw
         * newline in a string; the status page writes none of them, and
         * a message is made printable before it is shown. */
    };
    char deep[200];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(dt_job_status_parse(bad[i], strlen(bad[i]), &job), -1);
    assert_int_equal(dt_job_status_parse(NULL, 0, &job), -1);

    /* Nesting is bounded: 17 levels of arrays are refused, not recursed. */
    snprintf(deep, sizeof(deep), "{\"state\":\"x\",\"a\":%s1%s}",
             "[[[[[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]]]]]");
    assert_int_equal(dt_job_status_parse(deep, strlen(deep), &job), -1);
    snprintf(deep, sizeof(deep), "{\"state\":\"x\",\"a\":%s1%s}", "[[[[", "]]]]");
    assert_int_equal(dt_job_status_parse(deep, strlen(deep), &job), 0);

    /* Unknown keys of every kind are skipped; known ones picked out. */
    const char *full =
        " {\"id\":\"j\",\"extra\":{\"a\":[1,2.5e3,true,false,null,\"s\"]},"
        "\"state\" : \"ended\", \"connection_status\":2,"
        "\"exit\":{\"signal\":15,\"core\":false},"
        "\"progress\":{\"message\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\/ \\n\",\"percent\":250}} ";
    assert_int_equal(dt_job_status_parse(full, strlen(full), &job), 0);
    assert_string_equal(job.state, "ended");
    assert_int_equal(job.connection_status, 2);
    assert_int_equal(job.exit_signal, 15);
    assert_int_equal(job.exit_code, -1);
    assert_int_equal(job.progress, 100);   /* clamped */
    assert_string_equal(job.message, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" / \n");

    /* Only the given length is read, and long strings are cut to fit. */
    char long_message[600];
    memset(long_message, 0, sizeof(long_message));
    strcpy(long_message, "{\"state\":\"running\",\"progress\":{\"percent\":7,\"message\":\"");
    memset(long_message + strlen(long_message), 'm', 400);
    strcat(long_message, "\"}}garbage");
    assert_int_equal(dt_job_status_parse(long_message, strlen(long_message) - 7, &job), 0);
    assert_int_equal(strlen(job.message), JOB_STATUS_MESSAGE_SIZE - 1);
    assert_int_equal(job.progress, 7);
    assert_int_equal(dt_job_status_parse(long_message, strlen(long_message) - 9, &job), -1);

    const char *nulls = "{\"state\":\"ended\",\"exit\":null,\"progress\":null}";
    assert_int_equal(dt_job_status_parse(nulls, strlen(nulls), &job), 0);
    assert_int_equal(job.exit_code, -1);
    assert_int_equal(job.progress, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_counters_unchanged),
        cmocka_unit_test(test_prometheus),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_html_escapes_ids),
        cmocka_unit_test(test_html_empty),
        cmocka_unit_test(test_failed_start_shows_its_reason),
        cmocka_unit_test(test_interrupted_job_is_not_counted),
        cmocka_unit_test(test_job_json_round_trip),
        cmocka_unit_test(test_job_status_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
