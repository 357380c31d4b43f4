/*
 * executor.c - job threads, the jobs' fibers and the admission queue.
 *
 * Every job runs on a fiber of its own (fiber.c), carried by a job thread.
 * A job that sleeps (detach_sleep) parks its fiber (parking.c) and its
 * thread goes on with the next runnable job; at its deadline, or when it
 * must stop, the fiber joins its own thread's ready list and that thread
 * resumes it, so pthread_self() and thread-locals hold across the sleep.
 * Only with dt_executor_set_migrate() does it join a shared list any job
 * thread resumes it from (sooner when its thread is busy, at that cost).
 * So a job costs a thread only while it computes or blocks, and ten
 * thousand sleeping jobs are ten thousand stacks, not threads or wake-ups.
 *
 * A submit is on the acknowledgement path and takes no lock: a job
 * thread holding the executor lock runs at nice 10, and under load an ack
 * waiting for it would wait for its next time slice.  So admission is
 * one atomic count (running + queued, the 503 boundary, exact), a job
 * goes onto a lock-free inbox, and idle job threads sleep on an event
 * count (wakeup.c) that a submit bumps without a lock.  Job threads move
 * the inbox into the FIFO queue under the lock whenever they look for
 * work.  At most max_jobs jobs are running (started, not ended, parked or
 * not).
 *
 * Threads are started up to max_jobs and then kept, never by a submitter:
 * a spawner thread creates them (pthread_create costs 100-190 us of CPU
 * on a small VM) when runnable jobs wait and the threads there are make
 * no progress, i.e. they are blocked in a handler or a script's wait.  No
 * job is stranded: dt_executor_new() starts one job thread itself and fails
 * if it cannot, and job threads never exit before dt_executor_free().
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"
#include "base/thread.h"
#include "base/wakeup.h"
#include "detach.h"
#include "sched/executor.h"
#include "sched/fiber.h"

/* Idle threads kept beyond the runnable jobs: a burst finds them ready,
 * and a quiet server keeps a couple, never more than max_jobs in all. */
#define SPARE_THREADS 2u

/* Runnable jobs waiting this long with no thread taking one: the threads
 * are blocked, and one more is worth its creation. */
#define SPAWN_GRACE_NS 1000000L

struct task_list {
    struct executor_task *head, *tail;
    size_t count;
};

struct executor {
    int job_nice;              /* job threads (and their scripts) yield to acks */
    int sleep_on_thread;       /* detach_sleep() keeps the job's thread */
    int migrate;               /* a resumed fiber may go on on any thread */
    unsigned max_jobs, queue_limit;
    unsigned run_limit;        /* jobs started at once: max_jobs, or fewer
                                  when descriptors are short */

    size_t queue_bytes;        /* budget for queued_bytes; 0: none */

    /* Without the lock: the ack's path. */
    _Atomic size_t admitted;   /* running + queued + in the inbox */
    _Atomic size_t queued_bytes;   /* task->bytes of the queued and inbox jobs */
    _Atomic int closed;        /* no new jobs */
    _Atomic(struct executor_task *) inbox;   /* submitted, newest first */
    _Atomic int wake_owed;     /* deferred submits since the last flush */
    struct wakeup work;        /* idle job threads sleep here */
    struct wakeup spawn;       /* the idle spawner sleeps here */

    pthread_mutex_t lock;
    pthread_cond_t idle;       /* a job ended (dt_executor_drain waits) */
    struct task_list queue;    /* admitted, not started, oldest first */
    struct task_list ready;    /* parked fibers due to go on, any thread
                                  (migrate) */
    /* started, not ended: on a thread, parked or ready.  Changed under
     * the lock; atomic so that a submit may read it without. */
    _Atomic unsigned running;
    struct executor_task *running_jobs;   /* the running ones, for a drain */
    unsigned long taken;       /* jobs taken by job threads: their progress */
    /* threads: created, thread_ids[0..threads) joinable (a thread being
     * created is not counted yet, though it may already run a job).
     * starting: reserved and not yet at their work loop. */
    unsigned threads, starting;
    pthread_t *thread_ids;
    pthread_t spawner, parker;
    int has_spawner, has_parker;
    int exiting;               /* threads leave once no job runs */
    struct fiber_pool *fibers;
    struct parking *parking;
};

