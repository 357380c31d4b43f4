/*
 * job_app.c - a libdetach application for the library's integration tests
 * (test_library.py).
 *
 *     job_app SOCKET_PATH MARKER_DIR
 *
 * Serves on unix:SOCKET_PATH.  Each handler reports what it saw in small
 * "marker" files, MARKER_DIR/<tag>.<name>, written whole (a temp file then
 * rename), so the test never reads half a marker.  <tag> is the "tag"
 * query parameter (the job id without one).  Times are CLOCK_MONOTONIC
 * seconds, the clock of Python's time.monotonic(), so the test can compare
 * them with its own.
 *
 * Routes:
 *   /trigger          trigger; shutdown callbacks "first", "second", and
 *                     "third" (registered by "first" while shutting down)
 *                     append to <tag>.order; "third" then writes <tag>.done.
 *                     ?timeout=N: set_time_limit(N) and work until stopped.
 *   /attached-wait    attached, writes nothing; loops until
 *                     detach_should_stop() (or 30 s): <tag>.started,
 *                     <tag>.stopped.
 *   /attached-ignore  attached; ignore_user_abort(1), runs 1 s whatever
 *                     happens: <tag>.started, <tag>.ran, <tag>.final.
 *   /finish-early     attached; writes "early", detach_finish_request(),
 *                     works 1 s more: <tag>.late.
 *   /time-limit       trigger; set_time_limit(1), 0.6 s later again; when
 *                     TIMEOUT is first seen: <tag>.timeout.
 *   /stream           attached; a CGI head by detach_header(), then three
 *                     lines 0.3 s apart: <tag>.stream.
 *
 * SIGTERM or SIGINT stops the server cleanly (detach_server_stop from the
 * handler); the exit status is then 0.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <detach.h>

#define TAG_SIZE 64

static detach_server *server;
static const char *marker_dir;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    detach_server_stop(server);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_seconds(double seconds)
{
    struct timespec ts;

    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The value of key in QUERY_STRING, copied into out; 0 when absent. */
static int query_value(detach_job *job, const char *key, char *out, size_t size)
{
    const char *query = detach_param(job, "QUERY_STRING");
    size_t key_length = strlen(key);

    while (query && *query) {
        size_t length = strcspn(query, "&");
        if (length > key_length && strncmp(query, key, key_length) == 0 &&
            query[key_length] == '=') {
            size_t value_length = length - key_length - 1;
            if (value_length >= size)
                value_length = size - 1;
            memcpy(out, query + key_length + 1, value_length);
            out[value_length] = '\0';
            return 1;
        }
        query += length;
        if (*query == '&')
            query++;
    }
    return 0;
}

