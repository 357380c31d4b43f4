/*
 * test_route.c - route matching: exact, prefix, longest prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "route.h"

static void handler(detach_job *job, void *arg)
{
    (void)job;
    (void)arg;
}

static void matches(void **state)
{
    struct route_table table;
    const struct route *route;

    route_table_init(&table);
    assert_int_equal(route_table_add(&table, "/jobs/*", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, handler, NULL), 0);
    assert_int_equal(route_table_add(&table, "/jobs/report", DETACH_ATTACHED, DETACH_ABORT_DEFAULT, handler, NULL), 0);
    assert_int_equal(route_table_add(&table, "/jobs/big/*", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, handler, NULL), 0);

    route = route_table_match(&table, "/jobs/report");
    assert_non_null(route);
    assert_string_equal(route->path, "/jobs/report");
    route = route_table_match(&table, "/jobs/other");
    assert_string_equal(route->path, "/jobs/*");
    route = route_table_match(&table, "/jobs/big/one");
    assert_string_equal(route->path, "/jobs/big/*");
    assert_null(route_table_match(&table, "/jobs"));
    assert_null(route_table_match(&table, "/job"));
    assert_null(route_table_match(&table, "/other"));
    assert_null(route_table_match(&table, NULL));
    route_table_destroy(&table);
}

static void rejects_bad_routes(void **state)
{
    struct route_table table;

    route_table_init(&table);
    assert_int_equal(route_table_add(&table, "jobs", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, handler, NULL), -1);
    assert_int_equal(route_table_add(&table, "/a", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, NULL, NULL), -1);
    assert_int_equal(route_table_add(&table, "/a", (detach_mode)7, DETACH_ABORT_DEFAULT, handler, NULL), -1);
    assert_int_equal(route_table_add(&table, "/a", DETACH_TRIGGER, DETACH_ABORT_DEFAULT, handler, NULL), 0);
    assert_int_equal(route_table_add(&table, "/a", DETACH_ATTACHED, DETACH_ABORT_DEFAULT, handler, NULL), -1);
    assert_int_equal(table.count, 1);
    route_table_destroy(&table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches),
        cmocka_unit_test(rejects_bad_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
