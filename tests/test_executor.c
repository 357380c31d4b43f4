/*
 * test_executor.c - the executor with real jobs on real job threads: every
 * submitted job runs, the admission limit is exact (EAGAIN past max_jobs
 * plus queue), dt_executor_free() discards queued jobs without leaks (the
 * sanitizer build checks that), and the thread count stays within max_jobs
 * job threads plus the spawner, even though submitters never create one.
 * Jobs that sleep in detach_sleep() are parked, not threads: hundreds
 * sleep at once on a few threads, and a drain or a time limit wakes them.
 * Queued jobs start as running ones end, with no wake-up from the submit,
 * the watcher's deferred submits wake a thread only when flushed, and
 * busy CPUs do not make the spawner pile up threads.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <cmocka.h>

#include "base/log.h"
#include "base/timer_heap.h"
#include "io/watcher.h"
#include "sched/executor.h"
#include "sched/job.h"
#include "sched/registry.h"

/* What the handlers share with the test. */
struct observed {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int block;                 /* handlers wait until released */
    unsigned running, max_running, ran;
    int max_threads;           /* the most threads a handler saw */
    /* sleeping_handler: */
    unsigned sleep_ms;         /* detach_sleep()s this long */
    unsigned time_limit;       /* seconds, set before the sleep; 0 none */
    unsigned cancelled;        /* detach_sleep() returned -1 ECANCELED */
    unsigned timed_out;        /* ... with the TIMEOUT bit set */
    unsigned moved;            /* resumed on another thread than it left */
};

struct fixture {
    struct job_env core;
    struct registry registry;
    struct observed observed;
    struct job_kind route;
    int baseline_threads;      /* before the executor: main, watcher, ... */
};

/* Threads of this process, as the kernel counts them. */
static int process_threads(void)
{
    char line[256];
    int count = -1;
    FILE *status = fopen("/proc/self/status", "r");

    assert_non_null(status);
    while (fgets(line, sizeof(line), status))
        if (sscanf(line, "Threads: %d", &count) == 1)
            break;
    fclose(status);
    assert_true(count > 0);
    return count;
}

static void sleep_ms(long ms)
{
    struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&pause, NULL);
}

/* A joined thread may stay in the kernel's count a moment longer. */
static void wait_for_threads(int expected)
{
    for (int waited = 0; process_threads() != expected; waited += 2) {
        assert_true(waited < 5000);
        sleep_ms(2);
    }
}

static int initial_threads;   /* before any test: main, a log writer */

static void handler(detach_job *job, void *arg)
{
    struct observed *observed = arg;
    int threads = process_threads();

    (void)job;
    pthread_mutex_lock(&observed->lock);
    observed->running++;
    if (observed->running > observed->max_running)
        observed->max_running = observed->running;
    if (threads > observed->max_threads)
        observed->max_threads = threads;
    pthread_cond_broadcast(&observed->changed);
    while (observed->block)
        pthread_cond_wait(&observed->changed, &observed->lock);
    observed->running--;
    observed->ran++;
    pthread_cond_broadcast(&observed->changed);
    pthread_mutex_unlock(&observed->lock);
}

/* pthread_self() is a const function: read afresh in a call of its own,
 * never kept across the sleep by the compiler. */
__attribute__((noinline)) static pthread_t this_thread(void)
{
    return pthread_self();
}

/* A job that sleeps: it is running, yet holds no thread meanwhile. */
static void sleeping_handler(detach_job *job, void *arg)
{
    struct observed *observed = arg;
    pthread_t before = this_thread();
    int rc;

    pthread_mutex_lock(&observed->lock);
    observed->running++;
    if (observed->running > observed->max_running)
        observed->max_running = observed->running;
    pthread_cond_broadcast(&observed->changed);
    pthread_mutex_unlock(&observed->lock);
    if (observed->time_limit)
        detach_set_time_limit(job, observed->time_limit);
    rc = detach_sleep(job, observed->sleep_ms);
    pthread_mutex_lock(&observed->lock);
    if (rc < 0 && errno == ECANCELED)
        observed->cancelled++;
    if (detach_connection_status(job) & DETACH_TIMEOUT)
        observed->timed_out++;
    if (!pthread_equal(before, this_thread()))
        observed->moved++;
    observed->running--;
    observed->ran++;
    pthread_cond_broadcast(&observed->changed);
    pthread_mutex_unlock(&observed->lock);
}