static void list_push(struct task_list *list, struct executor_task *task)
{
    task->next = NULL;
    if (list->tail)
        list->tail->next = task;
    else
        list->head = task;
    list->tail = task;
    list->count++;
}

static struct executor_task *list_pop(struct task_list *list)
{
    struct executor_task *task = list->head;

    if (task) {
        list->head = task->next;
        if (!list->head)
            list->tail = NULL;
        list->count--;
    }
    return task;
}

/* A job thread's own state, on its stack: it never leaves while a job it
 * started runs (may_leave_locked()).  Under the executor lock. */
struct job_thread {
    struct task_list ready;    /* its parked fibers due to go on here */
    int waiting;               /* idle on executor->work: wake to resume one */
};

/* The inbox into the queue, oldest first (the inbox is newest first). */
static void collect_inbox_locked(struct executor *executor)
{
    struct executor_task *newest = atomic_exchange(&executor->inbox, NULL);
    struct executor_task *oldest = NULL;

    while (newest) {
        struct executor_task *next = newest->next;

        newest->next = oldest;
        oldest = newest;
        newest = next;
    }
    while (oldest) {
        struct executor_task *next = oldest->next;

        list_push(&executor->queue, oldest);
        oldest = next;
    }
}

/* Queued jobs that may start now: running ones leave room under max_jobs.
 * Exiting, none start (dt_executor_free() discards them). */
static size_t startable_locked(const struct executor *executor)
{
    size_t room = executor->running < executor->run_limit ?
                  executor->run_limit - executor->running : 0;

    if (executor->exiting)
        return 0;
    return executor->queue.count < room ? executor->queue.count : room;
}

/* What a job thread could take now: a resumed fiber or a job to start. */
static size_t runnable_locked(const struct executor *executor)
{
    return executor->ready.count + startable_locked(executor);
}

static unsigned idle_threads(struct executor *executor)
{
    return atomic_load(&executor->work.waiters) + executor->starting;
}

/*
 * Is a job thread missing?  Threads ready for work (waiting, or starting)
 * should cover the runnable jobs plus `spare` idle ones, within max_jobs.
 * Once closed, no spares: only jobs already queued still want threads.
 * threads is exact whenever the spawner looks (it creates one at a time).
 */
static int wants_thread_locked(struct executor *executor, unsigned spare)
{
    if (executor->exiting || executor->threads >= executor->max_jobs)
        return 0;
    if (atomic_load(&executor->closed))
        spare = 0;
    return idle_threads(executor) < runnable_locked(executor) + spare;
}

/* Per thread on Linux, and inherited by the threads and scripts it
 * starts: job-side work, or a burst of process starts, never slows an
 * ack. */
static void lower_priority(int job_nice, const char *thread)
{
    if (job_nice && setpriority(PRIO_PROCESS, (id_t)gettid(), job_nice) < 0)
        dt_log_line(LOG_ERROR, "job_thread", "thread=%s error=\"setpriority: %s\"", thread,
                 strerror(errno));
}

/* After the lock is dropped: a waiting thread for what is runnable, the
 * spawner when a thread may be missing. */
static void wake_after_unlock(struct executor *executor, int runnable, int thread_missing)
{
    if (runnable)
        dt_wakeup_one(&executor->work);
    if (thread_missing)
        dt_wakeup_one(&executor->spawn);
}

static void running_add_locked(struct executor *executor, struct executor_task *task)
{
    task->prev_running = NULL;
    task->next_running = executor->running_jobs;
    if (executor->running_jobs)
        executor->running_jobs->prev_running = task;
    executor->running_jobs = task;
}

static void running_remove_locked(struct executor *executor, struct executor_task *task)
{
    if (task->prev_running)
        task->prev_running->next_running = task->next_running;
    else
        executor->running_jobs = task->next_running;
    if (task->next_running)
        task->next_running->prev_running = task->prev_running;
}

/* Resumed fibers first, its own then any thread's: they hold a running
 * slot and a stack already.  Then a queued job, if max_jobs leaves room
 * for it; the job is this thread's from now on. */
static struct executor_task *take_work_locked(struct executor *executor, struct job_thread *self)
{
    struct executor_task *task;

