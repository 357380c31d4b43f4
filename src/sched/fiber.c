/*
 * fiber.c - stacks of their own for jobs, and the switch in and out.
 *
 * Why: a job that sleeps for two seconds used to hold a thread for two
 * seconds, and each job cost its thread two wake-ups (to start, to end the
 * sleep).  On a fiber, the sleep is a switch back to the job thread, which
 * runs the next job; thousands of sleeping jobs cost stacks, not threads.
 *
 * The switch: on x86-64, a few instructions that save the callee-saved
 * registers and the floating-point control words, and swap stacks; no
 * system call (ucontext's switch sets the signal mask every time, and in a
 * VM each system call costs several microseconds: 8% of all CPU at 28,000
 * jobs a second).  Elsewhere, and with CET shadow stacks, ucontext.  Stacks
 * are mmap()ed with a guard page below them, as thread stacks are, and
 * kept in a pool once used.  Under AddressSanitizer every switch is
 * announced to it, so it follows the stack in use; under Valgrind the
 * stacks are registered.
 *
 * A fiber may resume on another thread than the one it left (the
 * executor keeps it on one unless asked to migrate it).  Nothing
 * here touches thread-local storage after a switch back into a fiber
 * except through dt_fiber_current(), a call the compiler cannot fold.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "base/error.h"
#include "sched/fiber.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FIBER_ASAN 1
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define FIBER_VALGRIND 1
#endif
#endif

#if defined(__x86_64__) && !defined(__CET__) && !defined(DETACH_FIBER_UCONTEXT)
/* Where a context left off: its stack pointer; the registers are on the
 * stack. */
struct context {
    void *stack_pointer;
};

/* Pushes rbp, rbx, r12-r15 and the SSE and x87 control words, stores the
 * stack pointer in *save, loads `load` and pops the same from there. */
void dt_fiber_switch(void **save, void *load);
__asm__(".text\n"
        ".globl dt_fiber_switch\n"
        ".hidden dt_fiber_switch\n"
        ".type dt_fiber_switch,@function\n"
        "dt_fiber_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size dt_fiber_switch, .-dt_fiber_switch\n");

/* A fresh stack laid out as dt_fiber_switch() leaves one: control
 * words, six registers, then start() as the return address, placed so
 * that start() begins with the stack aligned as after a call. */
static int context_make(struct context *context, char *stack, size_t size, void (*start)(void))
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)(top - 16);   /* [start][padding] */

    frame[0] = (uint64_t)(uintptr_t)start;
    frame -= 7;                                 /* r15 .. rbp, all 0 */
    memset(frame, 0, 7 * sizeof(*frame));
    frame[0] = 0x037F00001F80ull;               /* fcw 0x37F, mxcsr 0x1F80: the defaults */
    context->stack_pointer = frame;
    return 0;
}

static void context_switch(struct context *save, struct context *load)
{
    dt_fiber_switch(&save->stack_pointer, load->stack_pointer);
}
#else
struct context {
    ucontext_t ucontext;
};

static int context_make(struct context *context, char *stack, size_t size, void (*start)(void))
{
    if (getcontext(&context->ucontext) < 0)
        return dt_error_set("fiber: getcontext: %s", strerror(errno));
    context->ucontext.uc_stack.ss_sp = stack;
    context->ucontext.uc_stack.ss_size = size;
    context->ucontext.uc_link = NULL;   /* start() never returns */
    makecontext(&context->ucontext, start, 0);
    return 0;
}

static void context_switch(struct context *save, struct context *load)
{
    if (swapcontext(&save->ucontext, &load->ucontext) < 0)
        abort();   /* only with a bad context, which context_make() never makes */
}
#endif

struct fiber {
    struct context context;        /* where the fiber left off */
    struct context *resumer;       /* the thread's context to go back to */
    void (*entry)(void *arg);
    void *arg;
    void (*after)(void *arg);      /* for the resumer, after a yield */
    void *after_arg;
    int ended;
    char *mapping;                 /* guard page, then the stack */
    size_t mapping_size;
    char *stack;                   /* above the guard page */
    size_t stack_size;
    struct fiber *next_free;       /* in the pool */
    unsigned valgrind_stack;
    /* For AddressSanitizer: its bookkeeping of this fiber, and the stack
     * of the thread that resumed it last. */
    void *fake_stack;
    const void *resumer_bottom;
    size_t resumer_size;
};

