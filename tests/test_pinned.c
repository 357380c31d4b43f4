/*
 * test_pinned.c - unit tests for where a parked task goes on: by default
 * on the job thread that started it (the same pthread_self() and
 * thread-locals across dt_executor_sleep(), as detach.h promises handlers
 * for detach_sleep()), errno as it was; and with dt_executor_set_migrate(1)
 * on any thread, errno still kept, every task still ending.  The tasks block their thread now and then, so the
 * executor runs several job threads and a resumed task would find
 * another one free.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "base/timer_heap.h"
#include "sched/executor.h"

#define TASKS 48
#define SLEEPS 6

struct tally {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int ended;
    int moved;          /* resumes on another thread than the one parked on */
    int errno_lost;     /* errno changed across the sleep */
    int local_lost;     /* a thread-local's address changed across the sleep */
    int not_parked;     /* dt_executor_sleep() did not park */
};

struct task {
    struct executor_task task;
    struct tally *tally;
    int number;
};

static _Thread_local int thread_mark;

/* Called through volatile pointers, so each call looks again:
 * pthread_self() and __errno_location() are const functions, and the
 * compiler may reuse one call's result across dt_executor_sleep(). */
static pthread_t thread_now(void)
{
    return pthread_self();
}

static int *mark_address(void)
{
    return &thread_mark;
}

static int errno_read(void)
{
    return errno;
}

static void errno_write(int value)
{
    errno = value;
}

static pthread_t (*volatile current_thread)(void) = thread_now;
static int *(*volatile local_address)(void) = mark_address;
static int (*volatile errno_now)(void) = errno_read;
static void (*volatile errno_to)(int) = errno_write;

static struct task *task_of(struct executor_task *task)
{
    return (struct task *)((char *)task - offsetof(struct task, task));
}

/* Blocks the thread for a moment: the spawner sees it make no progress. */
static void block_briefly(void)
{
    struct timespec pause = { 0, 2 * 1000 * 1000 };

    nanosleep(&pause, NULL);
}

static void run(struct executor_task *task)
{
    struct task *self = task_of(task);
    int moved = 0, errno_lost = 0, local_lost = 0, not_parked = 0;

    for (int i = 0; i < SLEEPS; i++) {
        pthread_t before = current_thread();
        int *local = local_address();
        int mark = 1000 + self->number * 100 + i;

        errno_to(mark);
        if (dt_executor_sleep(task, dt_monotonic_ms() + 1 + (uint64_t)(self->number + i) % 3) != 0)
            not_parked++;
        errno_lost += errno_now() != mark;
        local_lost += local_address() != local;
        moved += !pthread_equal(before, current_thread());
        errno_to(0);   /* what the next job on this thread finds */
        block_briefly();
    }
    pthread_mutex_lock(&self->tally->lock);
    self->tally->moved += moved;
    self->tally->errno_lost += errno_lost;
    self->tally->local_lost += local_lost;
    self->tally->not_parked += not_parked;
    pthread_mutex_unlock(&self->tally->lock);
}

static void release(struct executor_task *task)
{
    struct tally *tally = task_of(task)->tally;

    pthread_mutex_lock(&tally->lock);
    tally->ended++;
    pthread_cond_broadcast(&tally->changed);
    pthread_mutex_unlock(&tally->lock);
}

static void discard(struct executor_task *task)
{
    (void)task;
    fail_msg("a task was discarded");
}

static void request_stop(struct executor_task *task)
{
    (void)task;
}

static int should_stop(struct executor_task *task)
{
    (void)task;
    return 0;
}

static const char *name(struct executor_task *task)
{
    (void)task;
    return "pinned-test";
}

static const struct executor_ops ops = { run, release, discard, request_stop, should_stop, name };

/* Runs TASKS tasks to their end (bounded: 30 s) and returns the tally. */
static void run_tasks(int migrate, struct tally *tally)
{
    static struct task tasks[TASKS];
    struct executor *executor = dt_executor_new(16, TASKS, 0, 0);
    struct timespec deadline;

    assert_non_null(executor);
    dt_executor_set_migrate(executor, migrate);
    pthread_mutex_init(&tally->lock, NULL);
    pthread_cond_init(&tally->changed, NULL);
    for (int i = 0; i < TASKS; i++) {
        dt_executor_task_init(&tasks[i].task, &ops);
        tasks[i].tally = tally;
        tasks[i].number = i;
        assert_int_equal(dt_executor_submit(executor, &tasks[i].task), 0);
    }
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&tally->lock);
    while (tally->ended < TASKS)
        if (pthread_cond_timedwait(&tally->changed, &tally->lock, &deadline) != 0)
            break;
    pthread_mutex_unlock(&tally->lock);
    assert_int_equal(tally->ended, TASKS);
    dt_executor_drain(executor, 5, 0);
    dt_executor_free(executor);
    pthread_cond_destroy(&tally->changed);
    pthread_mutex_destroy(&tally->lock);
}

static void parked_task_resumes_on_its_own_thread(void **state)
{
    struct tally tally = { .ended = 0 };

    (void)state;
    run_tasks(0, &tally);
    assert_int_equal(tally.not_parked, 0);
    assert_int_equal(tally.moved, 0);
    assert_int_equal(tally.errno_lost, 0);
    assert_int_equal(tally.local_lost, 0);
}

static void migrating_tasks_all_end(void **state)
{
    struct tally tally = { .ended = 0 };

    (void)state;
    run_tasks(1, &tally);
    /* Tasks do move here: the default's zero above is no accident. */
    assert_true(tally.moved > 0);
    assert_int_equal(tally.not_parked, 0);
    assert_int_equal(tally.errno_lost, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parked_task_resumes_on_its_own_thread),
        cmocka_unit_test(migrating_tasks_all_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
