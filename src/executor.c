/*
 * executor.c - job threads, the jobs' fibers and the admission queue.
 *
 * Every job runs on a fiber of its own (fiber.c), carried by a job thread.
 * A job that sleeps (detach_sleep) parks its fiber (parking.c) and its
 * thread goes on with the next runnable job; at its deadline, or when it
 * must stop, the fiber joins the ready list and any job thread resumes it.
 * So a job costs a thread only while it computes or blocks, and ten
 * thousand sleeping jobs are ten thousand stacks, not threads or wake-ups.
 *
 * Threads are started up to max_jobs and then kept: a trigger's job starts
 * with a condition-variable signal, not a thread creation.  At most
 * max_jobs jobs are running (started, not ended, parked or not); the count
 * of running plus queued jobs is the one admission number, checked under
 * the same lock that queues, so the 503 boundary is exact.
 *
 * Job threads are created by one spawner thread, never by a submitter.
 * executor_submit() runs on the acknowledgement path: a pthread_create()
 * there (tens of microseconds, more with thousands of threads, and under
 * the lock every other submitter needs) would make the ack wait for it.
 * So a submit only queues and signals; when more jobs are queued than
 * threads are ready for them, it also wakes the spawner, which creates
 * threads with the lock dropped.  The spawner keeps SPARE_THREADS idle
 * threads beyond the queue, so a burst finds threads ready.
 *
 * No job is stranded: executor_new() starts one job thread itself and
 * fails if it cannot, and job threads never exit before executor_free().
 * If a later creation fails, the spawner logs it and waits for the next
 * signal; queued jobs wait for a running thread to finish, and still run.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "executor.h"
#include "fiber.h"
#include "job.h"
#include "log.h"

/* Idle threads kept beyond the queue: a burst finds them ready, and a
 * quiet server keeps a couple, never more than max_jobs in all. */
#define SPARE_THREADS 2u

struct executor {
    int job_nice;              /* job threads (and their scripts) yield to acks */
    int sleep_on_thread;       /* detach_sleep() keeps the job's thread */
    pthread_mutex_t lock;
    pthread_cond_t work;       /* a job was queued, or stopping */
    pthread_cond_t idle;       /* a job ended */
    pthread_cond_t spawn;      /* the spawner may be short of threads, or stopping */
    unsigned max_jobs, queue_limit;
    detach_job **queue;        /* ring buffer of queue_limit + max_jobs */
    size_t queue_capacity, queue_head, queued;
    unsigned running;          /* started, not ended: on a thread, parked or ready */
    struct executor_task *running_jobs;   /* the running ones, for a drain */
    struct executor_task *ready_head, *ready_tail;   /* resumable fibers */
    size_t ready;
    /* threads: created, thread_ids[0..threads) joinable (a thread being
     * created is not counted yet, though it may already run a job).
     * starting: reserved and not yet at their work loop; they take a
     * queued job without a signal, so they count as ready. */
    unsigned threads, starting, waiting_threads;
    pthread_t *thread_ids;
    pthread_t spawner, parker;
    int has_spawner, has_parker;
    struct fiber_pool *fibers;
    struct parking *parking;
    int spawner_waiting;       /* in pthread_cond_wait(&spawn) */
    unsigned long taken;       /* jobs taken by job threads: their progress */
    /* A waiting job thread was signalled and has not yet looked at the
     * queue: a submit need not signal again, the woken thread passes the
     * word on (wake_next_locked).  So an ack costs at most one futex wake
     * per burst, however many jobs the burst queues. */
    int wake_pending;
    int closed;                /* no new jobs */
    int exiting;               /* threads leave */
};

static detach_job *queue_pop_locked(struct executor *executor)
{
    detach_job *job;

    if (!executor->queued)
        return NULL;
    job = executor->queue[executor->queue_head];
    executor->queue_head = (executor->queue_head + 1) % executor->queue_capacity;
    executor->queued--;
    return job;
}

