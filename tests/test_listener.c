/*
 * test_listener.c - the listening socket in a temp dir: a unix socket
 * gets the mode asked for, a stale socket file is replaced, a live one is
 * refused (and keeps working), an address that is neither is an error,
 * and once started the watcher accepts, counting connections against the
 * cap: past it a new connection is closed at once.
 *
 * Waits are on conditions: the connection count (polled against a 5 s
 * deadline) and the peer's own reads (bounded by SO_RCVTIMEO).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sched.h>
#include <unistd.h>
#include <cmocka.h>

#include "detach.h"
#include "base/error.h"
#include "base/timer_heap.h"
#include "io/connection.h"
#include "io/listener.h"
#include "io/watcher.h"

struct fixture {
    char dir[48];
    char path[96];
    char address[160];
};

static int setup(void **state)
{
    struct fixture *fixture = calloc(1, sizeof *fixture);

    assert_non_null(fixture);
    snprintf(fixture->dir, sizeof fixture->dir, "/tmp/test_listener.XXXXXX");
    assert_non_null(mkdtemp(fixture->dir));
    snprintf(fixture->path, sizeof fixture->path, "%s/s", fixture->dir);
    snprintf(fixture->address, sizeof fixture->address, "unix:%s", fixture->path);
    *state = fixture;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fixture = *state;

    unlink(fixture->path);
    rmdir(fixture->dir);
    free(fixture);
    return 0;
}

/* A connected client, or -1 with errno. */
static int connect_to(const char *path)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    struct timeval timeout = { .tv_sec = 5 };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    snprintf(address.sun_path, sizeof address.sun_path, "%s", path);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int wait_connections(struct io_context *io, unsigned long long target)
{
    uint64_t deadline = dt_monotonic_ms() + 5000;

    while (atomic_load(&io->connections) != target && dt_monotonic_ms() < deadline)
        sched_yield();
    return atomic_load(&io->connections) == target;
}

static void a_unix_socket_gets_its_mode(void **state)
{
    struct fixture *fixture = *state;
    struct listener listener = { .fd = -1 };
    struct stat info;

    assert_int_equal(dt_listener_open(&listener, fixture->address, 0620, NULL), 0);
    assert_int_equal(stat(fixture->path, &info), 0);
    assert_true(S_ISSOCK(info.st_mode));
    assert_int_equal(info.st_mode & 0777, 0620);
    dt_listener_close(&listener);
    /* Closing removes the file it made. */
    assert_int_equal(stat(fixture->path, &info), -1);
    assert_int_equal(errno, ENOENT);
}

static void a_stale_socket_is_replaced(void **state)
{
    struct fixture *fixture = *state;
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    struct listener listener = { .fd = -1 };

    /* A socket file left by a process that died: bound, never unlinked. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(stale >= 0);
    snprintf(address.sun_path, sizeof address.sun_path, "%s", fixture->path);
    assert_int_equal(bind(stale, (struct sockaddr *)&address, sizeof address), 0);
    close(stale);
    assert_int_equal(connect_to(fixture->path), -1);

    assert_int_equal(dt_listener_open(&listener, fixture->address, 0600, NULL), 0);
    int client = connect_to(fixture->path);
    assert_true(client >= 0);   /* the backlog takes it: the new socket listens */
    close(client);
    dt_listener_close(&listener);
}

static void a_live_socket_is_refused(void **state)
{
    struct fixture *fixture = *state;
    struct listener live = { .fd = -1 }, second = { .fd = -1 };

    assert_int_equal(dt_listener_open(&live, fixture->address, 0600, NULL), 0);
    assert_int_equal(dt_listener_open(&second, fixture->address, 0600, NULL), -1);
    assert_non_null(strstr(detach_last_error(), fixture->path));
    /* The live one's file is still there and still answers. */
    int client = connect_to(fixture->path);
    assert_true(client >= 0);
    close(client);
    dt_listener_close(&second);
    dt_listener_close(&live);
}

static void a_bad_address_is_an_error(void **state)
{
    (void)state;
    struct listener listener = { .fd = -1 };

    assert_int_equal(dt_listener_open(&listener, "no-port-here", 0600, NULL), -1);
    assert_int_equal(dt_listener_open(&listener, "unix:/nonexistent-dir-for-test/s", 0600, NULL), -1);
    dt_listener_close(&listener);
}

static int never_answers(void *arg, struct connection *connection)
{
    (void)arg;
    (void)connection;
    return 0;
}

static void never_taken(void *arg, struct connection *connection)
{
    (void)arg;
    dt_connection_close(connection);
}

/* Started: accepts on the watcher, counts, and closes past the cap. */
static void accepts_and_closes_past_the_cap(void **state)
{
    struct fixture *fixture = *state;
    struct listener listener = { .fd = -1 };
    struct io_context io = {
        .read_timeout_ms = 5000, .idle_timeout_ms = 5000, .max_body = 1024,
        .answer_now = never_answers, .hand_off = never_taken,
    };
    char byte;

    io.watcher = dt_watcher_new();
    assert_non_null(io.watcher);
    assert_int_equal(dt_watcher_start(io.watcher), 0);
    assert_int_equal(dt_listener_open(&listener, fixture->address, 0600, NULL), 0);
    assert_int_equal(dt_listener_start(&listener, &io, 1), 0);

    int first = connect_to(fixture->path);
    assert_true(first >= 0);
    assert_true(wait_connections(&io, 1));

    /* At the cap: accepted and closed at once, the peer reads EOF. */
    int second = connect_to(fixture->path);
    assert_true(second >= 0);
    assert_int_equal(read(second, &byte, 1), 0);
    close(second);
    assert_int_equal(atomic_load(&io.connections), 1);

    /* The first leaves: below the cap again, a new one is kept. */
    close(first);
    assert_true(wait_connections(&io, 0));
    int third = connect_to(fixture->path);
    assert_true(third >= 0);
    assert_true(wait_connections(&io, 1));

    dt_listener_close(&listener);
    dt_connection_close_idle(&io);
    close(third);
    assert_true(wait_connections(&io, 0));
    dt_watcher_free(io.watcher);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_unix_socket_gets_its_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(a_stale_socket_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(a_live_socket_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_bad_address_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(accepts_and_closes_past_the_cap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
