/*
 * fiber.h - a job's own stack, so that a job that waits gives its thread
 * back.
 *
 * A fiber runs entry(arg) on a stack of its own.  A thread resumes it with
 * dt_fiber_resume(), which returns when the fiber yields or ends; a fiber may
 * be resumed by a different thread each time.  Stacks come from a pool and
 * go back to it, so a burst of jobs maps each stack once.
 */
#ifndef DETACH_FIBER_H
#define DETACH_FIBER_H

#include <stddef.h>

struct fiber;
struct fiber_pool;

/* stack_size 0: the size a new thread's stack would have (RLIMIT_STACK,
 * as glibc reads it).  NULL with detach_last_error() on failure. */
struct fiber_pool *dt_fiber_pool_new(size_t stack_size);
/* Every fiber must have been released first. */
void dt_fiber_pool_free(struct fiber_pool *pool);
size_t dt_fiber_pool_stack_size(const struct fiber_pool *pool);

/* A fiber that will run entry(arg) when first resumed; NULL with
 * detach_last_error() when no stack can be mapped. */
struct fiber *dt_fiber_new(struct fiber_pool *pool, void (*entry)(void *arg), void *arg);
/* An ended (or never resumed) fiber; its stack goes back to the pool. */
void dt_fiber_release(struct fiber_pool *pool, struct fiber *fiber);

/*
 * Runs the fiber on this thread until it yields or ends.  After a yield,
 * the after() function the fiber passed runs here, on this thread's own
 * stack: the fiber's stack is no longer in use, so after() may make the
 * fiber resumable by other threads (unlock what guards that).
 * Returns 1 once the fiber ended, 0 after a yield.
 */
int dt_fiber_resume(struct fiber *fiber);

/* On a fiber: back to the thread that resumed it, which then calls
 * after(arg).  Returns when some thread resumes the fiber again. */
void dt_fiber_yield(void (*after)(void *arg), void *arg);

/* The fiber running on this thread, or NULL on a plain thread. */
struct fiber *dt_fiber_current(void);

#endif
