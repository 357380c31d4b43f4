/*
 * test_server.c - a whole detach_server through its public header, on a
 * unix socket in a temp dir, served on a thread of the test; the test
 * plays the web server and writes its FastCGI requests byte by byte.
 *
 * It proves the request path's decisions end to end (connection, request,
 * worker, executor, job): a trigger is answered 200 with its job id and
 * the handler runs with the request's params and body; an unknown path is
 * 404; a body over max_body is 413; with max_jobs busy and no queue the
 * next trigger is 503; the status page answers; a stop drains and
 * detach_serve() returns 0.  Waits are on a condition or on the server's
 * answer (reads bounded by SO_RCVTIMEO), never on a pause.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "detach.h"
#include "served_app.h"

enum { FCGI_BEGIN = 1, FCGI_END = 3, FCGI_PARAMS = 4, FCGI_STDIN = 5, FCGI_STDOUT = 6 };

/* When not 0, setup() cuts options.size there: the server of a program
 * built against an older, smaller detach_options. */
static size_t options_size_cut;

static int setup(void **state)
{
    struct served *served = calloc(1, sizeof *served);
    detach_options options;
    char listen[128];

    assert_non_null(served);
    snprintf(served->dir, sizeof served->dir, "/tmp/test_server.XXXXXX");
    assert_non_null(mkdtemp(served->dir));
    snprintf(served->path, sizeof served->path, "%s/s", served->dir);
    snprintf(listen, sizeof listen, "unix:%s", served->path);
    detach_options_init(&options);
    options.workers = 2;
    options.max_jobs = 1;
    options.queue = 0;
    options.max_body = 64;
    options.drain_timeout = 5;
    options.log_level = -1;
    options.status_path = "/status";
    options.status_allow = "127.0.0.1";
    if (options_size_cut)
        options.size = options_size_cut;
    served->server = detach_server_new(listen, &options);
    assert_non_null(served->server);
    assert_int_equal(detach_route(served->server, "/jobs/*", DETACH_TRIGGER, recording_handler, NULL), 0);
    assert_int_equal(detach_route(served->server, "/hold", DETACH_TRIGGER, blocking_handler, NULL), 0);
    assert_int_equal(pthread_create(&served->thread, NULL, serve_main, served), 0);
    pthread_mutex_lock(&seen.lock);
    seen.ran = seen.hold = seen.holding = 0;
    seen.query[0] = seen.body[0] = '\0';
    pthread_mutex_unlock(&seen.lock);
    *state = served;
    return 0;
}

/* The layout before status_path: what lies past it in the struct is not
 * the caller's and must not be read. */
static int setup_older_options(void **state)
{
    int rc;

    options_size_cut = offsetof(detach_options, status_path);
    rc = setup(state);
    options_size_cut = 0;
    return rc;
}

static int teardown(void **state)
{
    struct served *served = *state;

    detach_server_stop(served->server);
    pthread_join(served->thread, NULL);
    assert_int_equal(served->rc, 0);
    detach_server_free(served->server);
    unlink(served->path);
    rmdir(served->dir);
    free(served);
    return 0;
}

static size_t put_record(unsigned char *out, int type, const void *content, size_t length)
{
    out[0] = 1;
    out[1] = (unsigned char)type;
    out[2] = 0;
    out[3] = 1;   /* request id 1 */
    out[4] = (unsigned char)(length >> 8);
    out[5] = (unsigned char)length;
    out[6] = out[7] = 0;
    if (length)
        memcpy(out + 8, content, length);
    return 8 + length;
}

static size_t put_pair(unsigned char *out, const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value);

    out[0] = (unsigned char)n;   /* the test's names and values are short */
    out[1] = (unsigned char)v;
    memcpy(out + 2, name, n);
    memcpy(out + 2 + n, value, v);
    return 2 + n + v;
}

/*
 * One request on a new connection: DOCUMENT_URI uri, QUERY_STRING query,
 * the body; returns the HTTP status of the answer (200 when the answer
 * names none, as CGI says), its STDOUT in out.  -1: no answer.
 */