    collect_inbox_locked(executor);
    task = list_pop(&self->ready);
    if (!task)
        task = list_pop(&executor->ready);
    if (!task && startable_locked(executor)) {
        task = list_pop(&executor->queue);
        atomic_fetch_sub(&executor->queued_bytes, task->bytes);
        executor->running++;
        running_add_locked(executor, task);
        task->home = self;
    }
    if (task)
        executor->taken++;
    return task;
}

static void task_fiber_main(void *task)
{
    ((struct executor_task *)task)->ops->run(task);
}

/*
 * Runs a job until it ends or parks.  A new job gets a fiber first; when
 * no stack can be mapped it runs on this thread instead, as a thread per
 * job (detach_sleep() then waits on the thread).  Returns 1 once ended.
 */
static int run_task(struct executor *executor, struct executor_task *task)
{
    if (!task->fiber) {
        task->fiber = dt_fiber_new(executor->fibers, task_fiber_main, task);
        if (!task->fiber) {
            dt_log_line(LOG_ERROR, "job_fiber", "job=%s error=\"%s\" note=\"runs on its thread\"",
                     task->ops->name(task), detach_last_error());
            task->ops->run(task);
            return 1;
        }
    }
    return dt_fiber_resume(task->fiber);
}

/* Job threads leave once told to and no job is left to finish: a parked
 * job still needs a thread when it resumes. */
static int may_leave_locked(const struct executor *executor)
{
    return executor->exiting && !executor->running;
}

/* Takes a job, or sleeps until there may be one; NULL: leave. */
static struct executor_task *next_task_locked(struct executor *executor, struct job_thread *self)
{
    for (;;) {
        struct executor_task *task = take_work_locked(executor, self);
        uint32_t seen;
        int woken = 0;

        if (task || may_leave_locked(executor))
            return task;
        /* Announced first, then one more look at the inbox: a submit
         * after that look sees us and bumps the word. */
        seen = dt_wakeup_prepare(&executor->work);
        if (!atomic_load(&executor->inbox)) {
            self->waiting = 1;   /* a resume for us, from now on, wakes all */
            pthread_mutex_unlock(&executor->lock);
            woken = dt_wakeup_wait(&executor->work, seen, NULL);
            pthread_mutex_lock(&executor->lock);
            self->waiting = 0;
        }
        dt_wakeup_done(&executor->work, woken);
    }
}

static void *job_thread_main(void *arg)
{
    struct executor *executor = arg;
    struct job_thread self = { .ready = { NULL, NULL, 0 }, .waiting = 0 };
    struct executor_task *task;

    pthread_setname_np(pthread_self(), "detach-job");   /* for top -H and perf */
    lower_priority(executor->job_nice, "job");
    pthread_mutex_lock(&executor->lock);
    executor->starting--;   /* from now on waiting or running */
    while ((task = next_task_locked(executor, &self))) {
        /* More runnable: the next waiting thread is woken from here, on
         * the job side, rather than by the ack. */
        int more = runnable_locked(executor) > 0;
        /* One idle thread fewer: the spares are topped up from here too. */
        int missing = wants_thread_locked(executor, SPARE_THREADS);

        pthread_mutex_unlock(&executor->lock);
        wake_after_unlock(executor, more, missing);
        if (!run_task(executor, task)) {
            pthread_mutex_lock(&executor->lock);
            continue;   /* parked: the parking thread hands it back */
        }
        dt_fiber_release(executor->fibers, task->fiber);
        task->fiber = NULL;
        pthread_mutex_lock(&executor->lock);
        /* Released under the lock, so dt_executor_drain() never asks a
         * freed job to stop; one lock hold per job. */
        running_remove_locked(executor, task);
        executor->running--;
        atomic_fetch_sub(&executor->admitted, 1);
        task->ops->release(task);
        pthread_cond_broadcast(&executor->idle);
        if (may_leave_locked(executor))
            dt_wakeup_all(&executor->work);
    }
    pthread_mutex_unlock(&executor->lock);
    return NULL;
}

/*
 * From the parking thread: a fiber's deadline passed or its stop came.
 * It goes back to the thread that started it, which takes it before any
 * other work: woken if idle (all idle threads are, the word being shared;
 * the others look and sleep again), else when its current job ends or
 * parks.  With migrate, any thread takes it.
 */