/* Queued jobs that may start now: running ones leave room under max_jobs.
 * Exiting, none start (executor_free() discards them). */
static size_t startable_locked(const struct executor *executor)
{
    size_t room = executor->max_jobs - executor->running;

    if (executor->exiting)
        return 0;
    return executor->queued < room ? executor->queued : room;
}

/* What a job thread could take now: a resumed fiber or a job to start. */
static size_t runnable_locked(const struct executor *executor)
{
    return executor->ready + startable_locked(executor);
}

/*
 * Is a job thread missing?  Threads ready for work (waiting, or starting)
 * should cover the runnable jobs plus `spare` idle ones, within max_jobs.
 * Once closed, no spares: only jobs already queued still want threads.
 * threads is exact whenever the spawner looks (it creates one at a time).
 */
static int wants_thread_locked(const struct executor *executor, unsigned spare)
{
    if (executor->exiting || executor->threads >= executor->max_jobs)
        return 0;
    if (executor->closed)
        spare = 0;
    return (size_t)executor->waiting_threads + executor->starting < runnable_locked(executor) + spare;
}

/* Worth a signal only when the spawner waits: a busy one looks again
 * before it waits. */
static int spawner_should_wake_locked(const struct executor *executor, unsigned spare)
{
    return executor->spawner_waiting && wants_thread_locked(executor, spare);
}

/* Per thread on Linux, and inherited by the threads and scripts it
 * starts: job-side work, or a burst of process starts, never slows an
 * ack. */
static void lower_priority(int job_nice, const char *thread)
{
    if (job_nice && setpriority(PRIO_PROCESS, (id_t)gettid(), job_nice) < 0)
        log_line(LOG_ERROR, "job_thread", "thread=%s error=\"setpriority: %s\"", thread,
                 strerror(errno));
}

/* Library threads block every signal: signals belong to the application. */
static int create_thread(pthread_t *id, void *(*start_routine)(void *), void *arg)
{
    sigset_t all, previous;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    rc = pthread_create(id, NULL, start_routine, arg);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return rc;
}

