/*
 * test_job.c - a job's public API against a real watcher thread: time
 * limits (restarted, cancelled), shutdown callbacks with the final status,
 * exactly once when an abort and a timeout race, and the request accessors.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "base/timer_heap.h"
#include "io/watcher.h"
#include "sched/job.h"
#include "sched/registry.h"

/* What job.c needs of a server: a watcher, a registry, job memory. */
static struct job_env *new_core(void)
{
    struct job_env *core = calloc(1, sizeof(*core));

    assert_non_null(core);
    core->registry = calloc(1, sizeof(*core->registry));
    assert_non_null(core->registry);
    dt_registry_init(core->registry);
    core->watcher = dt_watcher_new();
    assert_non_null(core->watcher);
    assert_int_equal(dt_watcher_start(core->watcher), 0);
    return core;
}

static int setup(void **state)
{
    *state = new_core();
    return 0;
}

static int teardown(void **state)
{
    struct job_env *core = *state;

    dt_watcher_free(core->watcher);
    dt_registry_destroy(core->registry);
    free(core->registry);
    free(core);
    return 0;
}

/* Params as a request brings them: packed, one block, freed with one
 * free(). */
static char *make_params(const char *const *pairs, size_t count)
{
    size_t bytes = 1;
    char *params, *text;

    for (size_t i = 0; i < count; i++)
        bytes += strlen(pairs[i]) + 1;
    params = text = malloc(bytes);
    assert_non_null(params);
    for (size_t i = 0; i < count; i++) {
        strcpy(text, pairs[i]);
        text += strlen(pairs[i]) + 1;
    }
    *text = '\0';
    return params;
}

static detach_job *new_job(struct job_env *core, const struct job_kind *route)
{
    static const char *const pairs[] = { "REQUEST_METHOD=POST", "QUERY_STRING=a=1&b=2" };
    char *body = strdup("payload");
    char *params = make_params(pairs, 2);
    detach_job *job = dt_job_new(core, route, params, body, 7, NULL);

    free(params);
    free(body);
    assert_non_null(job);
    return job;
}

/* As dt_job_run() does before a job ends: the time limit disarmed, which is
 * final (watcher.h), so a limit that fired has finished waking the job on
 * the watcher before the job is freed.  Without it a test that waited for
 * the wake-up could free the job under the watcher's callback. */
static void free_job(detach_job *job)
{
    detach_set_time_limit(job, 0);
    dt_job_free(job);
}

static void no_op_handler(detach_job *job, void *arg)
{
    (void)job;
    (void)arg;
}

static void accessors(void **state)
{
    struct job_kind route = { .path = "/t", .mode = DETACH_TRIGGER, .ignore_user_abort = 1, .handler = no_op_handler };
    detach_job *job = new_job(*state, &route);
    size_t length = 0;

    assert_string_equal(detach_param(job, "REQUEST_METHOD"), "POST");
    assert_string_equal(detach_param(job, "QUERY_STRING"), "a=1&b=2");
    assert_null(detach_param(job, "REQUEST"));
    assert_memory_equal(detach_body(job, &length), "payload", 7);
    assert_int_equal(length, 7);
    assert_int_equal(strlen(detach_job_id(job)), 16);
    assert_string_equal(detach_job_route(job), "/t");
    assert_int_equal(detach_job_mode(job), DETACH_TRIGGER);
    /* Trigger jobs ignore aborts by default, attached ones don't. */
    assert_int_equal(detach_ignore_user_abort(job, -1), 1);
    free_job(job);

    route.mode = DETACH_ATTACHED;
    route.ignore_user_abort = 0;
    job = new_job(*state, &route);
    assert_int_equal(detach_ignore_user_abort(job, -1), 0);
    free_job(job);
}

/* No report: -1 and an empty message.  A report keeps at most 159 bytes of
 * its message; the next report replaces it, a NULL message empties it. */
static void progress_reports_replace_each_other(void **state)
{
    struct job_kind route = { .path = "/t", .mode = DETACH_TRIGGER, .handler = no_op_handler };
    detach_job *job = new_job(*state, &route);
    char message[200], long_message[300];

    strcpy(message, "stale");
    assert_int_equal(dt_job_progress(job, message, sizeof(message)), -1);
    assert_string_equal(message, "");

    detach_progress(job, 40, "copying");
    assert_int_equal(dt_job_progress(job, message, sizeof(message)), 40);
    assert_string_equal(message, "copying");

    memset(long_message, 'x', sizeof(long_message) - 1);
    long_message[sizeof(long_message) - 1] = '\0';
    detach_progress(job, 150, long_message);
    assert_int_equal(dt_job_progress(job, message, sizeof(message)), 100);
    assert_int_equal(strlen(message), 159);

    detach_progress(job, -3, NULL);
    assert_int_equal(dt_job_progress(job, message, sizeof(message)), 0);
    assert_string_equal(message, "");
    free_job(job);
}