static void resume_parked(struct parked *parked, void *arg)
{
    struct executor *executor = arg;
    struct executor_task *task =
        (struct executor_task *)((char *)parked - offsetof(struct executor_task, parked));
    int shared = executor->migrate || !task->home;
    int missing = 0, wake_home = 0;

    pthread_mutex_lock(&executor->lock);
    if (shared) {
        list_push(&executor->ready, task);
        missing = wants_thread_locked(executor, 0);
    } else {
        list_push(&task->home->ready, task);
        wake_home = task->home->waiting;
    }
    pthread_mutex_unlock(&executor->lock);
    if (shared)
        wake_after_unlock(executor, 1, missing);
    else if (wake_home)
        dt_wakeup_all(&executor->work);
}

static void *parker_main(void *arg)
{
    struct executor *executor = arg;

    pthread_setname_np(pthread_self(), "detach-parking");   /* for top -H and perf */
    lower_priority(executor->job_nice, "parking");
    dt_parking_run(executor->parking);
    return NULL;
}

static int must_stop(void *task)
{
    return ((struct executor_task *)task)->ops->should_stop(task);
}

/* errno's address must be looked up afresh after a switch:
 * __errno_location() is a const function, so the compiler may reuse the
 * address it had before, which after a migration is another thread's
 * errno.  A call through a volatile pointer is one it cannot fold. */
static int errno_read(void)
{
    return errno;
}

static void errno_write(int value)
{
    errno = value;
}

static int (*volatile errno_value)(void) = errno_read;
static void (*volatile errno_set)(int) = errno_write;

int dt_executor_sleep(struct executor_task *task, uint64_t deadline_ms)
{
    int rc, saved_errno = errno_value();

    if (!task->executor || task->executor->sleep_on_thread || !task->fiber ||
        dt_fiber_current() != task->fiber)
        return -1;
    rc = dt_parking_park(task->executor->parking, &task->parked, deadline_ms, must_stop, task);
    /* Other jobs ran on the thread meanwhile and may have set errno. */
    if (rc == 0)
        errno_set(saved_errno);
    if (rc < 0)
        dt_log_line(LOG_ERROR, "parking", "job=%s error=\"%s\" note=\"sleeps on its thread\"",
                 task->ops->name(task), detach_last_error());
    return rc;
}

void dt_executor_wake(struct executor_task *task)
{
    if (task->executor)
        dt_parking_wake(task->executor->parking, &task->parked);
}

void dt_executor_task_init(struct executor_task *task, const struct executor_ops *ops)
{
    memset(task, 0, sizeof(*task));
    task->ops = ops;
    dt_parked_init(&task->parked);
}

/*
 * Starts job thread number `threads`, with the lock dropped around
 * pthread_create() so no job thread waits on a creation.  Only one thread
 * at a time calls this (dt_executor_new() before the spawner exists, then
 * the spawner), so the number cannot change meanwhile.  The thread is
 * counted in `threads` only once it exists, so dt_executor_free() joins only
 * real threads; until it reaches its loop it counts in `starting`, so the
 * spawner does not start a second one for the same job.  Returns 0 or
 * pthread_create()'s error, logged.
 */
static int start_job_thread_locked(struct executor *executor)
{
    unsigned index = executor->threads;
    pthread_t id;
    int rc;

    executor->starting++;
    pthread_mutex_unlock(&executor->lock);
    rc = dt_thread_start(&id, job_thread_main, executor);
    if (rc != 0)
        dt_log_line(LOG_ERROR, "job_thread", "error=\"pthread_create: %s\"", strerror(rc));
    pthread_mutex_lock(&executor->lock);
    if (rc != 0) {
        executor->starting--;
        return rc;
    }
    executor->thread_ids[index] = id;
    executor->threads++;
    return 0;
}

/*
 * Waits for a grace with the lock dropped; did no thread take a job
 * meanwhile, and is none idle that could?  An idle thread (waiting, just
 * woken, or starting) takes the next runnable job as soon as it gets a
 * CPU: under a load that keeps the CPUs busy, job threads at their nice
 * wait longer than the grace, and a new thread would only wait beside
 * them.  Without that check threads piled up by a few a second while the
 * CPUs were busy.  With nothing runnable the want is a spare, and idle
 * threads are no reason against it.  The first few threads come without
 * a look.
 */
