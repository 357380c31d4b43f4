/*
 * test_watcher.c - the watcher thread through its header: timers fire in
 * deadline order, re-arming moves one and disarming cancels it, a
 * one-shot watch fires once until re-armed, a deadline armed from another
 * thread wakes a watcher asleep on a later one, and the round-end hook
 * runs after a round's events; on an injected clock, timers fire exactly
 * when the clock is moved past them, started or not.
 *
 * Every wait is on a condition (a counter under a mutex, bounded at 5 s);
 * "did not fire" is judged against a later event the watcher dispatches
 * in the same order, never against a pause.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/timer_heap.h"
#include "io/watcher.h"

#define container_of(pointer, type, member) \
    ((type *)(void *)((char *)(pointer) - offsetof(type, member)))

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t seen_changed = PTHREAD_COND_INITIALIZER;
static char order[32];          /* tags of what fired, in order */
static size_t fired;
static int watch_fired[2], round_ends;
static int round_end_saw_watch;   /* watch_fired[0] when a round ended */

struct tagged_timer {
    struct timer timer;
    char tag;
};

struct tagged_watch {
    struct watch watch;
    int index;
};

static void reset(void)
{
    pthread_mutex_lock(&seen_lock);
    memset(order, 0, sizeof order);
    fired = 0;
    watch_fired[0] = watch_fired[1] = 0;
    round_ends = 0;
    round_end_saw_watch = 0;
    pthread_mutex_unlock(&seen_lock);
}

/* Watcher thread, its lock held. */
static void timer_fired(struct timer *timer)
{
    struct tagged_timer *tagged = container_of(timer, struct tagged_timer, timer);

    pthread_mutex_lock(&seen_lock);
    if (fired < sizeof order - 1)
        order[fired] = tagged->tag;
    fired++;
    pthread_cond_broadcast(&seen_changed);
    pthread_mutex_unlock(&seen_lock);
}

static void watch_ready(struct watch *watch, uint32_t events)
{
    struct tagged_watch *tagged = container_of(watch, struct tagged_watch, watch);
    (void)events;

    pthread_mutex_lock(&seen_lock);
    watch_fired[tagged->index]++;
    pthread_cond_broadcast(&seen_changed);
    pthread_mutex_unlock(&seen_lock);
}

static void round_end(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&seen_lock);
    round_ends++;
    round_end_saw_watch = watch_fired[0];
    pthread_cond_broadcast(&seen_changed);
    pthread_mutex_unlock(&seen_lock);
}

/* Waits (up to 5 s) until *counter reaches target; the count reached. */
static int wait_count(const void *counter, int is_size, long target)
{
    struct timespec deadline;
    long now;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&seen_lock);
    for (;;) {
        now = is_size ? (long)*(const size_t *)counter : (long)*(const int *)counter;
        if (now >= target || pthread_cond_timedwait(&seen_changed, &seen_lock, &deadline) != 0)
            break;
    }
    now = is_size ? (long)*(const size_t *)counter : (long)*(const int *)counter;
    pthread_mutex_unlock(&seen_lock);
    return (int)now;
}

static struct watcher *started(void)
{
    struct watcher *watcher = dt_watcher_new();

    assert_non_null(watcher);
    assert_int_equal(dt_watcher_start(watcher), 0);
    reset();
    return watcher;
}

static void timers_fire_in_deadline_order(void **state)
{
    (void)state;
    struct watcher *watcher = started();
    struct tagged_timer timers[3] = { { .tag = 'c' }, { .tag = 'a' }, { .tag = 'b' } };
    const uint64_t after[3] = { 60, 20, 40 };

    /* Armed under the lock all at once, so the deadlines' order is
     * the only thing that orders them. */
    dt_watcher_lock(watcher);
    for (int i = 0; i < 3; i++) {
        dt_timer_init(&timers[i].timer, timer_fired);
        dt_watcher_arm_locked(watcher, &timers[i].timer, after[i]);
    }
    dt_watcher_unlock(watcher);
    assert_int_equal(wait_count(&fired, 1, 3), 3);
    assert_string_equal(order, "abc");
    for (int i = 0; i < 3; i++)
        assert_false(dt_timer_armed(&timers[i].timer));
    dt_watcher_free(watcher);
}

