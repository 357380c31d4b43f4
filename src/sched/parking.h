/*
 * parking.h - jobs parked in detach_sleep() without a thread, and the one
 * thread that resumes them at their deadline or as soon as they must stop.
 *
 * A parked fiber is handed to resume() (the executor's ready list) from
 * the parking thread, which holds no lock then: so a stop may be asked
 * from under any lock (the watcher's, the executor's) without ordering
 * trouble.  The parking lock is taken last, after any other.
 */
#ifndef DETACH_PARKING_H
#define DETACH_PARKING_H

#include <stdint.h>
#include "base/timer_heap.h"

struct parking;

/* Embedded in its job: parking allocates nothing. */
struct parked {
    struct timer deadline;     /* armed while parked with a deadline */
    int state;                 /* parking lock */
    struct parked *next_woken;
};

typedef void (*parking_resume_fn)(struct parked *parked, void *arg);

/* NULL with detach_last_error() when out of memory. */
struct parking *dt_parking_new(parking_resume_fn resume, void *arg);
/* The parking thread's body (its owner starts the thread): resumes
 * parked fibers until dt_parking_stop(). */
void dt_parking_run(struct parking *parking);
/* dt_parking_run() returns; nothing may be parked any more. */
void dt_parking_stop(struct parking *parking);
void dt_parking_free(struct parking *parking);

void dt_parked_init(struct parked *parked);

/*
 * On a fiber: parks it until deadline_ms (monotonic) or dt_parking_wake(),
 * unless stopping(stopping_arg) already holds (checked under the parking
 * lock, so a wake that follows the flag is never lost).  Returns 0 once
 * resumed, 1 at once when stopping, -1 when the heap cannot grow.
 */
int dt_parking_park(struct parking *parking, struct parked *parked, uint64_t deadline_ms,
                 int (*stopping)(void *arg), void *stopping_arg);

/* Resumes a parked fiber now (its stop was asked).  No effect on one not
 * parked: it sees the stop flag before it parks. */
void dt_parking_wake(struct parking *parking, struct parked *parked);

#endif