static void count_call(detach_job *job, void *arg)
{
    (*(int *)arg)++;
}

/* detach_on_stop(): the hook runs once, at the first stop; one given after
 * the stop runs at once (1 returned), as a script spawned after a stop must
 * still be signalled; a removed hook never runs. */
static void stop_hook_runs_once_even_when_late(void **state)
{
    struct job_kind route = { .path = "/t", .mode = DETACH_TRIGGER, .handler = no_op_handler };
    detach_job *job = new_job(*state, &route);
    int calls = 0;

    assert_int_equal(detach_on_stop(job, count_call, &calls), 0);
    assert_int_equal(calls, 0);
    dt_job_request_stop(job);
    assert_int_equal(calls, 1);
    dt_job_request_stop(job);
    detach_set_time_limit(job, 0);
    assert_int_equal(calls, 1);
    assert_int_equal(detach_on_stop(job, NULL, NULL), 0);
    free_job(job);

    calls = 0;
    job = new_job(*state, &route);
    dt_job_request_stop(job);
    assert_int_equal(detach_on_stop(job, count_call, &calls), 1);
    assert_int_equal(calls, 1);
    assert_int_equal(detach_on_stop(job, count_call, &calls), 1);
    assert_int_equal(calls, 1);   /* once per job, however often it is set */
    free_job(job);

    calls = 0;
    job = new_job(*state, &route);
    assert_int_equal(detach_on_stop(job, count_call, &calls), 0);
    assert_int_equal(detach_on_stop(job, NULL, NULL), 0);
    dt_job_request_stop(job);
    assert_int_equal(calls, 0);
    free_job(job);
}

static void trigger_job_has_no_response(void **state)
{
    struct job_kind route = { .path = "/t", .mode = DETACH_TRIGGER, .ignore_user_abort = 1, .handler = no_op_handler };
    detach_job *job = new_job(*state, &route);

    assert_int_equal(detach_write(job, "x", 1), -1);
    assert_int_equal(errno, ENOTCONN);
    assert_int_equal(detach_header(job, "X-A: 1"), -1);
    assert_int_equal(detach_finish_request(job), 0);
    /* Writing nowhere is not the client leaving. */
    assert_int_equal(detach_connection_status(job), DETACH_NORMAL);
    free_job(job);
}

/*
 * A fake clock for the watcher: the time-limit tests move it by hand, and
 * dt_watcher_clock_moved() returns once the watcher fired what became due,
 * so "not yet timed out" is a plain assertion instead of a pause.
 */
static _Atomic uint64_t fake_now_ms;

static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return atomic_load(&fake_now_ms);
}

static void use_fake_clock(struct job_env *env)
{
    atomic_store(&fake_now_ms, 1000000);
    dt_watcher_set_clock(env->watcher, fake_clock, NULL);
}

static void advance_ms(struct job_env *env, uint64_t ms)
{
    atomic_fetch_add(&fake_now_ms, ms);
    dt_watcher_clock_moved(env->watcher);
}

static void time_limit_sets_timeout_and_stop(void **state)
{
    struct job_kind route = { .path = "/t", .mode = DETACH_TRIGGER, .ignore_user_abort = 1, .handler = no_op_handler };
    detach_job *job = new_job(*state, &route);

    use_fake_clock(*state);
    detach_set_time_limit(job, 1);
    advance_ms(*state, 999);
    assert_int_equal(detach_connection_status(job), DETACH_NORMAL);
    assert_false(detach_should_stop(job));
    advance_ms(*state, 1);
    assert_int_equal(detach_connection_status(job), DETACH_TIMEOUT);
    assert_true(detach_should_stop(job));
    free_job(job);
}