static int setup(void **state)
{
    struct fixture *fixture = calloc(1, sizeof(*fixture));

    assert_non_null(fixture);
    dt_registry_init(&fixture->registry);
    fixture->core.registry = &fixture->registry;
    fixture->core.watcher = dt_watcher_new();
    assert_non_null(fixture->core.watcher);
    assert_int_equal(dt_watcher_start(fixture->core.watcher), 0);
    pthread_mutex_init(&fixture->observed.lock, NULL);
    pthread_cond_init(&fixture->observed.changed, NULL);
    fixture->route = (struct job_kind){ .path = "/t", .mode = DETACH_TRIGGER, .ignore_user_abort = 1,
                                     .handler = handler, .arg = &fixture->observed };
    fixture->baseline_threads = process_threads();
    *state = fixture;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fixture = *state;

    dt_watcher_free(fixture->core.watcher);
    dt_registry_destroy(&fixture->registry);
    wait_for_threads(initial_threads);   /* a clean baseline for the next */
    pthread_cond_destroy(&fixture->observed.changed);
    pthread_mutex_destroy(&fixture->observed.lock);
    free(fixture);
    return 0;
}

static detach_job *new_job(struct fixture *fixture)
{
    detach_job *job = dt_job_new(&fixture->core, &fixture->route, "" /* no params */, NULL, 0, NULL);

    assert_non_null(job);
    return job;
}

/* count jobs whose handlers block until release(), each taken. */
static void submit_blocked_jobs(struct fixture *fixture, struct executor *executor, int count)
{
    fixture->observed.block = 1;
    for (int i = 0; i < count; i++)
        assert_int_equal(dt_executor_submit(executor, dt_job_task(new_job(fixture))), 0);
}

/* Waits (up to 10 s) until *counter reaches at least target. */
static void wait_for(struct observed *observed, const unsigned *counter, unsigned target)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&observed->lock);
    while (*counter < target)
        assert_int_not_equal(pthread_cond_timedwait(&observed->changed, &observed->lock, &deadline),
                             ETIMEDOUT);
    pthread_mutex_unlock(&observed->lock);
}

static void release(struct observed *observed)
{
    pthread_mutex_lock(&observed->lock);
    observed->block = 0;
    pthread_cond_broadcast(&observed->changed);
    pthread_mutex_unlock(&observed->lock);
}

/* The executor's threads that are not job threads: the spawner and the
 * parking thread. */
enum { HELPER_THREADS = 2 };

/* Job threads beyond the baseline, less the helpers. */
static int job_threads(struct fixture *fixture)
{
    return process_threads() - fixture->baseline_threads - HELPER_THREADS;
}

/*
 * Settled: every executor thread is blocked in futex() (idle, or in a
 * blocked handler) and the spawner's wait has no timeout (it sleeps until
 * woken, not looking again every grace).  Read from /proc/self/task:
 * the name, and the syscall each thread is blocked in with its arguments
 * (a thread woken but not yet run reads "running").  In that state nothing
 * changes until the test acts, so what the test counts then is final;
 * this replaces pauses that gave a wrong extra thread "time to show".
 */