static int threads_blocked_locked(struct executor *executor)
{
    const struct timespec grace = { 0, SPAWN_GRACE_NS };
    unsigned long taken = executor->taken;

    if (executor->threads < 1 + SPARE_THREADS)
        return 1;
    pthread_mutex_unlock(&executor->lock);
    /* Not announced: submits do not wake it; a stop does (dt_wakeup_all). */
    dt_wakeup_wait(&executor->spawn, atomic_load(&executor->spawn.sequence), &grace);
    pthread_mutex_lock(&executor->lock);
    if (executor->taken != taken || executor->exiting)
        return 0;
    return idle_threads(executor) == 0 || runnable_locked(executor) == 0;
}

/*
 * The spawner: creates job threads while some are missing and the others
 * are blocked, then sleeps until woken.  After a failed creation it sleeps
 * too, rather than retry at once: the next job start or submit that finds
 * a thread missing wakes it again, and meanwhile queued jobs wait for a
 * running thread.
 */
static void *spawner_main(void *arg)
{
    struct executor *executor = arg;

    pthread_setname_np(pthread_self(), "detach-spawner");   /* for top -H and perf */
    /* Its work is job-side, and the threads it creates inherit this. */
    lower_priority(executor->job_nice, "spawner");
    pthread_mutex_lock(&executor->lock);
    while (!executor->exiting) {
        uint32_t seen;
        int woken;

        collect_inbox_locked(executor);
        if (wants_thread_locked(executor, SPARE_THREADS)) {
            if (!threads_blocked_locked(executor))
                continue;   /* they made progress: look again */
            if (wants_thread_locked(executor, SPARE_THREADS) &&
                start_job_thread_locked(executor) == 0)
                continue;
        }
        woken = 0;
        seen = dt_wakeup_prepare(&executor->spawn);
        if (!atomic_load(&executor->inbox) && !executor->exiting) {
            pthread_mutex_unlock(&executor->lock);
            woken = dt_wakeup_wait(&executor->spawn, seen, NULL);
            pthread_mutex_lock(&executor->lock);
        }
        dt_wakeup_done(&executor->spawn, woken);
    }
    pthread_mutex_unlock(&executor->lock);
    return NULL;
}

/* One job thread now, so there is always one for a queued job whatever
 * later creations do; then the spawner, which starts the others, and the
 * parking thread. */
static int start_threads(struct executor *executor)
{
    int rc;

    pthread_mutex_lock(&executor->lock);
    rc = start_job_thread_locked(executor);
    pthread_mutex_unlock(&executor->lock);
    if (rc == 0) {
        rc = dt_thread_start(&executor->spawner, spawner_main, executor);
        executor->has_spawner = rc == 0;
    }
    if (rc == 0) {
        rc = dt_thread_start(&executor->parker, parker_main, executor);
        executor->has_parker = rc == 0;
    }
    if (rc != 0) {
        errno = rc;
        return dt_error_set("executor: pthread_create: %s", strerror(rc));
    }
    return 0;
}

struct executor *dt_executor_new(unsigned max_jobs, unsigned queue_limit, int job_nice,
                              int sleep_on_thread)
{
    struct executor *executor;

    if (!max_jobs) {
        errno = EINVAL;
        dt_error_set("executor: max_jobs must be at least 1");
        return NULL;
    }
    executor = calloc(1, sizeof(*executor));
    if (!executor)
        goto out_of_memory;
    executor->job_nice = job_nice;
    executor->sleep_on_thread = sleep_on_thread;
    executor->max_jobs = max_jobs;
    executor->run_limit = max_jobs;
    executor->queue_limit = queue_limit;
    executor->thread_ids = calloc(max_jobs, sizeof(*executor->thread_ids));
    if (!executor->thread_ids)
        goto out_of_memory;
    executor->fibers = dt_fiber_pool_new(0);
    executor->parking = dt_parking_new(resume_parked, executor);
    if (!executor->fibers || !executor->parking)
        goto fail;
    atomic_init(&executor->admitted, 0);
    atomic_init(&executor->queued_bytes, 0);
    atomic_init(&executor->closed, 0);
    atomic_init(&executor->inbox, NULL);
    dt_wakeup_init(&executor->work);
    dt_wakeup_init(&executor->spawn);
    pthread_mutex_init(&executor->lock, NULL);
    pthread_cond_init(&executor->idle, NULL);
    if (start_threads(executor) < 0) {
        int saved = errno;

        dt_executor_free(executor);
        errno = saved;
        return NULL;
    }
    return executor;
out_of_memory:
    errno = ENOMEM;
    dt_error_set("executor: out of memory");
fail:
    if (executor) {
        dt_parking_free(executor->parking);
        dt_fiber_pool_free(executor->fibers);
        free(executor->thread_ids);
        free(executor);
    }
    return NULL;
}

