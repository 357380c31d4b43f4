/*
 * wakeup.h - an event count: threads sleep on a futex word and are woken
 * by threads that hold no lock.
 *
 * Why not a condition variable: a signal is only sure to reach a waiter
 * when the signaller holds the waiter's mutex, and the acknowledgement
 * path must never wait for a mutex a niced job thread may hold (it would
 * wait for that thread's next time slice: tens of milliseconds under
 * load).  Here a waiter announces itself, looks at its work once more,
 * and sleeps only if the word is unchanged; a waker that adds work and
 * then finds a waiter announced bumps the word, so no wake-up is lost.
 */
#ifndef DETACH_WAKEUP_H
#define DETACH_WAKEUP_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

struct wakeup {
    _Atomic uint32_t sequence;   /* the futex word */
    _Atomic unsigned waiters;    /* announced, not yet done */
    _Atomic int pending;         /* a wake-up is on its way: no second one */
};

void dt_wakeup_init(struct wakeup *wakeup);

/* Waiter: announce, look at the work again, then wait or not; always
 * dt_wakeup_done() afterwards, with what dt_wakeup_wait() returned (0 when it
 * did not wait).  timeout (relative) may be NULL; dt_wakeup_wait() returns 1
 * when a waker bumped the word since dt_wakeup_prepare(). */
uint32_t dt_wakeup_prepare(struct wakeup *wakeup);
int dt_wakeup_wait(struct wakeup *wakeup, uint32_t seen, const struct timespec *timeout);
void dt_wakeup_done(struct wakeup *wakeup, int woken);

/* Waker, after adding work: one waiter, unless none is announced or a
 * wake-up is already on its way (the woken one passes it on). */
void dt_wakeup_one(struct wakeup *wakeup);
/* Every waiter (stopping). */
void dt_wakeup_all(struct wakeup *wakeup);
/* Some waiter is announced. */
int dt_wakeup_has_waiters(struct wakeup *wakeup);

#endif