static int executor_threads_settled(void)
{
    char path[300], name[64], line[256];
    int settled = 1, spawners = 0;
    DIR *tasks = opendir("/proc/self/task");
    struct dirent *task;

    assert_non_null(tasks);
    while (settled && (task = readdir(tasks))) {
        unsigned long long timeout = 1;
        long number = -1;
        FILE *file;

        if (task->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", task->d_name);
        if (!(file = fopen(path, "r")))
            continue;   /* gone meanwhile */
        if (!fgets(name, sizeof(name), file))
            name[0] = '\0';
        fclose(file);
        if (strncmp(name, "detach-job", 10) != 0 && strcmp(name, "detach-spawner\n") != 0 &&
            strcmp(name, "detach-parking\n") != 0)
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/syscall", task->d_name);
        if (!(file = fopen(path, "r")))
            continue;
        if (!fgets(line, sizeof(line), file) ||
            sscanf(line, "%ld %*x %*x %*x %llx", &number, &timeout) < 1)
            number = -1;
        fclose(file);
        if (number != SYS_futex)
            settled = 0;
        if (strcmp(name, "detach-spawner\n") == 0) {
            spawners++;
            if (timeout != 0)
                settled = 0;
        }
    }
    closedir(tasks);
    return settled && spawners == 1;
}

/* Waits (5 s at most) until executor_threads_settled(). */
static void wait_until_settled(void)
{
    uint64_t deadline = dt_monotonic_ms() + 5000;

    while (!executor_threads_settled()) {
        assert_true(dt_monotonic_ms() < deadline);
        sched_yield();
    }
}

/* dt_executor_new() starts the spawner and a job thread before it returns,
 * and an idle executor keeps only a couple of threads, not max_jobs. */
static void new_starts_threads_and_idles_small(void **state)
{
    struct fixture *fixture = *state;
    struct executor *executor = dt_executor_new(64, 16, 0, 0);

    assert_non_null(executor);
    assert_true(job_threads(fixture) >= 1);
    wait_until_settled();                      /* the spawner asleep: no more */
    assert_true(job_threads(fixture) >= 1);
    assert_true(job_threads(fixture) <= 3);   /* the first one, and two spares */
    dt_executor_free(executor);
    wait_for_threads(fixture->baseline_threads);
}

/* Five jobs block their threads: the spawner tops the idle threads up to
 * the two spares and then sleeps with no timeout, rather than looking
 * again every grace while nothing changes. */
static void spawner_sleeps_once_spares_are_there(void **state)
{
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(64, 16, 0, 0);

    assert_non_null(executor);
    submit_blocked_jobs(fixture, executor, 5);
    wait_for(observed, &observed->running, 5);
    /* Fails (at 5 s) while the spawner only ever waits a grace at a time. */
    wait_until_settled();
    assert_int_equal(job_threads(fixture), 5 + 2);
    assert_true(executor_threads_settled());
    release(observed);
    wait_for(observed, &observed->ran, 5);
    dt_executor_free(executor);
    wait_for_threads(fixture->baseline_threads);
}

/* The watcher's submits wake no job thread: their jobs wait, though
 * threads are idle, until dt_executor_flush_wakeup(), the end of its epoll
 * round; then every job deferred since runs (the woken thread passes the
 * word on). */
static void deferred_submits_wait_for_the_flush(void **state)
{
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(64, 16, 0, 0);

    assert_non_null(executor);
    /* Every thread the idle executor keeps at its wait: a thread still
     * starting would look at the inbox on its own. */
    wait_until_settled();
    for (int i = 0; i < 8; i++)
        assert_int_equal(dt_executor_submit_deferred(executor, dt_job_task(new_job(fixture))), 0);
    /* Settled again: a thread a submit woke would be running (or would
     * have run the job) rather than back in its wait. */
    wait_until_settled();
    pthread_mutex_lock(&observed->lock);
    assert_int_equal(observed->ran, 0);
    pthread_mutex_unlock(&observed->lock);
    dt_executor_flush_wakeup(executor);
    dt_executor_flush_wakeup(executor);   /* nothing owed: a no-op */
    wait_for(observed, &observed->ran, 8);
    dt_executor_free(executor);
    wait_for_threads(fixture->baseline_threads);
}

/* (1) and (4): N jobs, M threads at most, every job runs. */
static void runs_every_job_within_max_jobs(void **state)
{
    enum { N = 300, M = 8 };
    struct fixture *fixture = *state;
    struct executor *executor = dt_executor_new(M, N, 0, 0);

    assert_non_null(executor);
    for (int i = 0; i < N; i++)
        assert_int_equal(dt_executor_submit(executor, dt_job_task(new_job(fixture))), 0);
    wait_for(&fixture->observed, &fixture->observed.ran, N);
    assert_int_equal(fixture->observed.ran, N);
    assert_true(fixture->observed.max_running <= M);
    assert_true(fixture->observed.max_threads - fixture->baseline_threads - HELPER_THREADS <= M);
    assert_true(job_threads(fixture) <= M);
    dt_executor_free(executor);
    wait_for_threads(fixture->baseline_threads);
}

/* (2) and (4): 4 running plus 2 queued are taken, the 7th is refused; the
 * spawner starts exactly max_jobs threads for them, no more. */
static void admission_limit_is_exact(void **state)
{
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(4, 2, 0, 0);
    detach_job *refused;

    assert_non_null(executor);
    submit_blocked_jobs(fixture, executor, 6);
    refused = new_job(fixture);
    errno = 0;
    assert_int_equal(dt_executor_submit(executor, dt_job_task(refused)), -1);
    assert_int_equal(errno, EAGAIN);
    assert_false(dt_executor_has_room(executor, 0));
    /* Only one job thread existed at first: four running means the
     * spawner started the others. */
    wait_for(observed, &observed->running, 4);
    wait_until_settled();   /* nothing more to come: count them */
    assert_int_equal(job_threads(fixture), 4);
    pthread_mutex_lock(&observed->lock);
    assert_int_equal(observed->running, 4);
    assert_int_equal(observed->ran, 0);
    pthread_mutex_unlock(&observed->lock);
    /* Still full while the two wait. */
    assert_int_equal(dt_executor_submit(executor, dt_job_task(refused)), -1);
    assert_int_equal(errno, EAGAIN);

    release(observed);
    wait_for(observed, &observed->ran, 6);
    /* Room again once they ended. */
    assert_int_equal(dt_executor_submit(executor, dt_job_task(refused)), 0);
    wait_for(observed, &observed->ran, 7);
    assert_true(observed->max_running <= 4);
    assert_true(observed->max_threads - fixture->baseline_threads - HELPER_THREADS <= 4);
    dt_executor_free(executor);
}

/* A job whose params and body come to `bytes` (the queue_bytes budget). */
static detach_job *new_job_of(struct fixture *fixture, size_t bytes)
{
    char *body = calloc(1, bytes);
    detach_job *job;

    assert_non_null(body);
    job = dt_job_new(&fixture->core, &fixture->route, "", body, bytes, NULL);
    free(body);
    assert_non_null(job);
    return job;
}

/* queue_bytes: with max_jobs 1 busy, queued jobs take the budget until
 * the next would pass it (ENOBUFS, and has_room agrees); an empty queue
 * takes one job larger than the whole budget; running jobs leave it.
 * Params count too: dt_job_new's params are "" here, one byte. */
static void queue_bytes_budget_is_exact(void **state)
{
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(1, 100, 0, 0);
    detach_job *over;

    assert_non_null(executor);
    dt_executor_set_queue_bytes(executor, 3000);
    submit_blocked_jobs(fixture, executor, 1);
    wait_for(observed, &observed->running, 1);   /* it left the queue */
    /* An empty queue takes a job over the whole budget... */
    assert_int_equal(dt_executor_submit(executor, dt_job_task(new_job_of(fixture, 5000))), 0);
    /* ...and then nothing more, not even a small one. */
    over = new_job_of(fixture, 10);
    errno = 0;
    assert_int_equal(dt_executor_submit(executor, dt_job_task(over)), -1);
    assert_int_equal(errno, ENOBUFS);
    release(observed);
    wait_for(observed, &observed->ran, 2);
    observed->block = 1;
    submit_blocked_jobs(fixture, executor, 1);
    wait_for(observed, &observed->running, 1);
    /* 999 + 1 bytes of params each: three fit 3000 exactly, a fourth not. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(dt_executor_submit(executor, dt_job_task(new_job_of(fixture, 999))), 0);
    assert_true(dt_executor_has_room(executor, 0));
    errno = 0;
    assert_false(dt_executor_has_room(executor, 1));
    assert_int_equal(errno, ENOBUFS);
    errno = 0;
    assert_int_equal(dt_executor_submit(executor, dt_job_task(over)), -1);
    assert_int_equal(errno, ENOBUFS);
    release(observed);
    wait_for(observed, &observed->ran, 6);
    /* Every queued job ran: the budget is all free again. */
    assert_true(dt_executor_has_room(executor, 3000));
    assert_int_equal(dt_executor_submit(executor, dt_job_task(over)), 0);
    wait_for(observed, &observed->ran, 7);
    dt_executor_free(executor);
}

/* dt_executor_limit_running(): fewer at once than max_jobs (descriptors
 * short), the others wait queued and all run. */
static void limit_running_holds_jobs_in_the_queue(void **state)
{
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(8, 10, 0, 0);
    detach_job *refused;

    assert_non_null(executor);
    dt_executor_limit_running(executor, 2);
    submit_blocked_jobs(fixture, executor, 6);
    wait_for(observed, &observed->running, 2);
    wait_until_settled();   /* a wrong third start would show as running */
    pthread_mutex_lock(&observed->lock);
    assert_int_equal(observed->running, 2);
    pthread_mutex_unlock(&observed->lock);
    /* Admission is still max_jobs + queue: 18 in all. */
    for (int i = 0; i < 12; i++)
        assert_int_equal(dt_executor_submit(executor, dt_job_task(new_job(fixture))), 0);
    refused = new_job(fixture);
    assert_int_equal(dt_executor_submit(executor, dt_job_task(refused)), -1);
    dt_job_free(refused);
    release(observed);
    wait_for(observed, &observed->ran, 18);
    assert_true(observed->max_running <= 2);
    dt_executor_free(executor);
}

static void *release_later(void *arg)
{
    sleep_ms(300);
    release(arg);
    return NULL;
}

/* (3): dt_executor_free() with jobs queued behind a running one: the running
 * one ends, the queued ones are discarded (freed: ASan checks for leaks). */
static void free_discards_queued_jobs(void **state)
{
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(1, 8, 0, 0);
    pthread_t releaser;

    assert_non_null(executor);
    submit_blocked_jobs(fixture, executor, 5);
    wait_for(observed, &observed->running, 1);
    assert_int_equal(job_threads(fixture), 1);   /* max_jobs 1: no spares */
    /* The running job ends only once dt_executor_free() has said "exit", so
     * its thread takes no queued job. */
    assert_int_equal(pthread_create(&releaser, NULL, release_later, observed), 0);
    dt_executor_free(executor);
    pthread_join(releaser, NULL);
    assert_int_equal(observed->ran, 1);
    wait_for_threads(fixture->baseline_threads);
}

/* Recovered jobs go past the limits, and the spawner starts threads for
 * them up to max_jobs. */
static void recovered_jobs_pass_the_limit(void **state)
{
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(2, 0, 0, 0);

    assert_non_null(executor);
    observed->block = 1;
    for (int i = 0; i < 5; i++)
        assert_int_equal(dt_executor_submit_recovered(executor, dt_job_task(new_job(fixture))), 0);
    wait_for(observed, &observed->running, 2);
    assert_int_equal(job_threads(fixture), 2);
    release(observed);
    wait_for(observed, &observed->ran, 5);
    dt_executor_free(executor);
}

/* A drain without a spool lets queued jobs run; afterwards submits fail. */
static void drain_runs_queued_jobs_then_refuses(void **state)
{
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(2, 10, 0, 0);
    detach_job *late;

    assert_non_null(executor);
    for (int i = 0; i < 10; i++)
        assert_int_equal(dt_executor_submit(executor, dt_job_task(new_job(fixture))), 0);
    dt_executor_drain(executor, 10, 0);
    assert_int_equal(observed->ran, 10);
    late = new_job(fixture);
    assert_int_equal(dt_executor_submit(executor, dt_job_task(late)), -1);
    assert_int_equal(errno, EAGAIN);
    dt_job_free(late);
    dt_executor_free(executor);
}

struct submitter {
    struct fixture *fixture;
    struct executor *executor;
    detach_job *jobs[64];
    int accepted;
};

static void *submit_all(void *arg)
{
    struct submitter *submitter = arg;

    for (int i = 0; i < 64; i++) {
        if (dt_executor_submit(submitter->executor, dt_job_task(submitter->jobs[i])) == 0) {
            submitter->accepted++;
            submitter->jobs[i] = NULL;
        }
    }
    return NULL;
}

enum { SUBMITTERS = 4 };

/* SUBMITTERS threads submit 64 fresh jobs each, all at once; returns how
 * many the executor took.  Those it refused stay in submitters[t].jobs. */
static int race_submits(struct fixture *fixture, struct executor *executor,
                        struct submitter submitters[SUBMITTERS])
{
    pthread_t threads[SUBMITTERS];
    int accepted = 0;

    for (int t = 0; t < SUBMITTERS; t++) {
        submitters[t] = (struct submitter){ .fixture = fixture, .executor = executor };
        for (int i = 0; i < 64; i++)
            submitters[t].jobs[i] = new_job(fixture);
    }
    for (int t = 0; t < SUBMITTERS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, submit_all, &submitters[t]), 0);
    for (int t = 0; t < SUBMITTERS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        accepted += submitters[t].accepted;
    }
    return accepted;
}