void dt_executor_set_migrate(struct executor *executor, int migrate)
{
    executor->migrate = migrate;
}

void dt_executor_set_queue_bytes(struct executor *executor, size_t queue_bytes)
{
    executor->queue_bytes = queue_bytes;
}

void dt_executor_limit_running(struct executor *executor, unsigned jobs_at_once)
{
    pthread_mutex_lock(&executor->lock);
    executor->run_limit = jobs_at_once < 1 ? 1 :
                          jobs_at_once > executor->max_jobs ? executor->max_jobs : jobs_at_once;
    pthread_mutex_unlock(&executor->lock);
}

/* An empty queue takes any job, so a body above the budget is not
 * refused for that alone; else the job must fit what is left. */
static int bytes_fit(const struct executor *executor, size_t queued, size_t bytes)
{
    return !executor->queue_bytes || queued == 0 ||
           (bytes <= executor->queue_bytes && queued <= executor->queue_bytes - bytes);
}

int dt_executor_has_room(struct executor *executor, size_t bytes)
{
    if (atomic_load(&executor->closed) ||
        atomic_load(&executor->admitted) >= (size_t)executor->max_jobs + executor->queue_limit) {
        errno = EAGAIN;
        return 0;
    }
    if (!bytes_fit(executor, atomic_load(&executor->queued_bytes), bytes)) {
        errno = ENOBUFS;
        return 0;
    }
    return 1;
}

/* The bytes first, exactly (one compare-and-swap decides between two
 * submits to an empty queue); given back if the count then refuses. */
static int reserve_bytes(struct executor *executor, size_t bytes, int forced)
{
    size_t queued = atomic_load(&executor->queued_bytes);

    do {
        if (!forced && !bytes_fit(executor, queued, bytes))
            return -1;
    } while (!atomic_compare_exchange_weak(&executor->queued_bytes, &queued, queued + bytes));
    return 0;
}

/* Counted before closed is read, and drain sets closed before it reads
 * the count: so either the drain waits for this job, or the job sees
 * closed and is refused. */
