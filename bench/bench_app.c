/*
 * bench_app.c - the libdetach application bench/run measures.
 *
 *     bench_app SOCKET_PATH [MAX_JOBS [QUEUE [WORKERS [NAP_MS [SPOOL_DIR]]]]]
 *
 * Serves on unix:SOCKET_PATH (mode 0666, so nginx's workers reach it),
 * with a status page at /detach-status, and a spool in SPOOL_DIR when
 * given ("-": none).  Routes, all triggers:
 *   /noop     returns at once: the bare cost of an acknowledgement.
 *   /sleep2   a 2-second job, slept with detach_sleep(): one wait that a
 *             stop ends early, no wake-ups in between.  With NAP_MS > 0
 *             (or ?nap=MS) it polls instead: naps of that length,
 *             checking detach_should_stop() between them -- the way a job
 *             had to wait before detach_sleep(), for comparison.
 *   /sleep    the same for ?s=SECONDS (1..600, default 2).
 * Every job is logged by libdetach (event=started waited_ms=...,
 * event=ended) on stderr, which bench/run counts.
 *
 * Build (bench/run does it; nothing is added to the top CMakeLists):
 *   cc -O2 -g bench/bench_app.c -Iinclude build-bench/libdetach.a \
 *      $(pkg-config --libs fcgi) -lpthread -o bench_app
 *
 * BENCH_JOB_NICE=N in the environment sets job_nice (default 10), for
 * comparing job thread priorities.
 *
 * SIGTERM or SIGINT: detach_server_stop(); exit 0 after the drain.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <detach.h>

static detach_server *server;
static unsigned default_nap_ms = 0;   /* 0: detach_sleep() */

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    detach_server_stop(server);
}

static void noop(detach_job *job, void *arg)
{
    (void)job;
    (void)arg;
}

/* The number after "key=" in the query string, or fallback. */
static long query_number(detach_job *job, const char *key, long fallback)
{
    const char *query = detach_param(job, "QUERY_STRING");
    size_t length = strlen(key);

    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
        if (strncmp(p, key, length) == 0 && p[length] == '=')
            return strtol(p + length + 1, NULL, 10);
    return fallback;
}

/* Sleeps in naps of nap_ms, so a stop (drain timeout, time limit) is seen
 * within one nap and the thread never sits in one long nap.  Bounded: at
 * most milliseconds / nap_ms + 2 naps. */
static void sleep_job(detach_job *job, long milliseconds)
{
    long nap_ms = query_number(job, "nap", (long)default_nap_ms);
    struct timespec start, now;

    if (nap_ms < 0 || nap_ms > 10000)
        nap_ms = default_nap_ms;
    if (nap_ms == 0) {
        detach_sleep(job, (unsigned)milliseconds);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long naps = 0; naps < milliseconds / nap_ms + 2 && !detach_should_stop(job); naps++) {
        struct timespec nap;
        long left;

        clock_gettime(CLOCK_MONOTONIC, &now);
        left = milliseconds - ((now.tv_sec - start.tv_sec) * 1000 +
                               (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0)
            break;
        if (left > nap_ms)
            left = nap_ms;
        nap.tv_sec = left / 1000;
        nap.tv_nsec = (left % 1000) * 1000000L;
        while (nanosleep(&nap, &nap) < 0 && errno == EINTR)
            ;
    }
}

static void sleep2(detach_job *job, void *arg)
{
    (void)arg;
    sleep_job(job, 2000);
}

static void sleep_n(detach_job *job, void *arg)
{
    long seconds = query_number(job, "s", 2);

    (void)arg;
    if (seconds < 1 || seconds > 600)
        seconds = 2;
    sleep_job(job, seconds * 1000);
}

static unsigned argument(int argc, char **argv, int index, unsigned fallback)
{
    return argc > index ? (unsigned)strtoul(argv[index], NULL, 10) : fallback;
}

int main(int argc, char **argv)
{
    detach_options options;
    char listen[4200];
    struct sigaction stop = { .sa_handler = on_stop_signal };
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_app SOCKET_PATH [MAX_JOBS [QUEUE [WORKERS [NAP_MS [SPOOL_DIR]]]]]\n");
        return 2;
    }
    detach_options_init(&options);
    options.max_jobs = argument(argc, argv, 2, 20000);
    options.queue = argument(argc, argv, 3, 200000);
    options.workers = argument(argc, argv, 4, options.workers);
    default_nap_ms = argument(argc, argv, 5, default_nap_ms);
    if (default_nap_ms > 10000)
        default_nap_ms = 100;
    if (argc > 6 && strcmp(argv[6], "-") != 0)
        options.spool = argv[6];
    if (getenv("BENCH_JOB_NICE"))
        options.job_nice = atoi(getenv("BENCH_JOB_NICE"));
    options.socket_mode = 0666;
    options.status_path = "/detach-status";
    snprintf(listen, sizeof(listen), "unix:%s", argv[1]);
    server = detach_server_new(listen, &options);
    if (!server) {
        fprintf(stderr, "bench_app: %s\n", detach_last_error());
        return 1;
    }
    if (detach_route(server, "/noop", DETACH_TRIGGER, noop, NULL) < 0 ||
        detach_route(server, "/sleep2", DETACH_TRIGGER, sleep2, NULL) < 0 ||
        detach_route(server, "/sleep", DETACH_TRIGGER, sleep_n, NULL) < 0) {
        fprintf(stderr, "bench_app: %s\n", detach_last_error());
        return 1;
    }
    sigemptyset(&stop.sa_mask);
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = detach_serve(server);
    if (rc < 0)
        fprintf(stderr, "bench_app: %s\n", detach_last_error());
    detach_server_free(server);
    return rc < 0 ? 1 : 0;
}
