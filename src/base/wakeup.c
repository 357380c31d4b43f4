/*
 * wakeup.c - the event count of wakeup.h, on a Linux futex.
 *
 * Every operation is sequentially consistent: a waiter's announcement and
 * a waker's new work are ordered, so either the waiter's last look sees
 * the work or the waker sees the waiter (the pattern of Dekker's mutual
 * exclusion).
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/wakeup.h"

static void futex(_Atomic uint32_t *word, int operation, uint32_t value,
                  const struct timespec *timeout)
{
    /* EAGAIN (the word moved), EINTR and ETIMEDOUT all mean: look again. */
    syscall(SYS_futex, (uint32_t *)word, operation, value, timeout, NULL, 0);
}

void dt_wakeup_init(struct wakeup *wakeup)
{
    atomic_init(&wakeup->sequence, 0);
    atomic_init(&wakeup->waiters, 0);
    atomic_init(&wakeup->pending, 0);
}

/*
 * `pending` is cleared by a waiter about to sleep (no wake-up can be
 * on its way to it yet) and by one that was woken.  Not by one that
 * announced itself and then found work without sleeping: a waker may have
 * counted it and be about to set `pending` for it, and a clear before
 * that set would leave `pending` set with nobody to clear it, so every
 * later waker would skip its wake-up.  Such a stale `pending` is cleared
 * by the next waiter's prepare, before it can sleep.
 */
uint32_t dt_wakeup_prepare(struct wakeup *wakeup)
{
    uint32_t seen;

    atomic_store(&wakeup->pending, 0);
    seen = atomic_load(&wakeup->sequence);
    atomic_fetch_add(&wakeup->waiters, 1);
    return seen;
}

int dt_wakeup_wait(struct wakeup *wakeup, uint32_t seen, const struct timespec *timeout)
{
    if (atomic_load(&wakeup->sequence) == seen)
        futex(&wakeup->sequence, FUTEX_WAIT_PRIVATE, seen, timeout);
    return atomic_load(&wakeup->sequence) != seen;
}

void dt_wakeup_done(struct wakeup *wakeup, int woken)
{
    atomic_fetch_sub(&wakeup->waiters, 1);
    if (woken)
        atomic_store(&wakeup->pending, 0);   /* we look now: the next one may be woken */
}

void dt_wakeup_one(struct wakeup *wakeup)
{
    if (!atomic_load(&wakeup->waiters) || atomic_exchange(&wakeup->pending, 1))
        return;
    atomic_fetch_add(&wakeup->sequence, 1);
    futex(&wakeup->sequence, FUTEX_WAKE_PRIVATE, 1, NULL);
}

void dt_wakeup_all(struct wakeup *wakeup)
{
    atomic_fetch_add(&wakeup->sequence, 1);
    futex(&wakeup->sequence, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

int dt_wakeup_has_waiters(struct wakeup *wakeup)
{
    return atomic_load(&wakeup->waiters) != 0;
}