static void second_call_restarts_the_clock(void **state)
{
    struct job_kind route = { .path = "/t", .mode = DETACH_TRIGGER, .ignore_user_abort = 1, .handler = no_op_handler };
    detach_job *job = new_job(*state, &route);

    use_fake_clock(*state);
    detach_set_time_limit(job, 1);
    advance_ms(*state, 600);
    detach_set_time_limit(job, 1);      /* now due at 1600 ms, not 1000 */
    advance_ms(*state, 700);            /* 1300 ms: past the first deadline */
    assert_int_equal(detach_connection_status(job), DETACH_NORMAL);
    advance_ms(*state, 299);
    assert_int_equal(detach_connection_status(job), DETACH_NORMAL);
    advance_ms(*state, 1);              /* 1600 ms */
    assert_int_equal(detach_connection_status(job), DETACH_TIMEOUT);
    free_job(job);
}

static void zero_cancels_the_limit(void **state)
{
    struct job_kind route = { .path = "/t", .mode = DETACH_TRIGGER, .ignore_user_abort = 1, .handler = no_op_handler };
    detach_job *job = new_job(*state, &route);

    use_fake_clock(*state);
    detach_set_time_limit(job, 1);
    detach_set_time_limit(job, 0);
    advance_ms(*state, 60000);
    assert_int_equal(detach_connection_status(job), DETACH_NORMAL);
    assert_false(detach_should_stop(job));
    free_job(job);
}

static void sleep_sleeps_and_wakes_on_stop(void **state)
{
    struct job_kind route = { .path = "/t", .mode = DETACH_TRIGGER, .ignore_user_abort = 1, .handler = no_op_handler };
    detach_job *job = new_job(*state, &route);
    uint64_t start = dt_monotonic_ms();

    assert_int_equal(detach_sleep(job, 150), 0);
    assert_true(dt_monotonic_ms() - start >= 150);
    /* A time limit stops the job in the middle of a long sleep. */
    detach_set_time_limit(job, 1);
    start = dt_monotonic_ms();
    assert_int_equal(detach_sleep(job, 30000), -1);
    assert_int_equal(errno, ECANCELED);
    assert_true(dt_monotonic_ms() - start < 3000);
    assert_int_equal(detach_connection_status(job), DETACH_TIMEOUT);
    /* Once stopped, a sleep returns at once. */
    assert_int_equal(detach_sleep(job, 30000), -1);
    free_job(job);
}

/* A handler that times out; callbacks see the final status, in order. */
struct observed {
    int statuses[4];
    int count;
};

static void observe(detach_job *job, void *arg)
{
    struct observed *observed = arg;
    observed->statuses[observed->count++] = detach_connection_status(job);
}

static void observe_and_register(detach_job *job, void *arg)
{
    observe(job, arg);
    detach_register_shutdown(job, observe, arg);
}

/* The test's env, for handlers that move its fake clock. */
static struct job_env *handler_env;

static void handler_until_stopped(detach_job *job, void *arg)
{
    detach_register_shutdown(job, observe, arg);
    detach_register_shutdown(job, observe_and_register, arg);
    detach_set_time_limit(job, 1);
    assert_false(detach_should_stop(job));
    advance_ms(handler_env, 1000);      /* the limit runs out while it runs */
    assert_true(detach_should_stop(job));
}