/* Submits take no lock, yet the limit stays exact when four threads race
 * for it: of 256 submits against max_jobs 4 + queue 12 (handlers
 * blocked), exactly 16 are taken, and all 16 run. */
static void racing_submits_keep_the_limit_exact(void **state)
{
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(4, 12, 0, 0);
    struct submitter submitters[SUBMITTERS];

    assert_non_null(executor);
    observed->block = 1;
    assert_int_equal(race_submits(fixture, executor, submitters), 16);
    assert_false(dt_executor_has_room(executor, 0));
    release(observed);
    wait_for(observed, &observed->ran, 16);
    for (int t = 0; t < SUBMITTERS; t++)
        for (int i = 0; i < 64; i++)
            dt_job_free(submitters[t].jobs[i]);
    dt_executor_free(executor);
    assert_int_equal(observed->ran, 16);
}

/* A submit that finds no room wakes no thread and leaves the job to the
 * thread that ends a running one.  Four submitters race short jobs through
 * max_jobs 2 while jobs end, round after round; a job stranded in the
 * queue with room free would keep the count short and time out. */
static void queued_jobs_start_as_running_ones_end(void **state)
{
    enum { ROUNDS = 20 };
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(2, SUBMITTERS * 64, 0, 0);
    struct submitter submitters[SUBMITTERS];
    unsigned expected = 0;

    assert_non_null(executor);
    for (int round = 0; round < ROUNDS; round++) {
        assert_int_equal(race_submits(fixture, executor, submitters), SUBMITTERS * 64);
        expected += SUBMITTERS * 64;
        wait_for(observed, &observed->ran, expected);
    }
    assert_true(observed->max_running <= 2);
    dt_executor_free(executor);
    assert_int_equal(observed->ran, expected);
}