/* A job is runnable and a thread waits, with no signal on its way: one is due. */
static int wake_next_locked(struct executor *executor)
{
    if (!runnable_locked(executor) || !executor->waiting_threads || executor->wake_pending)
        return 0;
    executor->wake_pending = 1;
    return 1;
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

/* Resumed fibers first: they hold a running slot and a stack already.
 * Then a queued job, if max_jobs leaves room for it. */
static struct executor_task *take_work_locked(struct executor *executor)
{
    struct executor_task *task = executor->ready_head;
    detach_job *job;

    if (task) {
        executor->ready_head = task->next_ready;
        if (!executor->ready_head)
            executor->ready_tail = NULL;
        executor->ready--;
        executor->taken++;
        return task;
    }
    if (!startable_locked(executor))
        return NULL;
    executor->taken++;
    job = queue_pop_locked(executor);
    task = job_task(job);
    executor->running++;
    running_add_locked(executor, task);
    return task;
}

static void job_fiber_main(void *job)
{
    job_run(job);
}

/*
 * Runs a job until it ends or parks.  A new job gets a fiber first; when
 * no stack can be mapped it runs on this thread instead, as a thread per
 * job (detach_sleep() then waits on the thread).  Returns 1 once ended.
 */
static int run_task(struct executor *executor, struct executor_task *task)
{
    if (!task->fiber) {
        task->fiber = fiber_new(executor->fibers, job_fiber_main, task->job);
        if (!task->fiber) {
            log_line(LOG_ERROR, "job_fiber", "job=%s error=\"%s\" note=\"runs on its thread\"",
                     detach_job_id(task->job), detach_last_error());
            job_run(task->job);
            return 1;
        }
    }
    return fiber_resume(task->fiber);
}

/* Job threads leave once told to and no job is left to finish: a parked
 * job still needs a thread when it resumes. */
static int may_leave_locked(const struct executor *executor)
{
    return executor->exiting && !executor->running;
}

static void *job_thread_main(void *arg)
{
    struct executor *executor = arg;

    pthread_setname_np(pthread_self(), "detach-job");   /* for top -H and perf */
    lower_priority(executor->job_nice, "job");
    pthread_mutex_lock(&executor->lock);
    executor->starting--;   /* from now on waiting or running */
    for (;;) {
        struct executor_task *task;
        int wake_spawner, wake_next;

        while (!(task = take_work_locked(executor)) && !may_leave_locked(executor)) {
            executor->waiting_threads++;
            pthread_cond_wait(&executor->work, &executor->lock);
            executor->waiting_threads--;
            executor->wake_pending = 0;   /* woken, or spuriously: we look now */
        }
        if (!task)
            break;
        /* More runnable: the next waiting thread is woken from here, on
         * the job side, rather than by the ack. */
        wake_next = wake_next_locked(executor);
        /* One idle thread fewer: the spares are topped up from here too. */
        wake_spawner = spawner_should_wake_locked(executor, SPARE_THREADS);
        pthread_mutex_unlock(&executor->lock);
        if (wake_next)
            pthread_cond_signal(&executor->work);
        if (wake_spawner)
            pthread_cond_signal(&executor->spawn);

        if (!run_task(executor, task)) {
            pthread_mutex_lock(&executor->lock);
            continue;   /* parked: the parking thread hands it back */
        }
        fiber_release(executor->fibers, task->fiber);
        task->fiber = NULL;
        pthread_mutex_lock(&executor->lock);
        /* Freed under the lock, so executor_drain() never asks a freed
         * job to stop; one lock hold per job. */
        running_remove_locked(executor, task);
        executor->running--;
        job_free(task->job);
        pthread_cond_broadcast(&executor->idle);
        if (may_leave_locked(executor))
            pthread_cond_broadcast(&executor->work);
    }
    pthread_mutex_unlock(&executor->lock);
    return NULL;
}

/* From the parking thread: a fiber's deadline passed or its stop came. */
static void resume_parked(struct parked *parked, void *arg)
{
    struct executor *executor = arg;
    struct executor_task *task =
        (struct executor_task *)((char *)parked - offsetof(struct executor_task, parked));
    int wake_thread, wake_spawner;

    pthread_mutex_lock(&executor->lock);
    task->next_ready = NULL;
    if (executor->ready_tail)
        executor->ready_tail->next_ready = task;
    else
        executor->ready_head = task;
    executor->ready_tail = task;
    executor->ready++;
    wake_thread = wake_next_locked(executor);
    wake_spawner = spawner_should_wake_locked(executor, 0);
    pthread_mutex_unlock(&executor->lock);
    if (wake_thread)
        pthread_cond_signal(&executor->work);
    if (wake_spawner)
        pthread_cond_signal(&executor->spawn);
}

static void *parker_main(void *arg)
{
    struct executor *executor = arg;

    pthread_setname_np(pthread_self(), "detach-parking");   /* for top -H and perf */
    lower_priority(executor->job_nice, "parking");
    parking_run(executor->parking);
    return NULL;
}

static int must_stop(void *job)
{
    return detach_should_stop(job);
}

int executor_sleep(detach_job *job, uint64_t deadline_ms)
{
    struct executor_task *task = job_task(job);

    int rc;

    if (!task->executor || task->executor->sleep_on_thread || !task->fiber ||
        fiber_current() != task->fiber)
        return -1;
    rc = parking_park(task->executor->parking, &task->parked, deadline_ms, must_stop, job);
    if (rc < 0)
        log_line(LOG_ERROR, "parking", "job=%s error=\"%s\" note=\"sleeps on its thread\"",
                 detach_job_id(job), detach_last_error());
    return rc;
}

void executor_wake(detach_job *job)
{
    struct executor_task *task = job_task(job);

    if (task->executor)
        parking_wake(task->executor->parking, &task->parked);
}

void executor_task_init(struct executor_task *task, detach_job *job)
{
    memset(task, 0, sizeof(*task));
    task->job = job;
    parked_init(&task->parked);
}

/*
 * Starts job thread number `threads`, with the lock dropped around
 * pthread_create() so no submitter or job thread waits on a creation.
 * Only one thread at a time calls this (executor_new() before the spawner
 * exists, then the spawner), so the number cannot change meanwhile.  The
 * thread is counted in `threads` only once it exists, so executor_free()
 * joins only real threads; until it reaches its loop it counts in
 * `starting`, so the spawner does not start a second one for the same
 * job.  Returns 0 or pthread_create()'s error, logged.
 */
static int start_job_thread_locked(struct executor *executor)
{
    unsigned index = executor->threads;
    pthread_t id;
    int rc;

    executor->starting++;
    pthread_mutex_unlock(&executor->lock);
    rc = create_thread(&id, job_thread_main, executor);
    if (rc != 0)
        log_line(LOG_ERROR, "job_thread", "error=\"pthread_create: %s\"", strerror(rc));
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
 * Jobs run on fibers, so a backlog of runnable jobs (a burst of acks, the
 * sleeps of one millisecond ending) is soon worked off by the threads
 * there are; a new thread (100-190 us of CPU on a small VM) pays only
 * when they are blocked (in a script's wait, in a handler's own I/O).
 * Blocked means: a whole grace passed and no thread took a job.
 */
#define SPAWN_GRACE_NS 1000000L

static int threads_blocked_locked(struct executor *executor)
{
    unsigned long taken = executor->taken;
    struct timespec deadline;

    /* The first few threads come at once: a quiet server keeps them. */
    if (executor->threads < 1 + SPARE_THREADS)
        return 1;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += SPAWN_GRACE_NS;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    /* Not marked waiting: submits need not signal; only a stop does. */
    pthread_cond_timedwait(&executor->spawn, &executor->lock, &deadline);
    return executor->taken == taken && !executor->exiting;
}

/*
 * The spawner: creates job threads while some are missing and the others
 * are blocked, then waits to be signalled.  After a failed creation it
 * waits too, rather than retry at once: the next submit or job start that
 * finds a thread missing signals it again, and meanwhile queued jobs wait
 * for a running thread.
 */
static void *spawner_main(void *arg)
{
    struct executor *executor = arg;

    pthread_setname_np(pthread_self(), "detach-spawner");   /* for top -H and perf */
    /* Its work is job-side, and the threads it creates inherit this. */
    lower_priority(executor->job_nice, "spawner");
    pthread_mutex_lock(&executor->lock);
    while (!executor->exiting) {
        if (wants_thread_locked(executor, SPARE_THREADS)) {
            if (!threads_blocked_locked(executor))
                continue;   /* they made progress: look again */
            if (wants_thread_locked(executor, SPARE_THREADS) &&
                start_job_thread_locked(executor) == 0)
                continue;
        }
        executor->spawner_waiting = 1;
        pthread_cond_wait(&executor->spawn, &executor->lock);
        executor->spawner_waiting = 0;
    }
    pthread_mutex_unlock(&executor->lock);
    return NULL;
}

#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH 78
#define PR_FUTEX_HASH_SET_SLOTS 1
#define PR_FUTEX_HASH_GET_SLOTS 2
#endif
#define MAX_FUTEX_HASH_SLOTS (1u << 16)

/*
 * Every job thread that waits (for work, in detach_sleep(), on a lock)
 * waits on a futex, and Linux 6.16 and later hash a process's futexes in a
 * private table sized for a handful of threads: 16 slots on 2 CPUs.  With
 * thousands of jobs waiting, every futex wake then walks a chain of
 * hundreds, and the acks (which wake job threads) slow to a crawl.  So
 * the table is sized for max_jobs, a slot or two per job thread.  Older
 * kernels have one big shared table and refuse the call: nothing to do.
 */
static void size_futex_hash(unsigned max_jobs)
{
    unsigned slots = 16;
    int current = prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0);

    while (slots < max_jobs && slots < MAX_FUTEX_HASH_SLOTS)
        slots *= 2;
    if (current < 0 || (unsigned)current >= slots)
        return;   /* an old kernel, or large enough already */
    if (prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, slots, 0, 0) < 0)
        log_line(LOG_DEBUG, "futex_hash", "slots=%u error=\"%s\"", slots, strerror(errno));
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
        rc = create_thread(&executor->spawner, spawner_main, executor);
        executor->has_spawner = rc == 0;
    }
    if (rc == 0) {
        rc = create_thread(&executor->parker, parker_main, executor);
        executor->has_parker = rc == 0;
    }
    if (rc != 0) {
        errno = rc;
        return error_set("executor: pthread_create: %s", strerror(rc));
    }
    return 0;
}