static int request(struct served *served, const char *uri, const char *query, const char *body,
                   size_t body_length, char *out, size_t out_size)
{
    static unsigned char buffer[65536];
    unsigned char params[1024];
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    struct timeval timeout = { .tv_sec = 10 };
    const unsigned char begin[8] = { 0, 1, 0 };   /* responder, no keep-alive */
    char length_text[32];
    size_t p = 0, n = 0, got = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1, ended = 0;

    assert_true(fd >= 0);
    snprintf(address.sun_path, sizeof address.sun_path, "%s", served->path);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    assert_int_equal(connect(fd, (struct sockaddr *)&address, sizeof address), 0);
    snprintf(length_text, sizeof length_text, "%zu", body_length);
    p += put_pair(params + p, "REQUEST_METHOD", body_length ? "POST" : "GET");
    p += put_pair(params + p, "DOCUMENT_URI", uri);
    p += put_pair(params + p, "QUERY_STRING", query);
    p += put_pair(params + p, "REMOTE_ADDR", "127.0.0.1");
    p += put_pair(params + p, "CONTENT_LENGTH", length_text);
    n += put_record(buffer + n, FCGI_BEGIN, begin, sizeof begin);
    n += put_record(buffer + n, FCGI_PARAMS, params, p);
    n += put_record(buffer + n, FCGI_PARAMS, NULL, 0);
    if (body_length)
        n += put_record(buffer + n, FCGI_STDIN, body, body_length);
    n += put_record(buffer + n, FCGI_STDIN, NULL, 0);
    /* The server may answer (413) and close before reading it all. */
    if (send(fd, buffer, n, MSG_NOSIGNAL) != (ssize_t)n && errno != EPIPE && errno != ECONNRESET)
        fail_msg("send: %s", strerror(errno));

    /* Records until END_REQUEST; STDOUT gathered. */
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buffer + have, sizeof buffer - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t at = 0;
        while (have - at >= 8) {
            size_t length = (size_t)buffer[at + 4] << 8 | buffer[at + 5];
            size_t total = 8 + length + buffer[at + 6];
            if (have - at < total)
                break;
            if (buffer[at + 1] == FCGI_STDOUT && got + length < out_size) {
                memcpy(out + got, buffer + at + 8, length);
                got += length;
            }
            if (buffer[at + 1] == FCGI_END)
                ended = 1;
            at += total;
        }
        memmove(buffer, buffer + at, have - at);
        have -= at;
        if (ended)
            break;
    }
    close(fd);
    out[got] = '\0';
    if (!ended)
        return -1;
    const char *line = strstr(out, "Status: ");
    status = line ? atoi(line + 8) : 200;
    return status;
}

static void a_trigger_is_answered_and_runs(void **state)
{
    char out[4096];

    assert_int_equal(request(*state, "/jobs/report", "month=5", "x=1", 3, out, sizeof out), 200);
    assert_non_null(strstr(out, "X-Detach-Job: "));
    wait_seen(&seen.ran, 1);
    pthread_mutex_lock(&seen.lock);
    assert_string_equal(seen.query, "month=5");
    assert_string_equal(seen.body, "x=1");
    pthread_mutex_unlock(&seen.lock);
}

static void an_unknown_path_is_404(void **state)
{
    char out[4096];

    assert_int_equal(request(*state, "/nowhere", "", "", 0, out, sizeof out), 404);
    assert_int_equal(request(*state, "/jobs", "", "", 0, out, sizeof out), 404);
    pthread_mutex_lock(&seen.lock);
    assert_int_equal(seen.ran, 0);
    pthread_mutex_unlock(&seen.lock);
}

static void a_body_over_max_body_is_413(void **state)
{
    char out[4096], body[65];

    memset(body, 'b', sizeof body);
    assert_int_equal(request(*state, "/jobs/big", "", body, sizeof body, out, sizeof out), 413);
    /* At the limit it is taken. */
    assert_int_equal(request(*state, "/jobs/big", "", body, 64, out, sizeof out), 200);
    wait_seen(&seen.ran, 1);
}

static void max_jobs_busy_and_no_queue_is_503(void **state)
{
    char out[4096];

    pthread_mutex_lock(&seen.lock);
    seen.hold = 1;
    pthread_mutex_unlock(&seen.lock);
    assert_int_equal(request(*state, "/hold", "", "", 0, out, sizeof out), 200);
    wait_seen(&seen.holding, 1);
    assert_int_equal(request(*state, "/jobs/refused", "", "", 0, out, sizeof out), 503);
    assert_non_null(strstr(out, "Retry-After: "));
    pthread_mutex_lock(&seen.lock);
    seen.hold = 0;
    pthread_cond_broadcast(&seen.changed);
    pthread_mutex_unlock(&seen.lock);
    wait_seen(&seen.ran, 1);
    /* The refused one never ran: the only run was the held one. */
    pthread_mutex_lock(&seen.lock);
    assert_int_equal(seen.ran, 1);
    pthread_mutex_unlock(&seen.lock);
}

