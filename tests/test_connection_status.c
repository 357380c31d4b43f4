/*
 * test_connection_status.c - the status bits and the stop decision.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "detach.h"
#include "sched/connection_status.h"

static void starts_normal(void **state)
{
    struct connection_status status;

    dt_connection_status_init(&status, 0);
    assert_int_equal(dt_connection_status_bits(&status), DETACH_NORMAL);
    assert_false(dt_connection_status_should_stop(&status));
}

static void abort_not_ignored_stops_once(void **state)
{
    struct connection_status status;

    dt_connection_status_init(&status, 0);
    assert_int_equal(dt_connection_status_abort(&status), 1);
    assert_int_equal(dt_connection_status_bits(&status), DETACH_ABORTED);
    assert_true(dt_connection_status_should_stop(&status));
    /* A second abort (a failed write after EOF) asks for nothing more. */
    assert_int_equal(dt_connection_status_abort(&status), 0);
    assert_int_equal(dt_connection_status_bits(&status), DETACH_ABORTED);
}

static void abort_ignored_is_recorded_without_stop(void **state)
{
    struct connection_status status;

    dt_connection_status_init(&status, 1);
    assert_int_equal(dt_connection_status_abort(&status), 0);
    assert_int_equal(dt_connection_status_bits(&status), DETACH_ABORTED);
    assert_false(dt_connection_status_should_stop(&status));
}

static void timeout_always_stops(void **state)
{
    struct connection_status status;

    dt_connection_status_init(&status, 1);
    assert_int_equal(dt_connection_status_timeout(&status), 1);
    assert_int_equal(dt_connection_status_bits(&status), DETACH_TIMEOUT);
    assert_true(dt_connection_status_should_stop(&status));
}

static void abort_and_timeout_are_three(void **state)
{
    struct connection_status status;

    dt_connection_status_init(&status, 1);
    assert_int_equal(dt_connection_status_abort(&status), 0);
    assert_int_equal(dt_connection_status_timeout(&status), 1);
    assert_int_equal(dt_connection_status_bits(&status), DETACH_ABORTED | DETACH_TIMEOUT);
    assert_int_equal(dt_connection_status_bits(&status), 3);

    dt_connection_status_init(&status, 0);
    assert_int_equal(dt_connection_status_timeout(&status), 1);
    /* Already stopping: the abort is recorded but asks for no second stop. */
    assert_int_equal(dt_connection_status_abort(&status), 0);
    assert_int_equal(dt_connection_status_bits(&status), 3);
}

static void ignore_user_abort_returns_previous(void **state)
{
    struct connection_status status;
    int stop_now;

    dt_connection_status_init(&status, 0);
    assert_int_equal(dt_connection_status_ignore_user_abort(&status, -1, &stop_now), 0);
    assert_int_equal(dt_connection_status_ignore_user_abort(&status, 1, &stop_now), 0);
    assert_false(stop_now);
    assert_int_equal(dt_connection_status_ignore_user_abort(&status, 1, &stop_now), 1);
    assert_int_equal(dt_connection_status_ignore_user_abort(&status, -1, &stop_now), 1);
    assert_int_equal(dt_connection_status_ignore_user_abort(&status, 0, &stop_now), 1);
    assert_int_equal(dt_connection_status_ignore_user_abort(&status, -1, &stop_now), 0);
    assert_false(stop_now);
}

static void ignored_abort_stops_when_no_longer_ignored(void **state)
{
    struct connection_status status;
    int stop_now;

    dt_connection_status_init(&status, 1);
    dt_connection_status_abort(&status);
    assert_false(dt_connection_status_should_stop(&status));
    dt_connection_status_ignore_user_abort(&status, 0, &stop_now);
    assert_true(stop_now);
    assert_true(dt_connection_status_should_stop(&status));
}

/* Abort and timeout racing from two threads: both bits, exactly one stop. */
struct race {
    struct connection_status *status;
    pthread_barrier_t *barrier;
    int which;
    int stops;
};

static void *racer(void *arg)
{
    struct race *race = arg;

    pthread_barrier_wait(race->barrier);
    race->stops = race->which ? dt_connection_status_timeout(race->status)
                              : dt_connection_status_abort(race->status);
    return NULL;
}

static void abort_and_timeout_race_stop_exactly_once(void **state)
{
    for (int round = 0; round < 2000; round++) {
        struct connection_status status;
        pthread_barrier_t barrier;
        pthread_t threads[2];
        struct race races[2];

        dt_connection_status_init(&status, 0);
        pthread_barrier_init(&barrier, NULL, 2);
        for (int i = 0; i < 2; i++) {
            races[i] = (struct race){ &status, &barrier, i, 0 };
            pthread_create(&threads[i], NULL, racer, &races[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(threads[i], NULL);
        pthread_barrier_destroy(&barrier);
        assert_int_equal(races[0].stops + races[1].stops, 1);
        assert_int_equal(dt_connection_status_bits(&status), 3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(starts_normal),
        cmocka_unit_test(abort_not_ignored_stops_once),
        cmocka_unit_test(abort_ignored_is_recorded_without_stop),
        cmocka_unit_test(timeout_always_stops),
        cmocka_unit_test(abort_and_timeout_are_three),
        cmocka_unit_test(ignore_user_abort_returns_previous),
        cmocka_unit_test(ignored_abort_stops_when_no_longer_ignored),
        cmocka_unit_test(abort_and_timeout_race_stop_exactly_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
