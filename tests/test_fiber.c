/*
 * test_fiber.c - fibers on real threads: one runs to its end, yields and
 * resumes where it left off, resumes on another thread than the one it
 * left, has the stack room a thread would have, and its stack goes back
 * to the pool.  The page below a stack is a guard a stray write dies on,
 * and a stack is one kernel mapping where guard regions exist.  The
 * sanitizer build follows every switch.
 */
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "sched/fiber.h"

struct trace {
    int steps[8];
    int count;
    pthread_t threads[8];
    struct fiber *current_in_after;   /* dt_fiber_current() inside after() */
    int after_calls;
};

/* Not inlined: pthread_self() is a const function, and a compiler may
 * keep its value across the yield in one function body -- the very
 * reason a job must not carry thread-bound values across detach_sleep(). */
__attribute__((noinline)) static void record(struct trace *trace, int step)
{
    trace->threads[trace->count] = pthread_self();
    trace->steps[trace->count++] = step;
}

static void after_yield(void *arg)
{
    struct trace *trace = arg;

    trace->current_in_after = dt_fiber_current();
    trace->after_calls++;
}

static void three_steps(void *arg)
{
    struct trace *trace = arg;

    record(trace, 1);
    dt_fiber_yield(after_yield, trace);
    record(trace, 2);
    dt_fiber_yield(NULL, NULL);
    record(trace, 3);
}

static void runs_to_its_end(void **state)
{
    struct fiber_pool *pool = dt_fiber_pool_new(0);
    struct trace trace = { .count = 0 };
    struct fiber *fiber;

    (void)state;
    assert_non_null(pool);
    assert_null(dt_fiber_current());
    fiber = dt_fiber_new(pool, three_steps, &trace);
    assert_non_null(fiber);
    assert_int_equal(dt_fiber_resume(fiber), 0);
    assert_int_equal(trace.count, 1);
    /* after() ran on the resumer, with no fiber current any more. */
    assert_int_equal(trace.after_calls, 1);
    assert_null(trace.current_in_after);
    assert_null(dt_fiber_current());
    assert_int_equal(dt_fiber_resume(fiber), 0);
    assert_int_equal(trace.count, 2);
    assert_int_equal(dt_fiber_resume(fiber), 1);
    assert_int_equal(trace.count, 3);
    assert_int_equal(trace.steps[0], 1);
    assert_int_equal(trace.steps[1], 2);
    assert_int_equal(trace.steps[2], 3);
    assert_int_equal(trace.after_calls, 1);
    dt_fiber_release(pool, fiber);
    dt_fiber_pool_free(pool);
}

static void *resume_once(void *fiber)
{
    return (void *)(intptr_t)dt_fiber_resume(fiber);
}

/* Left on one thread, resumed on another: it goes on where it was, on the
 * new thread, and ends there. */
static void resumes_on_another_thread(void **state)
{
    struct fiber_pool *pool = dt_fiber_pool_new(0);
    struct trace trace = { .count = 0 };
    struct fiber *fiber;
    pthread_t other;
    void *ended;

    (void)state;
    assert_non_null(pool);
    fiber = dt_fiber_new(pool, three_steps, &trace);
    assert_non_null(fiber);
    assert_int_equal(dt_fiber_resume(fiber), 0);
    assert_int_equal(pthread_create(&other, NULL, resume_once, fiber), 0);
    assert_int_equal(pthread_join(other, &ended), 0);
    assert_int_equal((intptr_t)ended, 0);
    assert_int_equal(trace.count, 2);
    assert_true(pthread_equal(trace.threads[0], pthread_self()));
    assert_true(pthread_equal(trace.threads[1], other));
    assert_int_equal(dt_fiber_resume(fiber), 1);
    assert_true(pthread_equal(trace.threads[2], pthread_self()));
    dt_fiber_release(pool, fiber);
    dt_fiber_pool_free(pool);
}

/* A handler may use what a thread's stack allows: a 2 MiB local array on
 * the default stack (8 MiB on Debian). */
static void big_frame(void *arg)
{
    volatile char buffer[2 << 20];

    memset((char *)buffer, 7, sizeof(buffer));
    *(int *)arg = buffer[sizeof(buffer) - 1];
}

static void has_a_thread_sized_stack(void **state)
{
    struct fiber_pool *pool = dt_fiber_pool_new(0);
    struct fiber *fiber;
    int seen = 0;

    (void)state;
    assert_non_null(pool);
    assert_true(dt_fiber_pool_stack_size(pool) >= (size_t)4 << 20);
    fiber = dt_fiber_new(pool, big_frame, &seen);
    assert_non_null(fiber);
    assert_int_equal(dt_fiber_resume(fiber), 1);
    assert_int_equal(seen, 7);
    dt_fiber_release(pool, fiber);
    dt_fiber_pool_free(pool);
}