static void counting_handler(detach_job *job, void *arg)
{
    struct observed *observed = arg;

    (void)job;
    pthread_mutex_lock(&observed->lock);
    observed->ran++;
    pthread_cond_broadcast(&observed->changed);
    pthread_mutex_unlock(&observed->lock);
}

static _Atomic int hogging;

static void *hog_cpu(void *arg)
{
    (void)arg;
    while (atomic_load(&hogging))
        ;
    return NULL;
}

/* While every CPU is busy, job threads at nice 19 wait for one far longer
 * than the spawner's grace.  A steady stream of short jobs then finds the
 * idle threads not yet running, and that is not a reason for more: over
 * 3 s of it the pool stays at its first few threads (before the check it
 * grew to 6-11 here). */
static void busy_cpus_do_not_pile_up_threads(void **state)
{
    enum { HOGS = 4 };
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(256, 100000, 19, 0);
    pthread_t hogs[HOGS];
    unsigned submitted = 0;
    uint64_t end;

    assert_non_null(executor);
    fixture->route.handler = counting_handler;
    atomic_store(&hogging, 1);
    for (int i = 0; i < HOGS; i++)
        assert_int_equal(pthread_create(&hogs[i], NULL, hog_cpu, NULL), 0);
    for (end = dt_monotonic_ms() + 3000; dt_monotonic_ms() < end; submitted++) {
        assert_int_equal(dt_executor_submit(executor, dt_job_task(new_job(fixture))), 0);
        sleep_ms(1);
    }
    atomic_store(&hogging, 0);
    for (int i = 0; i < HOGS; i++)
        assert_int_equal(pthread_join(hogs[i], NULL), 0);
    wait_for(observed, &observed->ran, submitted);
    assert_true(job_threads(fixture) <= 1 + 2 + 1);   /* first, spares, one in flight */
    dt_executor_free(executor);
    wait_for_threads(fixture->baseline_threads);
}