/* A file-name-safe tag: the "tag" parameter, else the job id. */
static void job_tag(detach_job *job, char *tag, size_t size)
{
    if (!query_value(job, "tag", tag, size) || !*tag)
        snprintf(tag, size, "%s", detach_job_id(job));
    for (char *c = tag; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
            *c = '_';
}

/* Writes MARKER_DIR/<tag>.<name> whole: temp file, then rename. */
static void write_marker(const char *tag, const char *name, const char *format, ...)
{
    char path[4096], temp[4200], text[2048];
    va_list args;
    FILE *file;

    va_start(args, format);
    vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    snprintf(path, sizeof(path), "%s/%s.%s", marker_dir, tag, name);
    snprintf(temp, sizeof(temp), "%s/.%s.%s.tmp", marker_dir, tag, name);
    file = fopen(temp, "w");
    if (!file) {
        fprintf(stderr, "job_app: %s: %s\n", temp, strerror(errno));
        return;
    }
    fputs(text, file);
    if (fclose(file) != 0 || rename(temp, path) != 0)
        fprintf(stderr, "job_app: %s: %s\n", path, strerror(errno));
}

/* Appends one line to MARKER_DIR/<tag>.<name>. */
static void append_line(const char *tag, const char *name, const char *format, ...)
{
    char path[4096], text[512];
    va_list args;
    int fd, n;

    va_start(args, format);
    n = vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    snprintf(path, sizeof(path), "%s/%s.%s", marker_dir, tag, name);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, (size_t)n) != n)
        fprintf(stderr, "job_app: %s: %s\n", path, strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* ---- /trigger: shutdown callbacks ---- */

struct trigger_state {
    char tag[TAG_SIZE];
};

static void shutdown_third(detach_job *job, void *arg)
{
    struct trigger_state *state = arg;

    append_line(state->tag, "order", "third status=%d\n", detach_connection_status(job));
    write_marker(state->tag, "done", "status=%d\n", detach_connection_status(job));
    free(state);
}

static void shutdown_first(detach_job *job, void *arg)
{
    struct trigger_state *state = arg;
    int rc = detach_register_shutdown(job, shutdown_third, state);

    append_line(state->tag, "order", "first status=%d register=%d\n",
                detach_connection_status(job), rc);
}

static void shutdown_second(detach_job *job, void *arg)
{
    struct trigger_state *state = arg;

    append_line(state->tag, "order", "second status=%d\n", detach_connection_status(job));
}

static void trigger_handler(detach_job *job, void *arg)
{
    struct trigger_state *state = calloc(1, sizeof(*state));
    char value[32];
    int ignore, stopped = 0;
    double start = now();

    (void)arg;
    if (!state)
        return;
    job_tag(job, state->tag, sizeof(state->tag));
    ignore = detach_ignore_user_abort(job, -1);
    if (detach_register_shutdown(job, shutdown_first, state) < 0 ||
        detach_register_shutdown(job, shutdown_second, state) < 0)
        fprintf(stderr, "job_app: register: %s\n", detach_last_error());
    if (query_value(job, "timeout", value, sizeof(value))) {
        detach_set_time_limit(job, (unsigned)atoi(value));
        while (!(stopped = detach_should_stop(job)) && now() - start < 10)
            sleep_seconds(0.005);
    }
    write_marker(state->tag, "ran", "ignore_user_abort=%d\nstatus=%d\nshould_stop=%d\n"
                 "mode=%d\nroute=%s\n", ignore, detach_connection_status(job), stopped,
                 (int)detach_job_mode(job), detach_job_route(job));
}

/* ---- /attached-wait: the peer leaving is seen while nothing is written ---- */

static void attached_wait_handler(detach_job *job, void *arg)
{
    char tag[TAG_SIZE];
    double start = now(), seen;
    int stopped;

    (void)arg;
    job_tag(job, tag, sizeof(tag));
    write_marker(tag, "started", "start=%.6f\n", start);
    while (!(stopped = detach_should_stop(job)) && now() - start < 30)
        sleep_seconds(0.001);
    seen = now();
    write_marker(tag, "stopped", "start=%.6f\nseen=%.6f\nstatus=%d\nshould_stop=%d\n", start,
                 seen, detach_connection_status(job), stopped);
}

/* ---- /attached-ignore ---- */

struct ignore_state {
    char tag[TAG_SIZE];
};

static void ignore_final(detach_job *job, void *arg)
{
    struct ignore_state *state = arg;

    write_marker(state->tag, "final", "status=%d\n", detach_connection_status(job));
    free(state);
}

static void attached_ignore_handler(detach_job *job, void *arg)
{
    struct ignore_state *state = calloc(1, sizeof(*state));
    int previous, queried, stop_seen = 0, aborted_seen = 0, write_rc;
    double start = now();

    (void)arg;
    if (!state)
        return;
    job_tag(job, state->tag, sizeof(state->tag));
    previous = detach_ignore_user_abort(job, 1);
    queried = detach_ignore_user_abort(job, -1);
    detach_register_shutdown(job, ignore_final, state);
    write_marker(state->tag, "started", "start=%.6f\n", start);
    while (now() - start < 1.0) {
        if (detach_should_stop(job))
            stop_seen = 1;
        if (detach_connection_aborted(job))
            aborted_seen = 1;
        sleep_seconds(0.005);
    }
    /* The peer is gone by now (the test closes at once): writing fails. */
    write_rc = detach_write(job, "late\n", 5);
    write_marker(state->tag, "ran",
                 "previous=%d\nqueried=%d\nshould_stop_seen=%d\naborted_seen=%d\n"
                 "elapsed=%.6f\nwrite_rc=%d\n", previous, queried, stop_seen, aborted_seen,
                 now() - start, write_rc);
}

/* ---- /finish-early ---- */

static void finish_early_handler(detach_job *job, void *arg)
{
    char tag[TAG_SIZE];
    int write_rc, finish_rc, after_rc, after_errno;
    double finished, late;

    (void)arg;
    job_tag(job, tag, sizeof(tag));
    write_rc = detach_write(job, "early", 5);
    finish_rc = detach_finish_request(job);
    finished = now();
    after_rc = detach_write(job, "x", 1);
    after_errno = errno;
    sleep_seconds(1.0);
    late = now();
    write_marker(tag, "late", "write_rc=%d\nfinish_rc=%d\nafter_rc=%d\nafter_enotconn=%d\n"
                 "finished=%.6f\nlate=%.6f\nstatus=%d\n", write_rc, finish_rc, after_rc,
                 after_errno == ENOTCONN, finished, late, detach_connection_status(job));
}

/* ---- /time-limit: setting it again restarts the clock ---- */

static void time_limit_handler(detach_job *job, void *arg)
{
    char tag[TAG_SIZE];
    double start = now(), restarted, seen;
    int status = 0;

    (void)arg;
    job_tag(job, tag, sizeof(tag));
    detach_set_time_limit(job, 1);
    sleep_seconds(0.6);
    status = detach_connection_status(job);   /* must still be 0 */
    restarted = now();
    detach_set_time_limit(job, 1);
    while (!(detach_connection_status(job) & DETACH_TIMEOUT) && now() - start < 10)
        sleep_seconds(0.001);
    seen = now();
    write_marker(tag, "timeout", "start=%.6f\nrestarted=%.6f\nseen=%.6f\nstatus_at_restart=%d\n"
                 "status=%d\nshould_stop=%d\n", start, restarted, seen, status,
                 detach_connection_status(job), detach_should_stop(job));
}

/* ---- /stream: header lines first, then output as it is made ---- */

static void stream_handler(detach_job *job, void *arg)
{
    char tag[TAG_SIZE], line[32];
    int headers[3], bad_header, late_header, late_errno, writes = 0;
    double written[3];

    (void)arg;
    job_tag(job, tag, sizeof(tag));
    headers[0] = detach_header(job, "Status: 202 Accepted");
    headers[1] = detach_header(job, "Content-Type: text/x-lines");
    headers[2] = detach_header(job, "X-Stream: yes");
    bad_header = detach_header(job, "no colon here");
    for (int i = 0; i < 3; i++) {
        int n = snprintf(line, sizeof(line), "line %d\n", i + 1);
        if (i > 0)
            sleep_seconds(0.3);
        written[i] = now();
        if (detach_write(job, line, (size_t)n) == 0)
            writes++;
    }
    late_header = detach_header(job, "X-Late: yes");
    late_errno = errno;
    write_marker(tag, "stream", "headers=%d,%d,%d\nbad_header=%d\nlate_header=%d\n"
                 "late_ealready=%d\nwrites=%d\nwritten=%.6f,%.6f,%.6f\n", headers[0],
                 headers[1], headers[2], bad_header, late_header, late_errno == EALREADY,
                 writes, written[0], written[1], written[2]);
}

int main(int argc, char **argv)
{
    char listen[4200];
    detach_options options;
    struct sigaction stop;
    int status;

    if (argc != 3) {
        fprintf(stderr, "usage: job_app SOCKET_PATH MARKER_DIR\n");
        return 2;
    }
    marker_dir = argv[2];
    snprintf(listen, sizeof(listen), "unix:%s", argv[1]);
    detach_options_init(&options);
    options.max_jobs = 16;
    options.drain_timeout = 5;
    server = detach_server_new(listen, &options);
    if (!server) {
        fprintf(stderr, "job_app: %s\n", detach_last_error());
        return 1;
    }
    if (detach_route(server, "/trigger", DETACH_TRIGGER, trigger_handler, NULL) < 0 ||
        detach_route(server, "/attached-wait", DETACH_ATTACHED, attached_wait_handler, NULL) < 0 ||
        detach_route(server, "/attached-ignore", DETACH_ATTACHED, attached_ignore_handler,
                     NULL) < 0 ||
        detach_route(server, "/finish-early", DETACH_ATTACHED, finish_early_handler, NULL) < 0 ||
        detach_route(server, "/time-limit", DETACH_TRIGGER, time_limit_handler, NULL) < 0 ||
        detach_route(server, "/stream", DETACH_ATTACHED, stream_handler, NULL) < 0) {
        fprintf(stderr, "job_app: %s\n", detach_last_error());
        detach_server_free(server);
        return 1;
    }
    memset(&stop, 0, sizeof(stop));
    stop.sa_handler = on_stop_signal;
    sigemptyset(&stop.sa_mask);
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    status = detach_serve(server) < 0 ? 1 : 0;
    if (status)
        fprintf(stderr, "job_app: %s\n", detach_last_error());
    detach_server_free(server);
    return status;
}