/* Fields past the caller's size take their defaults (no status page),
 * the ones within it are honoured (max_body 64). */
static void older_options_get_defaults_past_their_size(void **state)
{
    char out[4096];
    char body[100];

    memset(body, 'x', sizeof body);
    assert_int_equal(request(*state, "/status", "format=json", "", 0, out, sizeof out), 404);
    assert_int_equal(request(*state, "/jobs/big", "", body, sizeof body, out, sizeof out), 413);
    assert_int_equal(request(*state, "/jobs/one", "", "", 0, out, sizeof out), 200);
    wait_seen(&seen.ran, 1);
}

/* detach_options_init() writes only the caller's bytes; a size of 0 (no
 * detach_options_init()) is refused rather than guessed at. */
static void options_init_stays_inside_the_callers_size(void **state)
{
    union {
        detach_options options;
        unsigned char bytes[sizeof(detach_options)];
    } buffer;
    size_t cut = offsetof(detach_options, status_path);
    detach_options zero;

    (void)state;
    memset(&buffer, 0xa5, sizeof buffer);
    detach_options_init_sized(&buffer.options, cut);
    assert_int_equal(buffer.options.size, cut);
    assert_int_equal(buffer.options.workers, 4);
    assert_int_equal(buffer.options.job_nice, 10);
    for (size_t i = cut; i < sizeof buffer; i++)
        assert_int_equal(buffer.bytes[i], 0xa5);

    detach_options_init(&zero);
    assert_int_equal(zero.size, sizeof zero);
    assert_int_equal(zero.job_descriptors, 4);
    zero.size = 0;
    errno = 0;
    assert_null(detach_server_new("unix:/nonexistent/s", &zero));
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(detach_last_error(), "detach_options_init"));
}

/* detach_route_spec as it was before on_abort: the library must walk the
 * caller's array with the caller's stride and default what it lacks. */
struct older_route_spec {
    const char *path;
    detach_mode mode;
    detach_handler handler;
    void *arg;
};

static void older_route_specs_are_walked_with_their_own_size(void **state)
{
    struct older_route_spec older[3] = {
        {"/a", DETACH_TRIGGER, recording_handler, NULL},
        {"/b", DETACH_TRIGGER, recording_handler, NULL},
        {"/c/*", DETACH_TRIGGER, recording_handler, NULL},
    };
    char out[4096];

    assert_int_equal(detach_server_replace_routes_sized(((struct served *)*state)->server,
                                                        (const detach_route_spec *)(void *)older, 3,
                                                        sizeof older[0]), 0);
    assert_int_equal(request(*state, "/jobs/one", "", "", 0, out, sizeof out), 404);
    assert_int_equal(request(*state, "/c/x", "", "", 0, out, sizeof out), 200);
    wait_seen(&seen.ran, 1);
    assert_int_equal(request(*state, "/b", "", "", 0, out, sizeof out), 200);
    wait_seen(&seen.ran, 2);

    errno = 0;
    assert_int_equal(detach_server_replace_routes_sized(((struct served *)*state)->server,
                                                        (const detach_route_spec *)(void *)older, 1,
                                                        sizeof(void *)), -1);
    assert_int_equal(errno, EINVAL);
}

static void the_status_page_answers(void **state)
{
    char out[4096];

    assert_int_equal(request(*state, "/jobs/one", "", "", 0, out, sizeof out), 200);
    wait_seen(&seen.ran, 1);
    assert_int_equal(request(*state, "/status", "format=json", "", 0, out, sizeof out), 200);
    assert_non_null(strstr(out, "\"accepted\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_trigger_is_answered_and_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(an_unknown_path_is_404, setup, teardown),
        cmocka_unit_test_setup_teardown(a_body_over_max_body_is_413, setup, teardown),
        cmocka_unit_test_setup_teardown(max_jobs_busy_and_no_queue_is_503, setup, teardown),
        cmocka_unit_test_setup_teardown(the_status_page_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(older_options_get_defaults_past_their_size,
                                        setup_older_options, teardown),
        cmocka_unit_test(options_init_stays_inside_the_callers_size),
        cmocka_unit_test_setup_teardown(older_route_specs_are_walked_with_their_own_size, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