static int admit(struct executor *executor, size_t bytes, int forced)
{
    size_t limit = (size_t)executor->max_jobs + executor->queue_limit;
    size_t admitted = atomic_load(&executor->admitted);

    if (reserve_bytes(executor, bytes, forced) < 0) {
        errno = ENOBUFS;
        return -1;
    }
    do {
        if (!forced && admitted >= limit) {
            atomic_fetch_sub(&executor->queued_bytes, bytes);
            errno = EAGAIN;
            return -1;
        }
    } while (!atomic_compare_exchange_weak(&executor->admitted, &admitted, admitted + 1));
    if (atomic_load(&executor->closed)) {
        atomic_fetch_sub(&executor->queued_bytes, bytes);
        atomic_fetch_sub(&executor->admitted, 1);
        pthread_mutex_lock(&executor->lock);   /* rare: a drain may wait on the count */
        pthread_cond_broadcast(&executor->idle);
        pthread_mutex_unlock(&executor->lock);
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

/*
 * After jobs went onto the inbox: if max_jobs leaves room, a waiting job
 * thread is woken, unless a wake-up is on its way already (the woken
 * thread passes the word on); with no thread waiting, the spawner is told
 * a thread may be missing.
 */
static void wake_for_inbox(struct executor *executor)
{
    /* No room: a running job must end first, and the thread that ends it
     * takes the next queued job itself, so waking one now would only have
     * it look and sleep again, once per ack while jobs pile up.  Read
     * after the push: a thread lowers running before it looks at the
     * inbox, so one of the two sees the other. */
    if (atomic_load(&executor->running) >= executor->run_limit)
        return;
    if (dt_wakeup_has_waiters(&executor->work))
        dt_wakeup_one(&executor->work);
    else
        dt_wakeup_one(&executor->spawn);
}

/*
 * This is the ack's path: no lock.  The job goes onto the inbox; a job
 * thread is woken now, or, deferred, at the next dt_executor_flush_wakeup().
 */
static int submit(struct executor *executor, struct executor_task *task, int forced, int deferred)
{
    struct executor_task *head;

    if (admit(executor, task->bytes, forced) < 0)
        return -1;   /* errno set */
    task->executor = executor;
    head = atomic_load(&executor->inbox);
    do
        task->next = head;
    while (!atomic_compare_exchange_weak(&executor->inbox, &head, task));
    if (deferred)
        atomic_store_explicit(&executor->wake_owed, 1, memory_order_relaxed);
    else
        wake_for_inbox(executor);
    return 0;
}

int dt_executor_submit(struct executor *executor, struct executor_task *task)
{
    return submit(executor, task, 0, 0);
}

int dt_executor_submit_deferred(struct executor *executor, struct executor_task *task)
{
    return submit(executor, task, 0, 1);
}

void dt_executor_flush_wakeup(struct executor *executor)
{
    if (atomic_load_explicit(&executor->wake_owed, memory_order_relaxed) &&
        atomic_exchange(&executor->wake_owed, 0))
        wake_for_inbox(executor);
}

int dt_executor_submit_recovered(struct executor *executor, struct executor_task *task)
{
    return submit(executor, task, 1, 0);
}

static int wait_until_locked(struct executor *executor, const struct timespec *deadline)
{
    while (atomic_load(&executor->admitted)) {
        if (pthread_cond_timedwait(&executor->idle, &executor->lock, deadline) == ETIMEDOUT)
            return -1;
    }
    return 0;
}

/* Queued jobs that will not start: set aside (spool) or dropped. */
static void discard_queued_locked(struct executor *executor)
{
    struct executor_task *task;

    collect_inbox_locked(executor);
    while ((task = list_pop(&executor->queue))) {
        atomic_fetch_sub(&executor->queued_bytes, task->bytes);
        atomic_fetch_sub(&executor->admitted, 1);
        task->ops->discard(task);
    }
}

void dt_executor_drain(struct executor *executor, unsigned timeout_seconds, int keep_queued)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_seconds;
    pthread_mutex_lock(&executor->lock);
    atomic_store(&executor->closed, 1);
    if (keep_queued)
        discard_queued_locked(executor);
    if (wait_until_locked(executor, &deadline) < 0) {
        dt_log_line(LOG_INFO, "drain_timeout", "running=%u queued=%zu", executor->running,
                 executor->queue.count);
        discard_queued_locked(executor);
        /* Parked ones too: the stop resumes them. */
        for (struct executor_task *task = executor->running_jobs; task; task = task->next_running)
            task->ops->request_stop(task);
        while (executor->running)
            pthread_cond_wait(&executor->idle, &executor->lock);
    }
    pthread_mutex_unlock(&executor->lock);
}

void dt_executor_free(struct executor *executor)
{
    if (!executor)
        return;
    pthread_mutex_lock(&executor->lock);
    atomic_store(&executor->closed, 1);
    executor->exiting = 1;
    pthread_mutex_unlock(&executor->lock);
    dt_wakeup_all(&executor->work);
    dt_wakeup_all(&executor->spawn);
    /* The spawner first: once it is gone no creation is under way, and
     * thread_ids[0..threads) are all the job threads there are.  They
     * leave once every running job ended, parked ones included, so the
     * parking thread goes last. */
    if (executor->has_spawner)
        pthread_join(executor->spawner, NULL);
    for (unsigned i = 0; i < executor->threads; i++)
        pthread_join(executor->thread_ids[i], NULL);
    if (executor->has_parker) {
        dt_parking_stop(executor->parking);
        pthread_join(executor->parker, NULL);
    }
    discard_queued_locked(executor);   /* alone now: no lock needed */
    dt_parking_free(executor->parking);
    dt_fiber_pool_free(executor->fibers);
    pthread_cond_destroy(&executor->idle);
    pthread_mutex_destroy(&executor->lock);
    free(executor->thread_ids);
    free(executor);
}