/* 200 jobs sleep at once on a handful of threads: a sleeping job is
 * parked, not a blocked thread, and every one wakes after its full sleep. */
static void sleeping_jobs_hold_no_thread(void **state)
{
    enum { N = 200 };
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(N, 0, 0, 0);
    uint64_t start = dt_monotonic_ms();

    assert_non_null(executor);
    fixture->route.handler = sleeping_handler;
    observed->sleep_ms = 400;
    for (int i = 0; i < N; i++)
        assert_int_equal(dt_executor_submit(executor, dt_job_task(new_job(fixture))), 0);
    wait_for(observed, &observed->running, N);
    /* All 200 running (asleep), on far fewer threads. */
    assert_true(job_threads(fixture) <= N / 4);
    wait_for(observed, &observed->ran, N);
    assert_true(dt_monotonic_ms() - start >= 400);
    assert_int_equal(observed->max_running, N);
    assert_int_equal(observed->cancelled, 0);
    dt_executor_free(executor);
    wait_for_threads(fixture->baseline_threads);
}

/* With sleep_on_thread, a sleeping job keeps its thread throughout: 20
 * jobs asleep at once are 20 blocked threads, and none changes thread. */
static void sleep_on_thread_keeps_the_thread(void **state)
{
    enum { N = 20 };
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(N, 0, 0, 1);

    assert_non_null(executor);
    fixture->route.handler = sleeping_handler;
    observed->sleep_ms = 300;
    for (int i = 0; i < N; i++)
        assert_int_equal(dt_executor_submit(executor, dt_job_task(new_job(fixture))), 0);
    wait_for(observed, &observed->running, N);
    assert_int_equal(job_threads(fixture), N);
    wait_for(observed, &observed->ran, N);
    assert_int_equal(observed->moved, 0);
    assert_int_equal(observed->cancelled, 0);
    dt_executor_free(executor);
    wait_for_threads(fixture->baseline_threads);
}

