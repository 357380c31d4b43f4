/*
 * test_connection.c - the io layer alone: a connection on a socketpair,
 * a real watcher, and fake handlers in place of the server.
 *
 * connection.c knows no request, worker or job: a whole request goes up
 * through io_context's answer_now/hand_off, and an attached job hears of
 * its peer leaving through the peer_left callback.  Each test plays the
 * layer above with a few lines and checks what the peer sees.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fcgi/fcgi_record.h"
#include "io/connection.h"
#include "io/watcher.h"

#define ANSWER "Status: 204 No Content\r\n\r\n"

/* What the fake layer above saw; lock and cond for the test thread. */
struct above {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int answer;                  /* answer_now answers (1) or declines (0) */
    int answered, handed, peer_left;
    struct connection *handed_connection;
};

struct fixture {
    struct io_context io;
    struct above above;
    int peer;                    /* the web server's end of the socketpair */
};

static void note(struct above *above, int *counter)
{
    pthread_mutex_lock(&above->lock);
    (*counter)++;
    pthread_cond_broadcast(&above->changed);
    pthread_mutex_unlock(&above->lock);
}

/* Waits (up to 5 s) until *counter reaches target. */
static void wait_for(struct above *above, const int *counter, int target)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&above->lock);
    while (*counter < target)
        if (pthread_cond_timedwait(&above->changed, &above->lock, &deadline) != 0)
            break;
    pthread_mutex_unlock(&above->lock);
    assert_true(*counter >= target);
}

/* Watcher thread, no lock held: as request.c's dt_request_serve_at_once. */
static int answer_now(void *arg, struct connection *connection)
{
    struct fixture *fixture = arg;

    if (!fixture->above.answer)
        return 0;
    dt_connection_answer_now(connection, ANSWER, strlen(ANSWER));
    note(&fixture->above, &fixture->above.answered);
    return 1;
}

/* Watcher thread: as the worker queue; the test thread takes it from here. */
static void hand_off(void *arg, struct connection *connection)
{
    struct fixture *fixture = arg;

    pthread_mutex_lock(&fixture->above.lock);
    fixture->above.handed_connection = connection;
    pthread_mutex_unlock(&fixture->above.lock);
    note(&fixture->above, &fixture->above.handed);
}

/* Watcher thread, watcher lock held: as job.c's dt_job_abort_locked. */
static void peer_left(void *arg)
{
    struct fixture *fixture = arg;

    note(&fixture->above, &fixture->above.peer_left);
}

static int setup(void **state)
{
    struct fixture *fixture = calloc(1, sizeof(*fixture));
    int pair[2];

    assert_non_null(fixture);
    pthread_mutex_init(&fixture->above.lock, NULL);
    pthread_cond_init(&fixture->above.changed, NULL);
    fixture->io.watcher = dt_watcher_new();
    assert_non_null(fixture->io.watcher);
    assert_int_equal(dt_watcher_start(fixture->io.watcher), 0);
    fixture->io.read_timeout_ms = 5000;
    fixture->io.idle_timeout_ms = 5000;
    fixture->io.max_body = 1 << 20;
    fixture->io.answer_now = answer_now;
    fixture->io.hand_off = hand_off;
    fixture->io.handler_arg = fixture;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    fixture->peer = pair[1];
    /* As the listener does on an accept. */
    dt_watcher_lock(fixture->io.watcher);
    atomic_fetch_add(&fixture->io.connections, 1);
    dt_connection_accepted_locked(&fixture->io, pair[0]);
    dt_watcher_unlock(fixture->io.watcher);
    *state = fixture;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fixture = *state;

    dt_connection_close_idle(&fixture->io);
    dt_watcher_free(fixture->io.watcher);
    if (fixture->peer >= 0)
        close(fixture->peer);
    pthread_cond_destroy(&fixture->above.changed);
    pthread_mutex_destroy(&fixture->above.lock);
    free(fixture);
    return 0;
}

/* One request, not asking to keep the connection. */
static void send_request(int peer)
{
    static const char *const params[] = { "REQUEST_METHOD=GET", "DOCUMENT_URI=/t" };
    struct fcgi_buffer request = { 0 };

    assert_int_equal(dt_fcgi_request_build(&request, 1, 0, params, 2, NULL, 0), 0);
    assert_int_equal(send(peer, request.data, request.length, MSG_NOSIGNAL),
                     (ssize_t)request.length);
    dt_fcgi_buffer_free(&request);
}

/* Everything the peer gets until the connection closes (up to 5 s). */
static size_t read_to_eof(int peer, char *out, size_t size)
{
    struct timeval timeout = { 5, 0 };
    size_t used = 0;
    ssize_t n;

    setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    while (used < size && (n = recv(peer, out + used, size - used, 0)) > 0)
        used += (size_t)n;
    return used;
}

static void wait_for_no_connection(struct io_context *io)
{
    for (int i = 0; i < 500 && atomic_load(&io->connections) > 0; i++) {
        struct timespec pause = { 0, 10 * 1000000L };
        nanosleep(&pause, NULL);
    }
    assert_int_equal(atomic_load(&io->connections), 0);
}

/* A request answer_now takes is answered on the watcher thread, without a
 * hand-off; no keep-alive asked, so the connection closes and is counted
 * down. */
static void answered_at_once(void **state)
{
    struct fixture *fixture = *state;
    char received[1024];
    size_t length;

    fixture->above.answer = 1;
    send_request(fixture->peer);
    wait_for(&fixture->above, &fixture->above.answered, 1);
    length = read_to_eof(fixture->peer, received, sizeof(received));
    assert_true(length > FCGI_RECORD_HEADER_SIZE + strlen(ANSWER));
    assert_int_equal((uint8_t)received[1], FCGI_TYPE_STDOUT);
    assert_memory_equal(received + FCGI_RECORD_HEADER_SIZE, ANSWER, strlen(ANSWER));
    assert_int_equal(fixture->above.handed, 0);
    wait_for_no_connection(&fixture->io);
}

/* Declined: the connection goes to hand_off, out of epoll, and is the
 * taker's to close. */
static void declined_is_handed_off(void **state)
{
    struct fixture *fixture = *state;
    char received[16];

    send_request(fixture->peer);
    wait_for(&fixture->above, &fixture->above.handed, 1);
    assert_int_equal(fixture->above.answered, 0);
    assert_non_null(fixture->above.handed_connection);
    assert_int_equal(atomic_load(&fixture->io.connections), 1);
    dt_connection_close(fixture->above.handed_connection);
    assert_int_equal(read_to_eof(fixture->peer, received, sizeof(received)), 0);
    wait_for_no_connection(&fixture->io);
}

/* A connection watched for its peer leaving calls peer_left once the peer
 * closes; after dt_connection_unwatch_abort() it is the taker's again. */
static void peer_leaving_is_reported(void **state)
{
    struct fixture *fixture = *state;
    struct connection *connection;

    send_request(fixture->peer);
    wait_for(&fixture->above, &fixture->above.handed, 1);
    connection = fixture->above.handed_connection;
    assert_int_equal(dt_connection_watch_for_abort(connection, peer_left, fixture), 0);
    assert_int_equal(fixture->above.peer_left, 0);
    close(fixture->peer);
    fixture->peer = -1;
    wait_for(&fixture->above, &fixture->above.peer_left, 1);
    dt_connection_unwatch_abort(connection);
    dt_connection_close(connection);
    assert_int_equal(fixture->above.peer_left, 1);
    wait_for_no_connection(&fixture->io);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(answered_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(declined_is_handed_off, setup, teardown),
        cmocka_unit_test_setup_teardown(peer_leaving_is_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
