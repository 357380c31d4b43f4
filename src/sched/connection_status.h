/*
 * connection_status.h - PHP's connection_status() for one job.
 *
 * NORMAL 0, ABORTED 1, TIMEOUT 2 as bits, ignore_user_abort, and the one
 * stop request they may lead to.  Lock-free: the watcher sets bits while
 * the job thread reads them.  Each call that can newly require a stop says
 * so by returning 1, exactly once per job, so the caller performs the stop
 * action (signal a process group...) exactly once however events race.
 */
#ifndef DETACH_CONNECTION_STATUS_H
#define DETACH_CONNECTION_STATUS_H

struct connection_status {
    _Atomic int bits;
    _Atomic int ignore_user_abort;
    _Atomic int stop_requested;
};

void dt_connection_status_init(struct connection_status *status, int ignore_user_abort);
int dt_connection_status_bits(struct connection_status *status);

/* The peer went away: sets ABORTED; 1 when this must stop the job now. */
int dt_connection_status_abort(struct connection_status *status);
/* The time limit ran out: sets TIMEOUT; 1 when this must stop the job now. */
int dt_connection_status_timeout(struct connection_status *status);
/*
 * on: 0/1 sets, -1 queries; returns the previous setting.  Turning it off
 * after an abort was ignored stops the job then: *stop_now says so.
 */
int dt_connection_status_ignore_user_abort(struct connection_status *status, int on, int *stop_now);
/* 1 for the first caller only. */
int dt_connection_status_request_stop(struct connection_status *status);
int dt_connection_status_should_stop(struct connection_status *status);

#endif