/* A drain that runs out of time stops parked jobs at once: each one's
 * 30-s sleep ends with ECANCELED, and the drain returns in well under it. */
static void drain_timeout_wakes_parked_jobs(void **state)
{
    enum { N = 50 };
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(N, 0, 0, 0);
    uint64_t start;

    assert_non_null(executor);
    fixture->route.handler = sleeping_handler;
    observed->sleep_ms = 30000;
    for (int i = 0; i < N; i++)
        assert_int_equal(dt_executor_submit(executor, dt_job_task(new_job(fixture))), 0);
    wait_for(observed, &observed->running, N);
    start = dt_monotonic_ms();
    dt_executor_drain(executor, 0, 0);
    assert_true(dt_monotonic_ms() - start < 5000);
    assert_int_equal(observed->ran, N);
    assert_int_equal(observed->cancelled, N);
    dt_executor_free(executor);
}

/* The watcher's time limit reaches a parked job: it resumes at once with
 * the TIMEOUT bit, not at the end of its sleep. */
static void time_limit_wakes_a_parked_job(void **state)
{
    struct fixture *fixture = *state;
    struct observed *observed = &fixture->observed;
    struct executor *executor = dt_executor_new(4, 0, 0, 0);
    uint64_t start = dt_monotonic_ms();

    assert_non_null(executor);
    fixture->route.handler = sleeping_handler;
    observed->sleep_ms = 30000;
    observed->time_limit = 1;
    assert_int_equal(dt_executor_submit(executor, dt_job_task(new_job(fixture))), 0);
    wait_for(observed, &observed->ran, 1);
    assert_true(dt_monotonic_ms() - start < 5000);
    assert_int_equal(observed->cancelled, 1);
    assert_int_equal(observed->timed_out, 1);
    dt_executor_free(executor);
}

/* ---- the executor knows no job: a bare task with its own ops ---- */

struct plain {
    struct executor_task task;
    pthread_mutex_t *lock;
    pthread_cond_t *changed;
    int started, released, discarded, stop;   /* counts, under *lock */
    int slept;                 /* dt_executor_sleep()'s result */
    uint64_t woke_after_ms;
};

static struct plain *plain_of(struct executor_task *task)
{
    return (struct plain *)((char *)task - offsetof(struct plain, task));
}

static void plain_note(struct plain *plain, int *field)
{
    pthread_mutex_lock(plain->lock);
    (*field)++;
    pthread_cond_broadcast(plain->changed);
    pthread_mutex_unlock(plain->lock);
}

