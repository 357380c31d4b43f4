/*
 * test_route.c - route matching: exact, prefix, longest prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "server/route.h"

static void handler(detach_job *job, void *arg)
{
    (void)job;
    (void)arg;
}

static void matches(void **state)
{
    struct route_table table;
    const struct route *route;

    dt_route_table_init(&table);
    assert_int_equal(dt_route_table_add(&table, "/jobs/*", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, handler, NULL), 0);
    assert_int_equal(dt_route_table_add(&table, "/jobs/report", DETACH_ATTACHED, DETACH_ABORT_DEFAULT, handler, NULL), 0);
    assert_int_equal(dt_route_table_add(&table, "/jobs/big/*", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, handler, NULL), 0);

    route = dt_route_table_match(&table, "/jobs/report");
    assert_non_null(route);
    assert_string_equal(route->kind.path, "/jobs/report");
    route = dt_route_table_match(&table, "/jobs/other");
    assert_string_equal(route->kind.path, "/jobs/*");
    route = dt_route_table_match(&table, "/jobs/big/one");
    assert_string_equal(route->kind.path, "/jobs/big/*");
    assert_null(dt_route_table_match(&table, "/jobs"));
    assert_null(dt_route_table_match(&table, "/job"));
    assert_null(dt_route_table_match(&table, "/other"));
    assert_null(dt_route_table_match(&table, NULL));
    dt_route_table_destroy(&table);
}

static void rejects_bad_routes(void **state)
{
    struct route_table table;

    dt_route_table_init(&table);
    assert_int_equal(dt_route_table_add(&table, "jobs", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, handler, NULL), -1);
    assert_int_equal(dt_route_table_add(&table, "/a", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, NULL, NULL), -1);
    assert_int_equal(dt_route_table_add(&table, "/a", (detach_mode)7, DETACH_ABORT_DEFAULT, handler, NULL), -1);
    assert_int_equal(dt_route_table_add(&table, "/a", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, handler, NULL), 0);
    assert_int_equal(dt_route_table_add(&table, "/a", DETACH_ATTACHED, DETACH_ABORT_DEFAULT, handler, NULL), -1);
    assert_int_equal(table.count, 1);
    dt_route_table_destroy(&table);
}

/* What may be matched, and why not: dot segments plain or encoded, and
 * separators a later decoding would make. */
static void refuses_paths_that_would_need_normalizing(void **state)
{
    static const struct {
        const char *path;
        const char *refusal;   /* NULL: matched as it is */
    } cases[] = {
        { "/jobs/pre/x", NULL },
        { "/jobs/pre/", NULL },
        { "/", NULL },
        { "/jobs/pre/...", NULL },           /* three dots: a name like any */
        { "/jobs/pre/..x", NULL },
        { "/jobs/pre/x..", NULL },
        { "/jobs/pre/.hidden", NULL },
        { "/jobs/pre/a.b/c", NULL },
        { "/jobs/pre/%2e%2e%2e", NULL },
        { "/jobs/pre/%41%42", NULL },        /* other escapes are not ours to judge */
        { "/jobs/pre/%2", NULL },
        { "/jobs/pre/%", NULL },
        { "/jobs//pre", NULL },
        { "/jobs/pre/../../etc", "dot_segment" },
        { "/jobs/pre/..", "dot_segment" },
        { "/jobs/pre/.", "dot_segment" },
        { "/jobs/./pre/x", "dot_segment" },
        { "/..", "dot_segment" },
        { "..", "dot_segment" },
        { "./jobs", "dot_segment" },
        { "/jobs/pre/%2e%2e/etc", "dot_segment" },
        { "/jobs/pre/%2E%2E/etc", "dot_segment" },
        { "/jobs/pre/.%2e/etc", "dot_segment" },
        { "/jobs/pre/%2E./etc", "dot_segment" },
        { "/jobs/pre/%2e", "dot_segment" },
        { "/jobs/pre/%2e/", "dot_segment" },
        { "/jobs/pre/..\\..\\etc", "backslash" },
        { "/jobs/pre/x\\y", "backslash" },
        { "/jobs/pre/..%2f..%2fetc", "encoded_separator" },
        { "/jobs/pre/..%2F..%2Fetc", "encoded_separator" },
        { "/jobs/pre/..%5c..%5cetc", "encoded_separator" },
        { "/jobs/pre/a%5Cb", "encoded_separator" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *refusal = dt_route_path_refusal(cases[i].path);
        if (cases[i].refusal == NULL) {
            if (refusal)
                fail_msg("%s refused (%s)", cases[i].path, refusal);
        } else {
            if (!refusal || strcmp(refusal, cases[i].refusal) != 0)
                fail_msg("%s: %s, not %s", cases[i].path, refusal ? refusal : "allowed",
                         cases[i].refusal);
        }
    }
}

/* Matching itself never lets a refused path through, prefix or exact. */
static void match_refuses_dot_segments(void **state)
{
    struct route_table table;

    (void)state;
    dt_route_table_init(&table);
    assert_int_equal(dt_route_table_add(&table, "/jobs/pre/*", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, handler, NULL), 0);
    /* Such a route could never match: refused when configured. */
    assert_int_equal(dt_route_table_add(&table, "/jobs/pre/..", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, handler, NULL), -1);
    assert_int_equal(dt_route_table_add(&table, "/jobs/%2e/*", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, handler, NULL), -1);
    assert_non_null(dt_route_table_match(&table, "/jobs/pre/ok"));
    assert_null(dt_route_table_match(&table, "/jobs/pre/../../etc"));
    assert_null(dt_route_table_match(&table, "/jobs/pre/%2e%2e/etc"));
    assert_null(dt_route_table_match(&table, "/jobs/pre/.."));
    assert_null(dt_route_table_match(&table, "/jobs/pre/a%2fb"));
    dt_route_table_destroy(&table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches),
        cmocka_unit_test(rejects_bad_routes),
        cmocka_unit_test(refuses_paths_that_would_need_normalizing),
        cmocka_unit_test(match_refuses_dot_segments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
