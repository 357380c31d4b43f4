/*
 * executor.h - job threads: at most max_jobs jobs run at once, then up to
 * queue more wait, then submission fails (the worker answers 503).
 * Submitting never creates a thread: the executor's own spawner thread
 * does, so an ack never waits for a pthread_create().  Each job runs on a
 * fiber; one waiting in detach_sleep() holds no thread.
 */
#ifndef DETACH_EXECUTOR_H
#define DETACH_EXECUTOR_H

#include <stdint.h>
#include "sched/parking.h"

struct executor;
struct fiber;

struct executor_task;
struct job_thread;

/*
 * What the executor does with a task: it knows no job, only these.  run:
 * on the task's fiber (or its thread), until the work is done; it may
 * park with dt_executor_sleep().  release: once run returned and the fiber
 * is back, under the executor lock; the task is not touched afterwards.
 * discard: a queued task that will never run (stop with a spool), under
 * the executor lock, instead of run and release.  request_stop: a drain
 * ran out of time, under the executor lock, for every running task.
 * should_stop: polled by a parked task's parking (parking lock).  name:
 * for the log.
 */
struct executor_ops {
    void (*run)(struct executor_task *task);
    void (*release)(struct executor_task *task);
    void (*discard)(struct executor_task *task);
    void (*request_stop)(struct executor_task *task);
    int (*should_stop)(struct executor_task *task);
    const char *(*name)(struct executor_task *task);
};

/*
 * The executor's part of a piece of work, embedded in it (a job's
 * dt_job_task()), so running, parking and resuming allocate nothing but its
 * stack.  Executor lock, except parked (parking lock).
 */
struct executor_task {
    const struct executor_ops *ops;
    struct executor *executor;       /* set by a submit */
    struct fiber *fiber;             /* from its start to its end */
    struct parked parked;
    struct executor_task *next;      /* in the inbox, the queue or a ready list */
    struct job_thread *home;         /* the job thread that started it */
    size_t bytes;                    /* its params and body: the queue_bytes budget */
    struct executor_task *prev_running, *next_running;
};

void dt_executor_task_init(struct executor_task *task, const struct executor_ops *ops);

/* job_nice: the niceness of job threads, the spawner and the processes
 * they start.  sleep_on_thread: dt_executor_sleep() declines, so a sleeping
 * job keeps its thread.  max_jobs >= 1.  Starts the spawner, the parking
 * thread and one job thread, and fails (NULL, detach_last_error()) when
 * it cannot. */
struct executor *dt_executor_new(unsigned max_jobs, unsigned queue_limit, int job_nice,
                              int sleep_on_thread);
/*
 * 0, the default: a parked task resumes on the job thread that started it
 * (errno, thread-locals and pthread_self() hold across dt_executor_sleep()),
 * waiting for that thread to be free.  1: on whichever job thread is free
 * first.  Set before the first submit.
 */
void dt_executor_set_migrate(struct executor *executor, int migrate);
/*
 * The most the queued jobs' bytes (executor_task.bytes, counted from the
 * submit until a job thread starts the job) may come to; 0, the default:
 * no byte budget.  A job always fits an empty queue.  Set before the
 * first submit.
 */
void dt_executor_set_queue_bytes(struct executor *executor, size_t queue_bytes);
/*
 * Fewer jobs than max_jobs at once (1..max_jobs): when the descriptors do
 * not suffice for max_jobs (fd_budget.h), the rest wait queued instead of
 * starting without descriptors.  Admission (max_jobs + queue) is
 * unchanged.  Set before the first submit.
 */
void dt_executor_limit_running(struct executor *executor, unsigned jobs_at_once);
/* 0: the job will run (it belongs to the executor now); -1: full (errno
 * EAGAIN), over the byte budget (ENOBUFS), or stopping (EAGAIN). */
int dt_executor_submit(struct executor *executor, struct executor_task *task);
/*
 * The watcher's submit: the same, but the job thread it would wake is
 * woken at the next dt_executor_flush_wakeup(), which the watcher calls once
 * per epoll round.  A round answers a few to a few dozen triggers, and a
 * wake-up each (a futex call, then a thread switch) was a quarter of the
 * CPU an ack cost.  A job starts at most one round later.
 */
int dt_executor_submit_deferred(struct executor *executor, struct executor_task *task);
void dt_executor_flush_wakeup(struct executor *executor);
/* A job recovered from the spool was promised already: queued past the
 * limits.  -1 only when out of memory or stopping. */
int dt_executor_submit_recovered(struct executor *executor, struct executor_task *task);
/* A cheap, racy look: is there room right now?  Saves a spool write for a
 * request that would be refused anyway. */
int dt_executor_has_room(struct executor *executor, size_t bytes);   /* 0: errno as a submit's */
/*
 * Stops taking jobs.  With keep_queued (a spool holds them) queued jobs are
 * set aside for the next start at once; otherwise they may still start
 * until the timeout.  Waits up to timeout_seconds, then asks the running
 * jobs to stop and waits for them to end (shutdown callbacks included).
 */
void dt_executor_drain(struct executor *executor, unsigned timeout_seconds, int keep_queued);
void dt_executor_free(struct executor *executor);

/*
 * On the task's own fiber: parks it, with no thread held, until
 * deadline_ms (monotonic) or dt_executor_wake().  0 once resumed, errno as
 * it was before the call; 1 at once
 * when the task must stop already (ops->should_stop); -1 when it does not run on a fiber
 * of its own here (a plain thread, or a thread the handler started):
 * then the caller waits on its thread.
 */
int dt_executor_sleep(struct executor_task *task, uint64_t deadline_ms);
/* The task must stop: if it is parked, it resumes now.  Any thread, under
 * any lock (the parking thread resumes it). */
void dt_executor_wake(struct executor_task *task);

#endif
