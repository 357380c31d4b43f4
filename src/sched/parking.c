/*
 * parking.c - the deadlines of sleeping jobs, kept on the job side.
 *
 * The watcher owns the deadlines that decide what a client sees (read and
 * idle timeouts, time limits).  A sleeping job's deadline only decides
 * when the job goes on, and there may be ten thousand a second of them:
 * kept here, they wake a niced thread of their own instead of the thread
 * that answers requests.  Deadlines are whole milliseconds, so the jobs
 * that parked in the same millisecond are resumed in one pass.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include "base/error.h"
#include "sched/fiber.h"
#include "sched/parking.h"

enum { NOT_PARKED, PARKED };

struct parking {
    pthread_mutex_t lock;
    pthread_cond_t changed;        /* an earlier deadline, a wake, a stop */
    struct timer_heap deadlines;
    struct parked *woken;          /* asked to stop: resume at once */
    parking_resume_fn resume;
    void *resume_arg;
    int waiting;                   /* the thread waits for the heap's first */
    int stopping;
};

static void no_fire(struct timer *timer)
{
    (void)timer;   /* parked deadlines are popped, never fired */
}

void dt_parked_init(struct parked *parked)
{
    dt_timer_init(&parked->deadline, no_fire);
    parked->state = NOT_PARKED;
    parked->next_woken = NULL;
}

struct parking *dt_parking_new(parking_resume_fn resume, void *arg)
{
    struct parking *parking = calloc(1, sizeof(*parking));
    pthread_condattr_t monotonic;

    if (!parking) {
        dt_error_set("parking: out of memory");
        return NULL;
    }
    parking->resume = resume;
    parking->resume_arg = arg;
    dt_timer_heap_init(&parking->deadlines);
    pthread_mutex_init(&parking->lock, NULL);
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&parking->changed, &monotonic);
    pthread_condattr_destroy(&monotonic);
    return parking;
}

void dt_parking_free(struct parking *parking)
{
    if (!parking)
        return;
    dt_timer_heap_destroy(&parking->deadlines);
    pthread_cond_destroy(&parking->changed);
    pthread_mutex_destroy(&parking->lock);
    free(parking);
}

static void unlock(void *lock)
{
    pthread_mutex_unlock(lock);
}

int dt_parking_park(struct parking *parking, struct parked *parked, uint64_t deadline_ms,
                 int (*stopping)(void *arg), void *stopping_arg)
{
    pthread_mutex_lock(&parking->lock);
    if (stopping(stopping_arg)) {
        pthread_mutex_unlock(&parking->lock);
        return 1;
    }
    if (dt_timer_heap_arm(&parking->deadlines, &parked->deadline, deadline_ms) < 0) {
        pthread_mutex_unlock(&parking->lock);
        errno = ENOMEM;
        return dt_error_set("parking: out of memory");
    }
    parked->state = PARKED;
    if (parking->waiting && dt_timer_heap_first(&parking->deadlines) == &parked->deadline)
        pthread_cond_signal(&parking->changed);
    /* The lock is released by the thread this fiber yields to, once the
     * fiber's stack is out of use: only then may the parking thread pop
     * it and another thread resume it. */
    dt_fiber_yield(unlock, &parking->lock);
    return 0;
}

void dt_parking_wake(struct parking *parking, struct parked *parked)
{
    pthread_mutex_lock(&parking->lock);
    if (parked->state == PARKED) {
        dt_timer_heap_disarm(&parking->deadlines, &parked->deadline);
        parked->state = NOT_PARKED;
        parked->next_woken = parking->woken;
        parking->woken = parked;
        pthread_cond_signal(&parking->changed);
    }
    pthread_mutex_unlock(&parking->lock);
}

/* The due and the woken, as one list, taken out of the heap. */
static struct parked *take_due_locked(struct parking *parking, uint64_t now_ms)
{
    struct parked *due = parking->woken;
    struct timer *first;

    parking->woken = NULL;
    while ((first = dt_timer_heap_first(&parking->deadlines)) && first->deadline_ms <= now_ms) {
        struct parked *parked = (struct parked *)((char *)first - offsetof(struct parked, deadline));

        dt_timer_heap_disarm(&parking->deadlines, first);
        parked->state = NOT_PARKED;
        parked->next_woken = due;
        due = parked;
    }
    return due;
}

static void wait_locked(struct parking *parking)
{
    struct timer *first = dt_timer_heap_first(&parking->deadlines);
    struct timespec until;

    parking->waiting = 1;
    if (!first) {
        pthread_cond_wait(&parking->changed, &parking->lock);
    } else {
        until.tv_sec = (time_t)(first->deadline_ms / 1000);
        until.tv_nsec = (long)(first->deadline_ms % 1000) * 1000000L;
        pthread_cond_timedwait(&parking->changed, &parking->lock, &until);
    }
    parking->waiting = 0;
}

void dt_parking_run(struct parking *parking)
{
    pthread_mutex_lock(&parking->lock);
    while (!parking->stopping) {
        struct parked *due = take_due_locked(parking, dt_monotonic_ms());

        if (!due) {
            wait_locked(parking);
            continue;
        }
        /* Resumed with no lock of ours held: resume() takes the
         * executor's, which is taken before ours elsewhere. */
        pthread_mutex_unlock(&parking->lock);
        while (due) {
            struct parked *next = due->next_woken;

            parking->resume(due, parking->resume_arg);
            due = next;
        }
        pthread_mutex_lock(&parking->lock);
    }
    pthread_mutex_unlock(&parking->lock);
}

void dt_parking_stop(struct parking *parking)
{
    pthread_mutex_lock(&parking->lock);
    parking->stopping = 1;
    pthread_cond_signal(&parking->changed);
    pthread_mutex_unlock(&parking->lock);
}
