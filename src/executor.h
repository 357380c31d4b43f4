/*
 * executor.h - job threads: at most max_jobs jobs run at once, then up to
 * queue more wait, then submission fails (the worker answers 503).
 * Submitting never creates a thread: the executor's own spawner thread
 * does, so an ack never waits for a pthread_create().
 */
#ifndef DETACH_EXECUTOR_H
#define DETACH_EXECUTOR_H

#include "detach.h"

/* job_nice: the niceness of job threads, the spawner and the processes
 * they start.  max_jobs >= 1.  Starts the spawner and one job thread, and
 * fails (NULL, detach_last_error()) when it cannot. */
struct executor *executor_new(unsigned max_jobs, unsigned queue_limit, int job_nice);
/* 0: the job will run (it belongs to the executor now); -1: full or stopping. */
int executor_submit(struct executor *executor, detach_job *job);
/* A job recovered from the spool was promised already: queued past the
 * limits.  -1 only when out of memory or stopping. */
int executor_submit_recovered(struct executor *executor, detach_job *job);
/* A cheap, racy look: is there room right now?  Saves a spool write for a
 * request that would be refused anyway. */
int executor_has_room(struct executor *executor);
/*
 * Stops taking jobs.  With keep_queued (a spool holds them) queued jobs are
 * set aside for the next start at once; otherwise they may still start
 * until the timeout.  Waits up to timeout_seconds, then asks the running
 * jobs to stop and waits for them to end (shutdown callbacks included).
 */
void executor_drain(struct executor *executor, unsigned timeout_seconds, int keep_queued);
void executor_free(struct executor *executor);

#endif