struct executor *executor_new(unsigned max_jobs, unsigned queue_limit, int job_nice,
                              int sleep_on_thread)
{
    struct executor *executor;

    if (!max_jobs) {
        errno = EINVAL;
        error_set("executor: max_jobs must be at least 1");
        return NULL;
    }
    executor = calloc(1, sizeof(*executor));
    if (!executor)
        goto out_of_memory;
    executor->job_nice = job_nice;
    executor->sleep_on_thread = sleep_on_thread;
    executor->max_jobs = max_jobs;
    executor->queue_limit = queue_limit;
    executor->queue_capacity = (size_t)queue_limit + max_jobs;
    executor->queue = calloc(executor->queue_capacity, sizeof(*executor->queue));
    executor->thread_ids = calloc(max_jobs, sizeof(*executor->thread_ids));
    if (!executor->queue || !executor->thread_ids)
        goto out_of_memory;
    executor->fibers = fiber_pool_new(0);
    executor->parking = parking_new(resume_parked, executor);
    if (!executor->fibers || !executor->parking)
        goto fail;
    size_futex_hash(max_jobs);
    pthread_mutex_init(&executor->lock, NULL);
    pthread_cond_init(&executor->work, NULL);
    pthread_cond_init(&executor->idle, NULL);
    pthread_cond_init(&executor->spawn, NULL);
    if (start_threads(executor) < 0) {
        int saved = errno;

        executor_free(executor);
        errno = saved;
        return NULL;
    }
    return executor;
out_of_memory:
    errno = ENOMEM;
    error_set("executor: out of memory");
fail:
    if (executor) {
        parking_free(executor->parking);
        fiber_pool_free(executor->fibers);
        free(executor->queue);
        free(executor->thread_ids);
        free(executor);
    }
    return NULL;
}