static void rearming_moves_and_disarming_cancels(void **state)
{
    (void)state;
    struct watcher *watcher = started();
    struct tagged_timer moved = { .tag = 'm' }, early = { .tag = 'e' }, cancelled = { .tag = 'x' },
                        last = { .tag = 'l' };

    dt_timer_init(&moved.timer, timer_fired);
    dt_timer_init(&early.timer, timer_fired);
    dt_timer_init(&cancelled.timer, timer_fired);
    dt_timer_init(&last.timer, timer_fired);
    dt_watcher_lock(watcher);
    dt_watcher_arm_locked(watcher, &moved.timer, 20);        /* moved later, below */
    dt_watcher_arm_locked(watcher, &early.timer, 100);
    dt_watcher_arm_locked(watcher, &cancelled.timer, 30);    /* never fires */
    dt_watcher_arm_locked(watcher, &last.timer, 400);
    /* Re-arming replaces the deadline: "m" now comes after "e". */
    dt_watcher_arm_locked(watcher, &moved.timer, 200);
    dt_watcher_unlock(watcher);
    dt_watcher_disarm(watcher, &cancelled.timer);
    assert_false(dt_timer_armed(&cancelled.timer));

    /* "l" is the latest deadline: once it fired, a stale "x" or a second
     * "m" would have fired before it. */
    assert_int_equal(wait_count(&fired, 1, 3), 3);
    assert_string_equal(order, "eml");
    dt_watcher_free(watcher);
}

static void a_one_shot_watch_fires_once_until_rearmed(void **state)
{
    (void)state;
    struct watcher *watcher = started();
    int one_shot[2], level[2];
    struct tagged_watch a = { .index = 0 }, b = { .index = 1 };

    assert_int_equal(pipe(one_shot), 0);
    assert_int_equal(pipe(level), 0);
    dt_watch_init(&a.watch, one_shot[0], watch_ready);
    dt_watch_init(&b.watch, level[0], watch_ready);
    assert_int_equal(dt_watcher_watch(watcher, &a.watch, EPOLLIN | EPOLLONESHOT), 0);
    assert_int_equal(write(one_shot[1], "1", 1), 1);
    assert_int_equal(wait_count(&watch_fired[0], 0, 1), 1);

    /* Still readable (nothing read it), but one-shot: it stays quiet.
     * A level-triggered watch made ready afterwards fires; epoll reports
     * every ready descriptor of a round, so "a" had its chance. */
    assert_int_equal(dt_watcher_watch(watcher, &b.watch, EPOLLIN), 0);
    assert_int_equal(write(level[1], "1", 1), 1);
    assert_true(wait_count(&watch_fired[1], 0, 1) >= 1);
    pthread_mutex_lock(&seen_lock);
    assert_int_equal(watch_fired[0], 1);
    pthread_mutex_unlock(&seen_lock);
    dt_watcher_unwatch(watcher, &b.watch);

    /* Re-armed: the byte still there fires it again. */
    assert_int_equal(dt_watcher_watch(watcher, &a.watch, EPOLLIN | EPOLLONESHOT), 0);
    assert_int_equal(wait_count(&watch_fired[0], 0, 2), 2);
    dt_watcher_unwatch(watcher, &a.watch);
    assert_int_equal(a.watch.generation, 0);

    dt_watcher_free(watcher);
    close(one_shot[0]);
    close(one_shot[1]);
    close(level[0]);
    close(level[1]);
}

/* The watcher sleeps until a deadline 30 s away; a nearer one armed from
 * this thread must wake it, or the wait below runs out at 5 s. */