struct fiber_pool {
    pthread_mutex_t lock;
    struct fiber *free;            /* stacks mapped and unused */
    size_t stack_size;
    size_t page_size;
};

static __thread struct fiber *running_fiber;

/* Not inlined, so a caller on a fiber that moved threads reads this
 * thread's variable, not an address computed before the move. */
__attribute__((noinline)) struct fiber *dt_fiber_current(void)
{
    struct fiber *fiber = running_fiber;

    __asm__ volatile("" ::: "memory");
    return fiber;
}

__attribute__((noinline)) static void set_current(struct fiber *fiber)
{
    __asm__ volatile("" ::: "memory");
    running_fiber = fiber;
}

#ifdef FIBER_ASAN
static void asan_leaving(void **fake_stack, const void *bottom, size_t size)
{
    __sanitizer_start_switch_fiber(fake_stack, bottom, size);
}
static void asan_arrived(void *fake_stack, const void **old_bottom, size_t *old_size)
{
    __sanitizer_finish_switch_fiber(fake_stack, old_bottom, old_size);
}
#else
static void asan_leaving(void **fake_stack, const void *bottom, size_t size)
{
    (void)fake_stack, (void)bottom, (void)size;
}
static void asan_arrived(void *fake_stack, const void **old_bottom, size_t *old_size)
{
    (void)fake_stack, (void)old_bottom, (void)old_size;
}
#endif

/* The default a new thread's stack gets, which is what a job had before
 * it ran on a fiber: the same handler code needs the same room. */
static size_t default_stack_size(void)
{
    pthread_attr_t attributes;
    size_t size = 0;

    if (pthread_attr_init(&attributes) == 0) {
        pthread_attr_getstacksize(&attributes, &size);
        pthread_attr_destroy(&attributes);
    }
    return size ? size : (size_t)8 << 20;
}

struct fiber_pool *dt_fiber_pool_new(size_t stack_size)
{
    struct fiber_pool *pool = calloc(1, sizeof(*pool));
    long page_size = sysconf(_SC_PAGESIZE);

    if (!pool) {
        dt_error_set("fiber: out of memory");
        return NULL;
    }
    pool->page_size = page_size > 0 ? (size_t)page_size : 4096;
    if (!stack_size)
        stack_size = default_stack_size();
    /* Whole pages, and at least enough for a handler and a log line. */
    if (stack_size < 16 * pool->page_size)
        stack_size = 16 * pool->page_size;
    pool->stack_size = (stack_size + pool->page_size - 1) & ~(pool->page_size - 1);
    pthread_mutex_init(&pool->lock, NULL);
    return pool;
}

size_t dt_fiber_pool_stack_size(const struct fiber_pool *pool)
{
    return pool->stack_size;
}

static void unmap(struct fiber *fiber)
{
#ifdef FIBER_VALGRIND
    VALGRIND_STACK_DEREGISTER(fiber->valgrind_stack);
#endif
    munmap(fiber->mapping, fiber->mapping_size);
    free(fiber);
}