static int is_full_locked(struct executor *executor)
{
    return executor->running + executor->queued >= (size_t)executor->max_jobs + executor->queue_limit;
}

int executor_has_room(struct executor *executor)
{
    int room;

    pthread_mutex_lock(&executor->lock);
    room = !executor->closed && !is_full_locked(executor);
    pthread_mutex_unlock(&executor->lock);
    return room;
}

/* Doubles the ring, unrolling it so the head is at 0. */
static int grow_queue_locked(struct executor *executor)
{
    size_t capacity = executor->queue_capacity * 2;
    detach_job **queue = calloc(capacity, sizeof(*queue));

    if (!queue)
        return -1;
    for (size_t i = 0; i < executor->queued; i++)
        queue[i] = executor->queue[(executor->queue_head + i) % executor->queue_capacity];
    free(executor->queue);
    executor->queue = queue;
    executor->queue_capacity = capacity;
    executor->queue_head = 0;
    return 0;
}

static int enqueue_locked(struct executor *executor, detach_job *job, int forced)
{
    size_t tail;

    job_task(job)->executor = executor;
    if (executor->closed || (!forced && is_full_locked(executor))) {
        errno = EAGAIN;
        return -1;
    }
    if (executor->queued == executor->queue_capacity && grow_queue_locked(executor) < 0) {
        errno = ENOMEM;
        return -1;
    }
    tail = (executor->queue_head + executor->queued) % executor->queue_capacity;
    executor->queue[tail] = job;
    executor->queued++;
    return 0;
}

