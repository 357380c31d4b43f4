/*
 * connection_status.c - the status bits and the stop decision.
 *
 * The rule, as PHP's: an abort stops the job unless ignore_user_abort is
 * on; a timeout always stops it.  Both are recorded either way, so a
 * shutdown callback sees 3 when both happened.
 */
#include <stdatomic.h>

#include "detach.h"
#include "sched/connection_status.h"

void dt_connection_status_init(struct connection_status *status, int ignore_user_abort)
{
    atomic_init(&status->bits, DETACH_NORMAL);
    atomic_init(&status->ignore_user_abort, ignore_user_abort ? 1 : 0);
    atomic_init(&status->stop_requested, 0);
}

int dt_connection_status_bits(struct connection_status *status)
{
    return atomic_load(&status->bits);
}

int dt_connection_status_request_stop(struct connection_status *status)
{
    return atomic_exchange(&status->stop_requested, 1) == 0;
}

int dt_connection_status_should_stop(struct connection_status *status)
{
    return atomic_load(&status->stop_requested);
}

int dt_connection_status_abort(struct connection_status *status)
{
    atomic_fetch_or(&status->bits, DETACH_ABORTED);
    if (atomic_load(&status->ignore_user_abort))
        return 0;
    return dt_connection_status_request_stop(status);
}

int dt_connection_status_timeout(struct connection_status *status)
{
    atomic_fetch_or(&status->bits, DETACH_TIMEOUT);
    return dt_connection_status_request_stop(status);
}

int dt_connection_status_ignore_user_abort(struct connection_status *status, int on, int *stop_now)
{
    int previous;

    *stop_now = 0;
    if (on < 0)
        return atomic_load(&status->ignore_user_abort);
    previous = atomic_exchange(&status->ignore_user_abort, on ? 1 : 0);
    /* An abort seen while ignored counts from the moment it stops being ignored. */
    if (!on && (atomic_load(&status->bits) & DETACH_ABORTED))
        *stop_now = dt_connection_status_request_stop(status);
    return previous;
}
