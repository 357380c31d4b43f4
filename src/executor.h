/*
 * executor.h - job threads: at most max_jobs jobs run at once, then up to
 * queue more wait, then submission fails (the worker answers 503).
 */
#ifndef DETACH_EXECUTOR_H
#define DETACH_EXECUTOR_H

#include "detach.h"

struct executor *executor_new(unsigned max_jobs, unsigned queue_limit);
/* 0: the job will run (it belongs to the executor now); -1: full or stopping. */
int executor_submit(struct executor *executor, detach_job *job);
/*
 * Stops taking jobs and waits up to timeout_seconds for running and queued
 * ones; then asks the running ones to stop, drops the queued ones (logged)
 * and waits for the running ones to end.
 */
void executor_drain(struct executor *executor, unsigned timeout_seconds);
void executor_free(struct executor *executor);

#endif