static void an_earlier_deadline_from_another_thread_wakes_it(void **state)
{
    (void)state;
    struct watcher *watcher = started();
    struct tagged_timer far = { .tag = 'f' }, near = { .tag = 'n' };

    dt_timer_init(&far.timer, timer_fired);
    dt_timer_init(&near.timer, timer_fired);
    dt_watcher_arm(watcher, &far.timer, 30000);
    /* Let it reach epoll_wait with the far deadline: a round ends when a
     * watch fires, and the watch is registered after the far timer. */
    int pipe_fds[2];
    struct tagged_watch settle = { .index = 0 };

    assert_int_equal(pipe(pipe_fds), 0);
    dt_watch_init(&settle.watch, pipe_fds[0], watch_ready);
    dt_watcher_on_round_end(watcher, round_end, NULL);
    assert_int_equal(dt_watcher_watch(watcher, &settle.watch, EPOLLIN | EPOLLONESHOT), 0);
    assert_int_equal(write(pipe_fds[1], "1", 1), 1);
    assert_int_equal(wait_count(&round_ends, 0, 1), 1);

    uint64_t armed_at = dt_monotonic_ms();
    dt_watcher_arm(watcher, &near.timer, 10);
    assert_int_equal(wait_count(&fired, 1, 1), 1);
    assert_true(dt_monotonic_ms() - armed_at < 5000);
    assert_string_equal(order, "n");
    assert_true(dt_timer_armed(&far.timer));
    dt_watcher_disarm(watcher, &far.timer);
    dt_watcher_unwatch(watcher, &settle.watch);
    dt_watcher_on_round_end(watcher, NULL, NULL);
    dt_watcher_free(watcher);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* The round-end hook runs after the round's callbacks, which it sees. */
static void the_round_end_hook_follows_the_events(void **state)
{
    (void)state;
    struct watcher *watcher = started();
    int pipe_fds[2];
    struct tagged_watch a = { .index = 0 };

    assert_int_equal(pipe(pipe_fds), 0);
    dt_watch_init(&a.watch, pipe_fds[0], watch_ready);
    dt_watcher_on_round_end(watcher, round_end, NULL);
    assert_int_equal(dt_watcher_watch(watcher, &a.watch, EPOLLIN | EPOLLONESHOT), 0);
    assert_int_equal(write(pipe_fds[1], "1", 1), 1);
    assert_true(wait_count(&round_ends, 0, 1) >= 1);
    pthread_mutex_lock(&seen_lock);
    assert_int_equal(round_end_saw_watch, 1);
    pthread_mutex_unlock(&seen_lock);
    dt_watcher_unwatch(watcher, &a.watch);
    dt_watcher_on_round_end(watcher, NULL, NULL);
    dt_watcher_free(watcher);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

static _Atomic uint64_t fake_ms;

static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return atomic_load(&fake_ms);
}

/* dt_watcher_clock_moved() returns once what became due fired, and only
 * that: the assertions after it need no wait. */
static void an_injected_clock_fires_what_is_due(void **state)
{
    (void)state;
    for (int started_thread = 0; started_thread < 2; started_thread++) {
        struct watcher *watcher = dt_watcher_new();
        struct tagged_timer first = { .tag = '1' }, second = { .tag = '2' };

        assert_non_null(watcher);
        reset();
        atomic_store(&fake_ms, 5000);
        dt_watcher_set_clock(watcher, fake_clock, NULL);
        if (started_thread)
            assert_int_equal(dt_watcher_start(watcher), 0);
        dt_timer_init(&first.timer, timer_fired);
        dt_timer_init(&second.timer, timer_fired);
        dt_watcher_arm(watcher, &first.timer, 100);
        dt_watcher_arm(watcher, &second.timer, 200);
        atomic_fetch_add(&fake_ms, 99);
        dt_watcher_clock_moved(watcher);
        pthread_mutex_lock(&seen_lock);
        assert_int_equal(fired, 0);
        pthread_mutex_unlock(&seen_lock);
        atomic_fetch_add(&fake_ms, 1);
        dt_watcher_clock_moved(watcher);
        pthread_mutex_lock(&seen_lock);
        assert_int_equal(fired, 1);
        assert_string_equal(order, "1");
        pthread_mutex_unlock(&seen_lock);
        atomic_fetch_add(&fake_ms, 100);
        dt_watcher_clock_moved(watcher);
        pthread_mutex_lock(&seen_lock);
        assert_string_equal(order, "12");
        pthread_mutex_unlock(&seen_lock);
        dt_watcher_free(watcher);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_fire_in_deadline_order),
        cmocka_unit_test(rearming_moves_and_disarming_cancels),
        cmocka_unit_test(a_one_shot_watch_fires_once_until_rearmed),
        cmocka_unit_test(an_earlier_deadline_from_another_thread_wakes_it),
        cmocka_unit_test(the_round_end_hook_follows_the_events),
        cmocka_unit_test(an_injected_clock_fires_what_is_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
