/*
 * fuzz_fcgi_libfcgi.c - the whole request path a detachd worker runs on a
 * connection, with the real libfcgi behind our wrapper.
 *
 * The input is what a peer sends: it is written into a socketpair, and
 * served twice, once with the peer half-closed and waiting for the answer
 * (as nginx waits), once with the peer gone.  On the other end, as in
 * request.c: request_head_check() on the bytes, and only when the head is
 * COMPLETE, fcgi_connection_accept() + fcgi_connection_read_body() +
 * a response + fcgi_connection_finish() + fcgi_connection_free().
 *
 * Checked beyond "no crash":
 *  - libfcgi's params are exactly the pairs request_head_check approved
 *    (the point of the check: libfcgi reads the bytes we checked);
 *  - no descriptor survives the request (the wrapper's ownership rules).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fcgi_connection.h"
#include "fcgi_record.h"
#include "request_head.h"

#define CHECK(condition)                                                              \
    do {                                                                              \
        if (!(condition)) {                                                           \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,      \
                    #condition);                                                      \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* Small enough to sit in the socket buffer whole (see the SO_* below). */
#define MAX_INPUT (64 * 1024)
/* detachd's default max_body. */
#define MAX_BODY (1024 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* As detachd does: a write to a peer that left is EPIPE, not death. */
    signal(SIGPIPE, SIG_IGN);
    CHECK(fcgi_library_init() == 0);
    return 0;
}

static int is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

/* The params stream request_head_check approved, gathered again. */
struct approved {
    uint8_t *stream;
    size_t length;
};

static void gather_params(const uint8_t *data, size_t size, struct approved *out)
{
    size_t position = 0;
    int begun = 0;

    out->stream = NULL;
    out->length = 0;
    for (;;) {
        struct fcgi_header header;
        CHECK(fcgi_header_decode(data + position, size - position, &header) == 0);
        const uint8_t *content = data + position + FCGI_RECORD_HEADER_SIZE;
        position += FCGI_RECORD_HEADER_SIZE + (size_t)header.content_length + header.padding_length;
        CHECK(position <= size);
        if (!begun) {
            begun = header.type == FCGI_TYPE_BEGIN_REQUEST;
            continue;
        }
        if (header.content_length == 0)
            return;
        out->stream = realloc(out->stream, out->length + header.content_length);
        CHECK(out->stream);
        memcpy(out->stream + out->length, content, header.content_length);
        out->length += header.content_length;
    }
}

/* libfcgi's envp: "FCGI_ROLE=RESPONDER", then each pair as "name=value". */
static void compare_params(char **envp, const struct approved *approved)
{
    size_t position = 0, index = 1;

    CHECK(envp && envp[0] && strcmp(envp[0], "FCGI_ROLE=RESPONDER") == 0);
    while (position < approved->length) {
        const uint8_t *name, *value;
        size_t consumed, name_length, value_length;
        CHECK(fcgi_param_decode(approved->stream + position, approved->length - position,
                                &consumed, &name, &name_length, &value, &value_length) == 0);
        position += consumed;
        const char *entry = envp[index++];
        CHECK(entry != NULL);
        CHECK(memcmp(entry, name, name_length) == 0 && entry[name_length] == '=');
        /* A value with a NUL is cut there by libfcgi's C strings. */
        size_t visible = strnlen((const char *)value, value_length);
        CHECK(strlen(entry + name_length + 1) == visible);
        CHECK(memcmp(entry + name_length + 1, value, visible) == 0);
    }
    CHECK(envp[index] == NULL);
}

#ifdef FUZZ_AVOID_KNOWN_BUGS
/*
 * Debian 12's libfcgi (2.4.2) overflows a 64-byte stack buffer answering an
 * FCGI_GET_VALUES that names a known variable more than three times, and
 * leaks 48 bytes per management record of any other type.  Any record with
 * request id 0 reaches that code; built with this macro the harness skips
 * such inputs, so that a long run can look for anything else.
 */
static int has_management_record(const uint8_t *data, size_t size)
{
    size_t position = 0;
    struct fcgi_header header;

    while (fcgi_header_decode(data + position, size - position, &header) == 0) {
        if (header.request_id == FCGI_RECORD_MANAGEMENT_ID && header.type != FCGI_TYPE_BEGIN_REQUEST)
            return 1;
        position += FCGI_RECORD_HEADER_SIZE + (size_t)header.content_length + header.padding_length;
        if (position >= size)
            break;
    }
    return 0;
}
#endif

