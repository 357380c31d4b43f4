/*
 * test_shutdown.c - shutdown callbacks: order, late registration, once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/shutdown.h"

struct trace {
    struct shutdown_list *list;
    char order[16];
    int count;
};

static void record_a(detach_job *job, void *arg)
{
    struct trace *trace = arg;
    trace->order[trace->count++] = 'a';
}

static void record_b(detach_job *job, void *arg)
{
    struct trace *trace = arg;
    trace->order[trace->count++] = 'b';
}

static void record_c(detach_job *job, void *arg)
{
    struct trace *trace = arg;
    trace->order[trace->count++] = 'c';
}

static void record_and_register(detach_job *job, void *arg)
{
    struct trace *trace = arg;
    trace->order[trace->count++] = 'r';
    /* Enough registrations to force the array to grow (move) mid-run. */
    for (int i = 0; i < 5; i++)
        dt_shutdown_list_add(trace->list, record_c, trace);
}

static void runs_in_registration_order(void **state)
{
    struct shutdown_list list;
    struct trace trace = { &list, "", 0 };

    dt_shutdown_list_init(&list);
    dt_shutdown_list_add(&list, record_b, &trace);
    dt_shutdown_list_add(&list, record_a, &trace);
    dt_shutdown_list_add(&list, record_b, &trace);
    dt_shutdown_list_run(&list, NULL);
    assert_string_equal(trace.order, "bab");
    dt_shutdown_list_destroy(&list);
}

static void callback_registered_during_shutdown_runs(void **state)
{
    struct shutdown_list list;
    struct trace trace = { &list, "", 0 };

    dt_shutdown_list_init(&list);
    dt_shutdown_list_add(&list, record_a, &trace);
    dt_shutdown_list_add(&list, record_and_register, &trace);
    dt_shutdown_list_add(&list, record_b, &trace);
    dt_shutdown_list_run(&list, NULL);
    assert_string_equal(trace.order, "arbccccc");
    dt_shutdown_list_destroy(&list);
}

static void each_runs_exactly_once(void **state)
{
    struct shutdown_list list;
    struct trace trace = { &list, "", 0 };

    dt_shutdown_list_init(&list);
    dt_shutdown_list_add(&list, record_a, &trace);
    dt_shutdown_list_run(&list, NULL);
    dt_shutdown_list_run(&list, NULL);
    dt_shutdown_list_add(&list, record_b, &trace);
    dt_shutdown_list_run(&list, NULL);
    assert_string_equal(trace.order, "ab");
    dt_shutdown_list_destroy(&list);
}

static void rejects_null_function(void **state)
{
    struct shutdown_list list;

    dt_shutdown_list_init(&list);
    assert_int_equal(dt_shutdown_list_add(&list, NULL, NULL), -1);
    assert_int_equal(list.count, 0);
    dt_shutdown_list_destroy(&list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_in_registration_order),
        cmocka_unit_test(callback_registered_during_shutdown_runs),
        cmocka_unit_test(each_runs_exactly_once),
        cmocka_unit_test(rejects_null_function),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