/* Parks for up to 10 s: only a stop ends it sooner. */
static void plain_run(struct executor_task *task)
{
    struct plain *plain = plain_of(task);
    uint64_t start = dt_monotonic_ms();

    plain_note(plain, &plain->started);
    plain->slept = dt_executor_sleep(task, start + 10000);
    plain->woke_after_ms = dt_monotonic_ms() - start;
}

static void plain_release(struct executor_task *task)
{
    plain_note(plain_of(task), &plain_of(task)->released);
}

static void plain_discard(struct executor_task *task)
{
    plain_note(plain_of(task), &plain_of(task)->discarded);
}

static int plain_should_stop(struct executor_task *task)
{
    struct plain *plain = plain_of(task);
    int stop;

    pthread_mutex_lock(plain->lock);
    stop = plain->stop;
    pthread_mutex_unlock(plain->lock);
    return stop;
}

static void plain_request_stop(struct executor_task *task)
{
    plain_note(plain_of(task), &plain_of(task)->stop);
    dt_executor_wake(task);
}

static const char *plain_name(struct executor_task *task)
{
    return "plain";
}

static const struct executor_ops plain_ops = {
    .run = plain_run, .release = plain_release, .discard = plain_discard,
    .request_stop = plain_request_stop, .should_stop = plain_should_stop, .name = plain_name,
};

static void plain_wait(struct plain *plain, const int *field)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(plain->lock);
    while (!*field)
        if (pthread_cond_timedwait(plain->changed, plain->lock, &deadline) != 0)
            break;
    pthread_mutex_unlock(plain->lock);
    assert_true(*field);
}

/*
 * No job, no job memory, no watcher: one running task parks (and keeps
 * the one running place), two more queue behind it; a drain that keeps
 * queued work discards those two through their ops, then asks the running
 * one to stop, which wakes it from its park at once, and releases it.
 */
static void plain_tasks_run_park_stop_and_discard(void **state)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
    struct plain tasks[3];
    struct executor *executor = dt_executor_new(1, 8, 0, 0);

    assert_non_null(executor);
    for (int i = 0; i < 3; i++) {
        memset(&tasks[i], 0, sizeof(tasks[i]));
        tasks[i].lock = &lock;
        tasks[i].changed = &changed;
        dt_executor_task_init(&tasks[i].task, &plain_ops);
    }
    assert_int_equal(dt_executor_submit(executor, &tasks[0].task), 0);
    plain_wait(&tasks[0], &tasks[0].started);
    assert_int_equal(dt_executor_submit(executor, &tasks[1].task), 0);
    assert_int_equal(dt_executor_submit(executor, &tasks[2].task), 0);

    dt_executor_drain(executor, 0, 1);
    assert_int_equal(tasks[0].released, 1);
    assert_int_equal(tasks[0].slept, 0);                /* parked, then resumed */
    assert_true(tasks[0].woke_after_ms < 5000);         /* by the stop, not the deadline */
    for (int i = 1; i < 3; i++) {
        assert_int_equal(tasks[i].discarded, 1);
        assert_int_equal(tasks[i].started, 0);
        assert_int_equal(tasks[i].released, 0);
    }
    dt_executor_free(executor);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(new_starts_threads_and_idles_small, setup, teardown),
        cmocka_unit_test_setup_teardown(spawner_sleeps_once_spares_are_there, setup, teardown),
        cmocka_unit_test_setup_teardown(runs_every_job_within_max_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(deferred_submits_wait_for_the_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(admission_limit_is_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(free_discards_queued_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_bytes_budget_is_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(limit_running_holds_jobs_in_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(recovered_jobs_pass_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(drain_runs_queued_jobs_then_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(racing_submits_keep_the_limit_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(queued_jobs_start_as_running_ones_end, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_cpus_do_not_pile_up_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(sleeping_jobs_hold_no_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(sleep_on_thread_keeps_the_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(drain_timeout_wakes_parked_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(time_limit_wakes_a_parked_job, setup, teardown),
        cmocka_unit_test_setup_teardown(plain_tasks_run_park_stop_and_discard, setup, teardown),
    };

    dt_log_set_level(LOG_ERROR);   /* no "started"/"ended" line per job */
    /* A first line now, so a log writer thread (if log.c starts one on
     * first use) is part of every baseline, not counted as a job thread. */
    dt_log_line(LOG_ERROR, "test_executor", "note=\"dropped lines below are expected\"");
    initial_threads = process_threads();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