/*
 * One connection.  peer_stays: the peer half-closes and waits for the
 * answer, as a web server does; otherwise it is gone (closed) before the
 * worker starts, so every write fails.
 */
static void serve(const uint8_t *data, size_t size, int peer_stays)
{
    int pair[2], buffer_size = 4 * MAX_INPUT, library_fd;
    /* Room for every answer libfcgi may write while nobody reads: up to
     * one small record per 8 input bytes, each a socket buffer of its own. */
    int answer_room = 64 * 1024 * 1024;
    uint8_t *peeked;
    ssize_t written, seen;
    size_t needed;
    const char *why;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &buffer_size, sizeof(buffer_size));
    setsockopt(pair[1], SOL_SOCKET, SO_RCVBUF, &buffer_size, sizeof(buffer_size));
    if (setsockopt(pair[1], SOL_SOCKET, SO_SNDBUFFORCE, &answer_room, sizeof(answer_room)) < 0)
        setsockopt(pair[1], SOL_SOCKET, SO_SNDBUF, &answer_room, sizeof(answer_room));

    /* The peer: everything at once (never blocks: it fits), then done. */
    written = size ? send(pair[0], data, size, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
    CHECK(written == (ssize_t)size);
    if (peer_stays) {
        CHECK(shutdown(pair[0], SHUT_WR) == 0);
    } else {
        close(pair[0]);
        pair[0] = -1;
    }

    /* The worker's peek and check (request.c check_request_head). */
    peeked = malloc(size + 1);
    CHECK(peeked);
    seen = recv(pair[1], peeked, size + 1, MSG_PEEK | MSG_DONTWAIT);
    if (seen < 0)
        seen = 0;
    CHECK((size_t)seen == size);
    enum request_head_verdict verdict =
        request_head_check(peeked, (size_t)seen, REQUEST_HEAD_MAX_PARAMS_BYTES, &needed, &why);
    if (verdict != REQUEST_HEAD_COMPLETE) {
        free(peeked);
        close(pair[1]);
        if (pair[0] >= 0)
            close(pair[0]);
        return;   /* dropped before libfcgi */
    }

    struct approved approved;
    gather_params(peeked, (size_t)seen, &approved);
    free(peeked);

    /* libfcgi gets its own descriptor, as connection.c gives it. */
    library_fd = fcntl(pair[1], F_DUPFD_CLOEXEC, 0);
    CHECK(library_fd >= 0);
    struct fcgi_connection *fcgi = fcgi_connection_new(library_fd);
    CHECK(fcgi);
    if (fcgi_connection_accept(fcgi) == 0) {
        char *body = NULL;
        size_t body_length = 0;

        compare_params(fcgi_connection_params(fcgi), &approved);
        /* The lookups request_path() makes. */
        (void)fcgi_connection_param(fcgi, "DOCUMENT_URI");
        (void)fcgi_connection_param(fcgi, "SCRIPT_NAME");
        (void)fcgi_connection_param(fcgi, "PATH_INFO");
        (void)fcgi_connection_param(fcgi, "REQUEST_URI");

        int rc = fcgi_connection_read_body(fcgi, MAX_BODY, &body, &body_length);
        CHECK(rc == -1 || rc == 0 || rc == 1);
        if (rc == 0) {
            CHECK(body != NULL && body[body_length] == '\0' && body_length <= MAX_BODY);
            static const char answer[] = "Status: 200 OK\r\nContent-Length: 0\r\n"
                                         "X-Detach-Job: 0000000000000001\r\n\r\n";
            if (fcgi_connection_write(fcgi, answer, sizeof(answer) - 1) < 0)
                fcgi_connection_forbid_keepalive(fcgi);
        } else {
            CHECK(body == NULL);
            fcgi_connection_forbid_keepalive(fcgi);
        }
        free(body);
        fcgi_connection_finish(fcgi);
    }
    fcgi_connection_free(fcgi);
    free(approved.stream);

    CHECK(!is_open(library_fd));   /* the wrapper closed libfcgi's copy */
    close(pair[1]);
    if (pair[0] >= 0)
        close(pair[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return -1;   /* not added to the corpus */
#ifdef FUZZ_AVOID_KNOWN_BUGS
    if (has_management_record(data, size))
        return -1;
#endif
    serve(data, size, 1);
    serve(data, size, 0);
    return 0;
}