static void callbacks_see_the_final_status(void **state)
{
    struct observed observed = { { 0 }, 0 };
    struct job_kind route = { .path = "/t", .mode = DETACH_TRIGGER, .ignore_user_abort = 1, .handler = handler_until_stopped,
                           .arg = &observed };
    detach_job *job = new_job(*state, &route);

    use_fake_clock(*state);
    handler_env = *state;
    dt_job_run(job);
    assert_int_equal(observed.count, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(observed.statuses[i], DETACH_TIMEOUT);
    free_job(job);
}

/* The peer leaving while the time limit runs out: 3, and one run each. */
struct racing_job {
    struct job_env *core;
    detach_job *job;
    struct observed observed;
};

static void *abort_job(void *arg)
{
    struct racing_job *racing = arg;

    /* What the watcher does when the connection reports EOF. */
    dt_watcher_lock(racing->core->watcher);
    dt_job_abort_locked(racing->job);
    dt_watcher_unlock(racing->core->watcher);
    return NULL;
}

static void handler_racing(detach_job *job, void *arg)
{
    struct racing_job *racing = arg;
    pthread_t thread;

    detach_ignore_user_abort(job, 1);
    detach_register_shutdown(job, observe, &racing->observed);
    detach_set_time_limit(job, 1);
    /* The abort and the deadline as close together as a test can make
     * them: the peer leaves on one thread while the clock reaches the
     * deadline on this one. */
    atomic_fetch_add(&fake_now_ms, 1000);
    pthread_create(&thread, NULL, abort_job, racing);
    dt_watcher_clock_moved(racing->core->watcher);
    pthread_join(thread, NULL);
    assert_true(detach_should_stop(job));
}

static void abort_and_timeout_race_run_callbacks_once(void **state)
{
    struct racing_job racing = { *state, NULL, { { 0 }, 0 } };
    struct job_kind route = { .path = "/t", .mode = DETACH_ATTACHED, .handler = handler_racing,
                           .arg = &racing };

    racing.job = new_job(*state, &route);
    use_fake_clock(*state);
    dt_job_run(racing.job);
    assert_int_equal(racing.observed.count, 1);
    assert_int_equal(racing.observed.statuses[0], DETACH_ABORTED | DETACH_TIMEOUT);
    free_job(racing.job);
}

static void fail_twice(detach_job *job, void *arg)
{
    (void)arg;
    assert_string_equal(detach_job_result(job), "ok");
    assert_int_equal(detach_job_will_retry(job), 0);
    detach_job_fail(job, "cannot start: spawn /x: Permission denied");
    detach_job_fail(job, "a second reason");
    assert_string_equal(detach_job_result(job), "failed");
}

static void result_in_callback(detach_job *job, void *arg)
{
    snprintf(arg, 16, "%s/%d", detach_job_result(job), detach_job_will_retry(job));
}

/* detach_job_fail(): the run ends failed, counted so, never completed;
 * the first reason is the one shown; shutdown callbacks see the result. */
static void a_failed_run_is_counted_failed_with_its_reason(void **state)
{
    struct job_env *core = *state;
    struct job_kind route = { .path = "/t", .mode = DETACH_TRIGGER, .ignore_user_abort = 1,
                           .handler = fail_twice };
    detach_job *job = new_job(core, &route);
    struct registry_counters counters;
    struct dt_job_snapshot ended;
    char seen[16] = "";
    char id[64];

    snprintf(id, sizeof(id), "%s", detach_job_id(job));
    assert_int_equal(detach_register_shutdown(job, result_in_callback, seen), 0);
    dt_job_list(job);
    dt_job_run(job);
    assert_string_equal(seen, "failed/0");
    dt_registry_copy(core->registry, &counters, NULL, 0);
    assert_int_equal(counters.failed, 1);
    assert_int_equal(counters.completed, 0);
    assert_int_equal(dt_registry_find(core->registry, id, &ended), 0);
    assert_string_equal(ended.error, "cannot start: spawn /x: Permission denied");
    free_job(job);

    /* A handler that returns without one is ok, and says so. */
    route.handler = no_op_handler;
    job = new_job(core, &route);
    assert_int_equal(detach_register_shutdown(job, result_in_callback, seen), 0);
    dt_job_list(job);
    dt_job_run(job);
    assert_string_equal(seen, "ok/0");
    dt_registry_copy(core->registry, &counters, NULL, 0);
    assert_int_equal(counters.completed, 1);
    free_job(job);
}

/* The first run is attempt 1; one recovered from the spool is a rerun. */
static void attempt_counts_reruns(void **state)
{
    struct job_kind route = { .path = "/t", .mode = DETACH_TRIGGER, .handler = no_op_handler };
    detach_job *job = new_job(*state, &route);

    assert_int_equal(detach_job_attempt(job), 1);
    assert_int_equal(detach_job_is_retry(job), 0);
    dt_job_restore(job, "0000000100000002", 0);
    assert_int_equal(detach_job_attempt(job), 2);
    assert_int_equal(detach_job_is_retry(job), 1);
    assert_string_equal(detach_job_id(job), "0000000100000002");
    free_job(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(accessors, setup, teardown),
        cmocka_unit_test_setup_teardown(progress_reports_replace_each_other, setup, teardown),
        cmocka_unit_test_setup_teardown(trigger_job_has_no_response, setup, teardown),
        cmocka_unit_test_setup_teardown(time_limit_sets_timeout_and_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(second_call_restarts_the_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_cancels_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(sleep_sleeps_and_wakes_on_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(callbacks_see_the_final_status, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_and_timeout_race_run_callbacks_once, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_run_is_counted_failed_with_its_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(attempt_counts_reruns, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_hook_runs_once_even_when_late, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
