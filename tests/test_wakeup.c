/*
 * test_wakeup.c - the event count idle job threads and the spawner sleep
 * on: a waker wakes a sleeper, a bump between prepare and wait is never
 * slept through, a stale "wake-up on its way" left by a waiter that
 * never slept does not silence later wakers, and dt_wakeup_all reaches all.
 *
 * A waker must find its sleepers asleep in the futex, or a lost wake-up
 * goes unseen (the sleeper would find the bumped word before sleeping).
 * So the test waits, on a condition, until each sleeper thread is blocked
 * in futex() (/proc/self/task/TID/syscall), never on a pause; and a
 * sleeper woken late (it slept out its 4 s limit) fails.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/timer_heap.h"
#include "base/wakeup.h"

struct sleeper {
    struct wakeup *wakeup;
    pthread_t thread;
    _Atomic pid_t tid;
    int woken;
    uint64_t slept_ms;
};

/* Sleeps once, for at most 5 s. */
static void *sleep_once(void *arg)
{
    struct sleeper *sleeper = arg;
    const struct timespec limit = { 4, 0 };
    uint64_t start = dt_monotonic_ms();

    atomic_store(&sleeper->tid, (pid_t)syscall(SYS_gettid));
    uint32_t seen = dt_wakeup_prepare(sleeper->wakeup);

    sleeper->woken = dt_wakeup_wait(sleeper->wakeup, seen, &limit);
    dt_wakeup_done(sleeper->wakeup, sleeper->woken);
    sleeper->slept_ms = dt_monotonic_ms() - start;
    return NULL;
}

/* Is the thread blocked in futex()?  Its current syscall says. */
static int in_futex(pid_t tid)
{
    char path[64];
    long number = -1;
    FILE *file;

    if (!tid)
        return 0;
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    file = fopen(path, "r");
    if (!file)
        return 0;
    if (fscanf(file, "%ld", &number) != 1)
        number = -1;
    fclose(file);
    return number == SYS_futex;
}

/* Until each sleeper has announced itself and sleeps in the futex (5 s). */
static void wait_until_asleep(struct wakeup *wakeup, struct sleeper *sleepers, unsigned count)
{
    uint64_t deadline = dt_monotonic_ms() + 5000;
    unsigned asleep;

    for (;;) {
        asleep = 0;
        for (unsigned i = 0; i < count; i++)
            asleep += in_futex(atomic_load(&sleepers[i].tid));
        if (asleep == count && atomic_load(&wakeup->waiters) >= count)
            return;
        assert_true(dt_monotonic_ms() < deadline);
        sched_yield();
    }
}

static void one_waker_wakes_a_sleeper(void **state)
{
    struct wakeup wakeup;
    struct sleeper sleeper = { .wakeup = &wakeup };

    (void)state;
    dt_wakeup_init(&wakeup);
    assert_false(dt_wakeup_has_waiters(&wakeup));
    assert_int_equal(pthread_create(&sleeper.thread, NULL, sleep_once, &sleeper), 0);
    wait_until_asleep(&wakeup, &sleeper, 1);
    assert_true(dt_wakeup_has_waiters(&wakeup));
    dt_wakeup_one(&wakeup);
    pthread_join(sleeper.thread, NULL);
    assert_int_equal(sleeper.woken, 1);
    assert_true(sleeper.slept_ms < 3000);
    assert_false(dt_wakeup_has_waiters(&wakeup));
}

/* A bump after prepare: the wait returns at once, woken. */
static void a_bump_before_the_wait_is_not_slept_through(void **state)
{
    struct wakeup wakeup;
    const struct timespec limit = { 5, 0 };
    uint64_t start = dt_monotonic_ms();
    uint32_t seen;

    (void)state;
    dt_wakeup_init(&wakeup);
    seen = dt_wakeup_prepare(&wakeup);
    dt_wakeup_one(&wakeup);
    assert_int_equal(dt_wakeup_wait(&wakeup, seen, &limit), 1);
    dt_wakeup_done(&wakeup, 1);
    assert_true(dt_monotonic_ms() - start < 4000);
}

/* A waker counted a waiter that then found work and left without
 * sleeping, and marked a wake-up as on its way to it: the next sleeper
 * must still be woken by the next waker. */
static void a_stale_pending_does_not_silence_wakers(void **state)
{
    struct wakeup wakeup;
    struct sleeper sleeper = { .wakeup = &wakeup };
    uint32_t seen;

    (void)state;
    dt_wakeup_init(&wakeup);
    seen = dt_wakeup_prepare(&wakeup);        /* the waiter that will leave */
    (void)seen;
    atomic_store(&wakeup.pending, 1);      /* the waker's mark, for it */
    dt_wakeup_done(&wakeup, 0);               /* it found work: never slept */
    assert_int_equal(pthread_create(&sleeper.thread, NULL, sleep_once, &sleeper), 0);
    wait_until_asleep(&wakeup, &sleeper, 1);
    dt_wakeup_one(&wakeup);
    pthread_join(sleeper.thread, NULL);
    assert_int_equal(sleeper.woken, 1);
    assert_true(sleeper.slept_ms < 3000);
}

static void wakeup_all_wakes_every_sleeper(void **state)
{
    enum { N = 4 };
    struct wakeup wakeup;
    struct sleeper sleepers[N];

    (void)state;
    dt_wakeup_init(&wakeup);
    for (int i = 0; i < N; i++) {
        sleepers[i] = (struct sleeper){ .wakeup = &wakeup };
        assert_int_equal(pthread_create(&sleepers[i].thread, NULL, sleep_once, &sleepers[i]), 0);
    }
    wait_until_asleep(&wakeup, sleepers, N);
    dt_wakeup_all(&wakeup);
    for (int i = 0; i < N; i++) {
        pthread_join(sleepers[i].thread, NULL);
        assert_int_equal(sleepers[i].woken, 1);
        assert_true(sleepers[i].slept_ms < 3000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_waker_wakes_a_sleeper),
        cmocka_unit_test(a_bump_before_the_wait_is_not_slept_through),
        cmocka_unit_test(a_stale_pending_does_not_silence_wakers),
        cmocka_unit_test(wakeup_all_wakes_every_sleeper),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