/*
 * Queues and signals, nothing more: this is the ack's path.  The signals
 * go after the unlock: a thread woken under the lock would only block on
 * it.  No wake-up is lost: job threads and the spawner check under the
 * lock before they wait.
 */
static int submit(struct executor *executor, detach_job *job, int forced)
{
    int rc, wake_spawner = 0, wake_thread = 0;

    pthread_mutex_lock(&executor->lock);
    rc = enqueue_locked(executor, job, forced);
    if (rc == 0) {
        /* No thread waiting: a running one looks at the queue when its
         * job ends, a starting one before it waits. */
        wake_thread = wake_next_locked(executor);
        /* More jobs queued than threads ready for them: a thread is missing. */
        wake_spawner = spawner_should_wake_locked(executor, 0);
    }
    pthread_mutex_unlock(&executor->lock);
    if (wake_thread)
        pthread_cond_signal(&executor->work);
    if (wake_spawner)
        pthread_cond_signal(&executor->spawn);
    return rc;
}

int executor_submit(struct executor *executor, detach_job *job)
{
    return submit(executor, job, 0);
}

int executor_submit_recovered(struct executor *executor, detach_job *job)
{
    return submit(executor, job, 1);
}

static int wait_until_locked(struct executor *executor, const struct timespec *deadline)
{
    while (executor->running || executor->queued) {
        if (pthread_cond_timedwait(&executor->idle, &executor->lock, deadline) == ETIMEDOUT)
            return -1;
    }
    return 0;
}

void executor_drain(struct executor *executor, unsigned timeout_seconds, int keep_queued)
{
    struct timespec deadline;
    detach_job *job;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_seconds;
    pthread_mutex_lock(&executor->lock);
    executor->closed = 1;
    if (keep_queued)
        while ((job = queue_pop_locked(executor)))
            job_discard(job);
    if (wait_until_locked(executor, &deadline) < 0) {
        log_line(LOG_INFO, "drain_timeout", "running=%u queued=%zu", executor->running,
                 executor->queued);
        while ((job = queue_pop_locked(executor)))
            job_discard(job);
        /* Parked ones too: the stop resumes them. */
        for (struct executor_task *task = executor->running_jobs; task; task = task->next_running)
            job_request_stop(task->job);
        while (executor->running)
            pthread_cond_wait(&executor->idle, &executor->lock);
    }
    pthread_mutex_unlock(&executor->lock);
}

void executor_free(struct executor *executor)
{
    detach_job *job;

    if (!executor)
        return;
    pthread_mutex_lock(&executor->lock);
    executor->closed = 1;
    executor->exiting = 1;
    pthread_cond_broadcast(&executor->work);
    pthread_cond_signal(&executor->spawn);
    pthread_mutex_unlock(&executor->lock);
    /* The spawner first: once it is gone no creation is under way, and
     * thread_ids[0..threads) are all the job threads there are.  They
     * leave once every running job ended, parked ones included, so the
     * parking thread goes last. */
    if (executor->has_spawner)
        pthread_join(executor->spawner, NULL);
    for (unsigned i = 0; i < executor->threads; i++)
        pthread_join(executor->thread_ids[i], NULL);
    if (executor->has_parker) {
        parking_stop(executor->parking);
        pthread_join(executor->parker, NULL);
    }
    while ((job = queue_pop_locked(executor)))
        job_discard(job);
    parking_free(executor->parking);
    fiber_pool_free(executor->fibers);
    pthread_cond_destroy(&executor->spawn);
    pthread_cond_destroy(&executor->idle);
    pthread_cond_destroy(&executor->work);
    pthread_mutex_destroy(&executor->lock);
    free(executor->queue);
    free(executor->thread_ids);
    free(executor);
}