void dt_fiber_pool_free(struct fiber_pool *pool)
{
    if (!pool)
        return;
    while (pool->free) {
        struct fiber *fiber = pool->free;

        pool->free = fiber->next_free;
        unmap(fiber);
    }
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23   /* Linux 5.14 */
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102   /* Linux 6.13 */
#endif

/* The guard page.  Where the kernel has guard regions, one madvise()
 * marks it inside the stack's mapping; mprotect() would split the mapping
 * in two, and vm.max_map_count (65,530 by default) would then allow only
 * half as many stacks. */
static int install_guard(char *mapping, size_t page_size)
{
    if (madvise(mapping, page_size, MADV_GUARD_INSTALL) == 0)
        return 0;
    return mprotect(mapping, page_size, PROT_NONE);
}

/*
 * A fresh stack: mapped without reserving memory (pages come as the job
 * touches them), the lowest page a guard, as for a thread.  The top page,
 * the one every job touches (a sleeping job touches no other), is filled
 * in now in one call: on the 2-core VM of docs/benchmarks.md a new
 * stack's first touch cost 35-45 us as a page fault and about 10 us less
 * filled in first.  Where MADV_POPULATE_WRITE is missing, the job's first
 * touch faults the page in as before.
 */
static struct fiber *map_fiber(struct fiber_pool *pool)
{
    struct fiber *fiber = calloc(1, sizeof(*fiber));
    size_t size = pool->stack_size + pool->page_size;
    void *mapping;

    if (!fiber) {
        dt_error_set("fiber: out of memory");
        return NULL;
    }
    mapping = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (mapping == MAP_FAILED) {
        dt_error_set("fiber: mmap of a %zu-byte stack: %s", size, strerror(errno));
        free(fiber);
        return NULL;
    }
    if (install_guard(mapping, pool->page_size) < 0) {
        dt_error_set("fiber: guard page of a stack: %s", strerror(errno));
        munmap(mapping, size);
        free(fiber);
        return NULL;
    }
    (void)madvise((char *)mapping + size - pool->page_size, pool->page_size, MADV_POPULATE_WRITE);
    fiber->mapping = mapping;
    fiber->mapping_size = size;
    fiber->stack = fiber->mapping + pool->page_size;
    fiber->stack_size = pool->stack_size;
#ifdef FIBER_VALGRIND
    fiber->valgrind_stack = VALGRIND_STACK_REGISTER(fiber->stack, fiber->stack + fiber->stack_size);
#endif
    return fiber;
}

/* The first code on a fresh fiber: run the entry, then leave for good. */
static void fiber_main(void)
{
    struct fiber *self = dt_fiber_current();

    asan_arrived(NULL, &self->resumer_bottom, &self->resumer_size);
    self->entry(self->arg);
    self->ended = 1;
    /* NULL: this fiber's fake stack is gone with it.  self->resumer is
     * whichever thread resumed it last. */
    asan_leaving(NULL, self->resumer_bottom, self->resumer_size);
    context_switch(&self->context, self->resumer);
    abort();   /* nothing switches back to an ended fiber */
}

struct fiber *dt_fiber_new(struct fiber_pool *pool, void (*entry)(void *arg), void *arg)
{
    struct fiber *fiber;

    pthread_mutex_lock(&pool->lock);
    fiber = pool->free;
    if (fiber)
        pool->free = fiber->next_free;
    pthread_mutex_unlock(&pool->lock);
    if (!fiber && !(fiber = map_fiber(pool)))
        return NULL;
    if (context_make(&fiber->context, fiber->stack, fiber->stack_size, fiber_main) < 0) {
        dt_fiber_release(pool, fiber);
        return NULL;
    }
    fiber->entry = entry;
    fiber->arg = arg;
    fiber->after = NULL;
    fiber->ended = 0;
    return fiber;
}

void dt_fiber_release(struct fiber_pool *pool, struct fiber *fiber)
{
    if (!fiber)
        return;
    pthread_mutex_lock(&pool->lock);
    fiber->next_free = pool->free;
    pool->free = fiber;
    pthread_mutex_unlock(&pool->lock);
}

int dt_fiber_resume(struct fiber *fiber)
{
    struct context here;   /* this thread, while the fiber runs */
    void (*after)(void *);
    struct fiber *previous = dt_fiber_current();
    void *fake_stack = NULL;

    fiber->resumer = &here;
    set_current(fiber);
    asan_leaving(&fake_stack, fiber->stack, fiber->stack_size);
    context_switch(&here, &fiber->context);
    asan_arrived(fake_stack, NULL, NULL);
    set_current(previous);
    after = fiber->after;
    if (after) {
        fiber->after = NULL;
        after(fiber->after_arg);
    }
    return fiber->ended;
}

void dt_fiber_yield(void (*after)(void *arg), void *arg)
{
    struct fiber *self = dt_fiber_current();

    self->after = after;
    self->after_arg = arg;
    asan_leaving(&self->fake_stack, self->resumer_bottom, self->resumer_size);
    context_switch(&self->context, self->resumer);
    /* Resumed, perhaps by another thread: self is on this stack, the
     * rest is read afresh. */
    asan_arrived(self->fake_stack, &self->resumer_bottom, &self->resumer_size);
}
