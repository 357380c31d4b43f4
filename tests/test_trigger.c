/*
 * test_trigger.c - detach_trigger() (the client library) over --fcgi
 * against a detach_server the test runs on a unix socket in a temp dir:
 * a GET and a form POST reach the handler with their query and fields and
 * come back 200 with the job id; a 404 is a status, not an error;
 * no_wait returns once sent; the job's status is read back with
 * detach_trigger_job_status().  Error paths: no socket there, a URL that
 * is not a path, and a server that never answers (bounded by timeout_ms)
 * are -1 with errno and a message.  Waits are on conditions.
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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "detach.h"
#include "detach_trigger.h"
#include "served_app.h"

static int setup(void **state)
{
    struct served *served = calloc(1, sizeof *served);
    detach_options options;
    char listen[128];

    assert_non_null(served);
    snprintf(served->dir, sizeof served->dir, "/tmp/test_trigger.XXXXXX");
    assert_non_null(mkdtemp(served->dir));
    snprintf(served->path, sizeof served->path, "%s/s", served->dir);
    snprintf(listen, sizeof listen, "unix:%s", served->path);
    detach_options_init(&options);
    options.workers = 2;
    options.max_jobs = 4;
    options.queue = 16;
    options.max_body = 64;
    options.drain_timeout = 5;
    options.log_level = -1;
    options.status_path = "/status";
    options.status_allow = "127.0.0.1";
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

static void options_for(struct served *served, detach_trigger_options *options, char *fcgi,
                        size_t size)
{
    detach_trigger_options_init(options);
    snprintf(fcgi, size, "unix:%s", served->path);
    options->fcgi = fcgi;
    options->timeout_ms = 10000;
}

static void a_get_and_a_post_reach_the_handler(void **state)
{
    struct served *served = *state;
    detach_trigger_options options;
    detach_trigger_result result;
    char fcgi[128];
    const char *fields[] = { "to=ops team", "n=3" };

    options_for(served, &options, fcgi, sizeof fcgi);
    memset(&result, 0, sizeof result);
    assert_int_equal(detach_trigger("/jobs/mail?lang=en", &options, &result), 0);
    assert_int_equal(result.status, 200);
    assert_true(strlen(result.job_id) > 0);
    wait_seen(&seen.ran, 1);
    pthread_mutex_lock(&seen.lock);
    assert_string_equal(seen.query, "lang=en");
    assert_string_equal(seen.body, "");
    pthread_mutex_unlock(&seen.lock);

    options.fields = fields;
    options.field_count = 2;
    assert_int_equal(detach_trigger("/jobs/mail", &options, &result), 0);
    assert_int_equal(result.status, 200);
    wait_seen(&seen.ran, 2);
    pthread_mutex_lock(&seen.lock);
    assert_string_equal(seen.body, "to=ops%20team&n=3");
    pthread_mutex_unlock(&seen.lock);

    /* The job's status, read back by id from the status page. */
    char url[160];
    int http_status = 0;
    detach_job_status job;
    uint64_t deadline = 0;
    struct timespec now;

    snprintf(url, sizeof url, "/status/jobs/%s", result.job_id);
    for (;;) {
        assert_int_equal(detach_trigger_job_status(url, &options, 5000, &http_status, &job), 0);
        assert_int_equal(http_status, 200);
        if (strcmp(job.state, "ended") == 0)
            break;
        /* Ended once the registry has it: the handler ran, its end follows. */
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!deadline)
            deadline = (uint64_t)now.tv_sec + 5;
        assert_true((uint64_t)now.tv_sec < deadline);
    }
    assert_int_equal(job.connection_status, 0);
}

static void a_404_is_a_status_not_an_error(void **state)
{
    struct served *served = *state;
    detach_trigger_options options;
    detach_trigger_result result;
    char fcgi[128];

    options_for(served, &options, fcgi, sizeof fcgi);
    assert_int_equal(detach_trigger("/nowhere", &options, &result), 0);
    assert_int_equal(result.status, 404);
    assert_string_equal(result.job_id, "");
}

static void no_wait_returns_once_sent(void **state)
{
    struct served *served = *state;
    detach_trigger_options options;
    detach_trigger_result result;
    char fcgi[128];

    options_for(served, &options, fcgi, sizeof fcgi);
    options.no_wait = 1;
    result.status = -1;
    assert_int_equal(detach_trigger("/jobs/later?x=9", &options, &result), 0);
    assert_int_equal(result.status, 0);
    wait_seen(&seen.ran, 1);
    pthread_mutex_lock(&seen.lock);
    assert_string_equal(seen.query, "x=9");
    pthread_mutex_unlock(&seen.lock);
}

/* A program built against an older, smaller detach_trigger_options: no_wait
 * lies past its size, so it is not the caller's and the call waits for the
 * answer whatever the bytes there hold; a size of 0 is refused. */
static void older_options_get_defaults_past_their_size(void **state)
{
    struct served *served = *state;
    detach_trigger_options options;
    detach_trigger_result result;
    char fcgi[128];

    options_for(served, &options, fcgi, sizeof fcgi);
    options.no_wait = 1;
    options.size = offsetof(detach_trigger_options, no_wait);
    result.status = -1;
    assert_int_equal(detach_trigger("/jobs/older?x=1", &options, &result), 0);
    assert_int_equal(result.status, 200);
    assert_true(strlen(result.job_id) > 0);
    wait_seen(&seen.ran, 1);

    options.size = 0;
    errno = 0;
    assert_int_equal(detach_trigger("/jobs/older", &options, &result), -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(detach_last_error(), "detach_trigger_options_init"));
}

static void errors_are_minus_one_with_a_message(void **state)
{
    struct served *served = *state;
    detach_trigger_options options;
    detach_trigger_result result;
    char fcgi[128], missing[128];

    options_for(served, &options, fcgi, sizeof fcgi);
    /* A URL that is not a path, with fcgi. */
    errno = 0;
    assert_int_equal(detach_trigger("jobs/mail", &options, &result), -1);
    assert_true(errno != 0);
    assert_true(strlen(detach_last_error()) > 0);

    /* No socket there. */
    snprintf(missing, sizeof missing, "unix:%s/absent", served->dir);
    options.fcgi = missing;
    errno = 0;
    assert_int_equal(detach_trigger("/jobs/mail", &options, &result), -1);
    assert_true(errno != 0);
    assert_non_null(strstr(detach_last_error(), "absent"));

    /* A socket that listens and never answers: timeout_ms bounds it. */
    char silent_path[80];
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    int silent = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(silent >= 0);
    snprintf(silent_path, sizeof silent_path, "%s/silent", served->dir);
    snprintf(address.sun_path, sizeof address.sun_path, "%s", silent_path);
    assert_int_equal(bind(silent, (struct sockaddr *)&address, sizeof address), 0);
    assert_int_equal(listen(silent, 4), 0);
    snprintf(missing, sizeof missing, "unix:%s", silent_path);
    options.timeout_ms = 300;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    errno = 0;
    assert_int_equal(detach_trigger("/jobs/mail", &options, &result), -1);
    clock_gettime(CLOCK_MONOTONIC, &end);
    assert_true(errno != 0);
    assert_true(end.tv_sec - start.tv_sec < 5);
    close(silent);
    unlink(silent_path);
    pthread_mutex_lock(&seen.lock);
    assert_int_equal(seen.ran, 0);
    pthread_mutex_unlock(&seen.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_get_and_a_post_reach_the_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(a_404_is_a_status_not_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(no_wait_returns_once_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(older_options_get_defaults_past_their_size, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_are_minus_one_with_a_message, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