static void note_end(void *arg)
{
    (*(int *)arg)++;
}

/* A released stack is the next one handed out: a burst maps once. */
static void stacks_are_reused(void **state)
{
    struct fiber_pool *pool = dt_fiber_pool_new(64 * 1024);
    struct fiber *first, *second;
    int ended = 0;

    (void)state;
    assert_non_null(pool);
    first = dt_fiber_new(pool, note_end, &ended);
    assert_non_null(first);
    assert_int_equal(dt_fiber_resume(first), 1);
    dt_fiber_release(pool, first);
    second = dt_fiber_new(pool, note_end, &ended);
    assert_ptr_equal(second, first);
    assert_int_equal(dt_fiber_resume(second), 1);
    assert_int_equal(ended, 2);
    dt_fiber_release(pool, second);
    dt_fiber_pool_free(pool);
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* The fiber's lowest stack page and the guard page below it, found from
 * the address of a local near the top of the stack. */
struct stack_ends {
    size_t stack_size, page_size;
    char *lowest, *guard;
};

static void find_ends(void *arg)
{
    struct stack_ends *ends = arg;
    char local;
    uintptr_t top = ((uintptr_t)&local + ends->page_size - 1) & ~(uintptr_t)(ends->page_size - 1);

    ends->lowest = (char *)(top - ends->stack_size);
    ends->guard = ends->lowest - ends->page_size;
}

/* Writes one byte at address in a child, with SIGSEGV's default action
 * (not cmocka's or a sanitizer's handler); returns its wait status. */
static int write_in_child(char *address)
{
    int status = 0;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        *(volatile char *)address = 1;
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* The lowest stack page takes a write; the page below it kills the
 * writer. */
static void a_guard_page_lies_below_the_stack(void **state)
{
    struct fiber_pool *pool = dt_fiber_pool_new(64 * 1024);
    struct stack_ends ends = { 0 };
    struct fiber *fiber;
    int status;

    (void)state;
    assert_non_null(pool);
    ends.stack_size = dt_fiber_pool_stack_size(pool);
    ends.page_size = (size_t)sysconf(_SC_PAGESIZE);
    fiber = dt_fiber_new(pool, find_ends, &ends);
    assert_non_null(fiber);
    assert_int_equal(dt_fiber_resume(fiber), 1);
    status = write_in_child(ends.lowest);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    status = write_in_child(ends.guard);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    dt_fiber_release(pool, fiber);
    dt_fiber_pool_free(pool);
}

static int mappings(void)
{
    char line[512];
    int count = 0;
    FILE *maps = fopen("/proc/self/maps", "r");

    assert_non_null(maps);
    while (fgets(line, sizeof(line), maps))
        count++;
    fclose(maps);
    return count;
}

/* With guard regions (Linux 6.13), a guard does not split its stack's
 * mapping: 64 live fibers add at most 64 mappings, not 128, so twice as
 * many stacks fit under vm.max_map_count. */
static void a_stack_is_one_mapping(void **state)
{
    enum { N = 64 };
    long page_size = sysconf(_SC_PAGESIZE);
    char *probe = mmap(NULL, (size_t)page_size * 2, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int has_guards, before, ended = 0;
    struct fiber_pool *pool;
    struct fiber *fibers[N];

    (void)state;
    assert_true(probe != MAP_FAILED);
    has_guards = madvise(probe, (size_t)page_size, MADV_GUARD_INSTALL) == 0;
    munmap(probe, (size_t)page_size * 2);
    if (!has_guards)
        skip();   /* the kernel predates guard regions: mprotect() splits */
    pool = dt_fiber_pool_new(64 * 1024);
    assert_non_null(pool);
    before = mappings();
    for (int i = 0; i < N; i++) {
        fibers[i] = dt_fiber_new(pool, note_end, &ended);
        assert_non_null(fibers[i]);
    }
    assert_true(mappings() - before <= N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(dt_fiber_resume(fibers[i]), 1);
        dt_fiber_release(pool, fibers[i]);
    }
    assert_int_equal(ended, N);
    dt_fiber_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_to_its_end),
        cmocka_unit_test(resumes_on_another_thread),
        cmocka_unit_test(has_a_thread_sized_stack),
        cmocka_unit_test(stacks_are_reused),
        cmocka_unit_test(a_guard_page_lies_below_the_stack),
        cmocka_unit_test(a_stack_is_one_mapping),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
