/*
 * fuzz_fcgi_libfcgi.c - the whole request path a detachd worker runs on a
 * connection: our reader, our response writer, and libfcgi as the
 * independent reference for what each request says.
 *
 * The input is what a peer sends: it is written into a socketpair, and
 * served as request.c serves it, once with the peer half-closed and waiting
 * for the answer (as nginx waits), once with the peer gone, and once more
 * with a small max_body when the input is long enough to pass it.  On the
 * worker's end, request after request while the connection is kept alive:
 * read() into a request_reader until its verdict is not NEED_MORE (as
 * read_request() does); INVALID or EOF drops the connection; otherwise an
 * answer (413 for TOO_LARGE, else 200 echoing the body) through
 * dt_fcgi_response_writev() and dt_fcgi_response_end(), as request.c and job.c
 * write.
 *
 * Checked beyond "no crash":
 *  - the params a job gets (dt_request_reader_params) are exactly the pairs
 *    in the checked head, HTTP_PROXY left out;
 *  - libfcgi, given the same checked head on a connection of its own
 *    (public API only: FCGX_Accept_r on a listening socket), accepts it
 *    and reads the same request id and the same pairs;
 *  - every head the reader approves has an 8-byte BEGIN_REQUEST body;
 *  - keep-alive is what the request's flag asks for, unless refused;
 *  - what the peer receives is well-formed FastCGI: per request, STDOUT
 *    records of its id carrying exactly what was written, an empty STDOUT,
 *    END_REQUEST (complete); nothing else, nothing after;
 *  - no descriptor survives the connection.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "fcgi/fcgi_response.h"
#include "fcgi/fcgi_record.h"
#include "fcgi/request_reader.h"

#include "fuzz_check.h"

/* Small enough to sit in the socket buffer whole (see the SO_* below). */
#define INPUT_MAX (64 * 1024)
/* detachd's default max_body, and one the fuzzer meets. */
#define MAX_BODY (1024 * 1024)
#define SMALL_BODY 256
/* Requests served on one kept-alive connection, at most. */
#define MAX_REQUESTS 8

int LLVMFuzzerInitialize(int *argc, char ***argv);

static int reference_listener = -1;
static struct sockaddr_un reference_address;
static socklen_t reference_address_length;
static FCGX_Request reference;
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* As detachd does: a write to a peer that left is EPIPE, not death. */
    signal(SIGPIPE, SIG_IGN);
    CHECK(FCGX_Init() == 0);
    /* libfcgi's own listening socket, in the abstract namespace (nothing
     * on disk), named by our pid so parallel fuzzers do not meet. */
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    int length = snprintf(address.sun_path + 1, sizeof(address.sun_path) - 1,
                          "detach-fuzz-libfcgi-%d", (int)getpid());
    reference_listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(reference_listener >= 0);
    reference_address = address;
    reference_address_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + length);
    CHECK(bind(reference_listener, (struct sockaddr *)&reference_address,
               reference_address_length) == 0);
    CHECK(listen(reference_listener, 4) == 0);
    CHECK(FCGX_InitRequest(&reference, reference_listener, 0) == 0);
    return 0;
}

static size_t count_fds(void)
{
    DIR *directory = opendir("/proc/self/fd");
    size_t count = 0;

    CHECK(directory);
    while (readdir(directory))
        count++;
    closedir(directory);
    return count;
}

static size_t unread_bytes(int fd)
{
    int queued = 0;

    CHECK(ioctl(fd, FIONREAD, &queued) == 0);
    return (size_t)queued;
}

/* request.c read_request(): read() into the reader until it decides. */
static int read_request(int fd, struct request_reader *reader, enum request_verdict *verdict)
{
    for (;;) {
        ssize_t n;

        *verdict = dt_request_reader_parse(reader);
        if (*verdict != REQUEST_NEED_MORE)
            break;
        CHECK(dt_request_reader_room(reader, 4096) == 0);
        n = read(fd, reader->data + reader->length, reader->capacity - reader->length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        reader->length += (size_t)n;
    }
    return *verdict == REQUEST_INVALID ? -1 : 0;
}

/* The checked head taken apart again: its id, flags and params stream. */
struct head {
    uint16_t request_id;
    uint8_t flags;
    size_t begin_length;   /* BEGIN_REQUEST's content length */
    uint8_t *params;
    size_t params_length, pair_count;
};

static void take_head_apart(const uint8_t *data, size_t length, struct head *out)
{
    size_t position = 0;
    int begun = 0;

    memset(out, 0, sizeof(*out));
    for (;;) {
        struct fcgi_header header;
        CHECK(dt_fcgi_header_decode(data + position, length - position, &header) == 0);
        const uint8_t *content = data + position + FCGI_RECORD_HEADER_SIZE;
        position += FCGI_RECORD_HEADER_SIZE + (size_t)header.content_length + header.padding_length;
        CHECK(position <= length);
        if (!begun) {
            uint16_t role;
            CHECK(header.type == FCGI_TYPE_BEGIN_REQUEST && header.request_id != 0);
            CHECK(dt_fcgi_begin_request_decode(content, header.content_length, &role, &out->flags) == 0);
            CHECK(role == FCGI_ROLE_RESPONDER);
            out->request_id = header.request_id;
            out->begin_length = header.content_length;
            begun = 1;
            continue;
        }
        CHECK(header.type == FCGI_TYPE_PARAMS && header.request_id == out->request_id);
        if (header.content_length == 0)
            break;
        out->params = realloc(out->params, out->params_length + header.content_length);
        CHECK(out->params);
        memcpy(out->params + out->params_length, content, header.content_length);
        out->params_length += header.content_length;
    }
    CHECK(position == length);   /* the head ends with the empty PARAMS */
}

/*
 * libfcgi reads the checked head on a connection of its own, through its
 * public API, and must find what our reader found: the request id, the
 * responder role, and every pair of the head, in order, HTTP_PROXY too
 * (its envp, after the "FCGI_ROLE=RESPONDER" it adds).
 */
static void check_with_libfcgi(const uint8_t *data, size_t length, const struct head *head)
{
    int client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), room = 4 * INPUT_MAX;
    size_t position = 0;
    char **entry;

    CHECK(client >= 0);
    setsockopt(client, SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
    CHECK(connect(client, (struct sockaddr *)&reference_address, reference_address_length) == 0);
    CHECK(send(client, data, length, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)length);
    CHECK(shutdown(client, SHUT_WR) == 0);
    CHECK(FCGX_Accept_r(&reference) == 0);
    CHECK(reference.requestId == head->request_id);
    CHECK(reference.role == FCGI_ROLE_RESPONDER);
    entry = reference.envp;
    CHECK(entry && *entry && strcmp(*entry, "FCGI_ROLE=RESPONDER") == 0);
    entry++;
    while (position < head->params_length) {
        const uint8_t *name, *value;
        size_t consumed, name_length, value_length;
        CHECK(dt_fcgi_param_decode(head->params + position, head->params_length - position,
                                &consumed, &name, &name_length, &value, &value_length) == 0);
        position += consumed;
        CHECK(*entry != NULL);
        CHECK(strlen(*entry) == name_length + 1 + value_length);
        CHECK(memcmp(*entry, name, name_length) == 0 && (*entry)[name_length] == '=');
        CHECK(memcmp(*entry + name_length + 1, value, value_length) == 0);
        entry++;
    }
    CHECK(*entry == NULL);
    close(client);
    /* Closed at once: detached, its close does not linger for the peer. */
    FCGX_Detach(&reference);
    FCGX_Free(&reference, 1);
}

/* dt_request_reader_params(): every pair of the checked head, in order,
 * but HTTP_PROXY (httpoxy). */
static void compare_params(const char *params, const struct head *head)
{
    size_t position = 0;
    const char *entry = params;

    CHECK(params != NULL);
    while (position < head->params_length) {
        const uint8_t *name, *value;
        size_t consumed, name_length, value_length;
        CHECK(dt_fcgi_param_decode(head->params + position, head->params_length - position,
                                &consumed, &name, &name_length, &value, &value_length) == 0);
        position += consumed;
        if (name_length == 10 && memcmp(name, "HTTP_PROXY", 10) == 0)
            continue;
        CHECK(*entry != '\0');
        CHECK(strlen(entry) == name_length + 1 + value_length);
        CHECK(memcmp(entry, name, name_length) == 0 && entry[name_length] == '=');
        CHECK(memcmp(entry + name_length + 1, value, value_length) == 0);
        entry += strlen(entry) + 1;
    }
    CHECK(*entry == '\0');
}

/* What one request's answer must carry. */
struct answer {
    uint16_t request_id;
    char *content;
    size_t length;
};

/*
 * What the peer got: for each answer, STDOUT records of its id carrying
 * exactly its content, an empty STDOUT, END_REQUEST (complete); then EOF.
 */
static void check_answers(int peer, const struct answer *answers, size_t count,
                          size_t left_unread)
{
    uint8_t *received = NULL;
    size_t length = 0, capacity = 0, position = 0;

    for (;;) {
        if (capacity - length < 65536) {
            capacity = capacity ? capacity * 2 : 65536;
            received = realloc(received, capacity);
            CHECK(received);
        }
        ssize_t n = read(peer, received + length, capacity - length);
        /* A socket closed with request bytes unread resets its peer, once
         * the peer has read everything sent before. */
        if (n < 0 && errno == ECONNRESET && left_unread > 0)
            break;
        CHECK(n >= 0);
        if (n == 0)
            break;
        length += (size_t)n;
    }
    for (size_t i = 0; i < count; i++) {
        size_t got = 0;
        int stdout_ended = 0;

        for (;;) {
            struct fcgi_header header;
            CHECK(dt_fcgi_header_decode(received + position, length - position, &header) == 0);
            size_t record_length =
                FCGI_RECORD_HEADER_SIZE + (size_t)header.content_length + header.padding_length;
            CHECK(record_length <= length - position);
            const uint8_t *content = received + position + FCGI_RECORD_HEADER_SIZE;
            position += record_length;
            CHECK(header.request_id == answers[i].request_id);
            if (!stdout_ended) {
                CHECK(header.type == FCGI_TYPE_STDOUT);
                if (header.content_length == 0) {
                    stdout_ended = 1;
                    continue;
                }
                CHECK(header.content_length <= answers[i].length - got);
                CHECK(memcmp(content, answers[i].content + got, header.content_length) == 0);
                got += header.content_length;
                continue;
            }
            uint32_t app_status;
            uint8_t protocol_status;
            CHECK(header.type == FCGI_TYPE_END_REQUEST);
            CHECK(header.content_length == FCGI_RECORD_END_BODY_SIZE);
            CHECK(dt_fcgi_end_request_decode(content, header.content_length, &app_status,
                                          &protocol_status) == 0);
            CHECK(app_status == 0 && protocol_status == FCGI_PROTOCOL_STATUS_REQUEST_COMPLETE);
            break;
        }
        CHECK(got == answers[i].length);
    }
    CHECK(position == length);   /* nothing but the answers */
    free(received);
}

/*
 * One connection.  peer_stays: the peer half-closes and waits for the
 * answer, as a web server does; otherwise it is gone (closed) before the
 * worker starts, so every write fails.
 */
static void serve(const uint8_t *data, size_t size, int peer_stays, size_t max_body)
{
    int pair[2], buffer_size = 4 * INPUT_MAX, open = 1;
    /* Room for every answer the worker writes while nobody reads. */
    int answer_room = 16 * 1024 * 1024;
    struct answer answers[MAX_REQUESTS];
    size_t answered = 0, fds_before = count_fds();
    ssize_t written;

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

    /* One reader for the connection, as connection.c keeps it: the reset
     * between requests keeps what was read past the last (pipelining). */
    struct request_reader reader;
    dt_request_reader_init(&reader, max_body);
    for (int served = 0; open && served < MAX_REQUESTS; served++) {
        enum request_verdict verdict;
        struct head head;
        struct fcgi_response response;

        if (served > 0)
            dt_request_reader_reset(&reader);
        if (read_request(pair[1], &reader, &verdict) < 0)
            break;   /* dropped unanswered */
        CHECK(verdict == REQUEST_COMPLETE || verdict == REQUEST_TOO_LARGE);
        take_head_apart(reader.data, reader.head_length, &head);

        size_t left_in_socket = unread_bytes(pair[1]);
        CHECK(head.begin_length == FCGI_RECORD_BEGIN_BODY_SIZE);
        check_with_libfcgi(reader.data, reader.head_length, &head);
        dt_fcgi_response_begin(&response, pair[1], reader.request_id, reader.keep_connection);
        char *params = dt_request_reader_params(&reader);
        compare_params(params, &head);
        /* The lookups request_path() makes. */
        (void)dt_request_param(params, "DOCUMENT_URI");
        (void)dt_request_param(params, "SCRIPT_NAME");
        (void)dt_request_param(params, "PATH_INFO");
        (void)dt_request_param(params, "REQUEST_URI");
        free(params);

        /* As dt_request_serve(): a body left on the wire, or bytes past the
         * request that are not the next request of a kept connection, end
         * the connection after this answer. */
        int trailing = verdict == REQUEST_COMPLETE && reader.trailing_length > 0;
        int forbidden = verdict == REQUEST_TOO_LARGE ||
                        (trailing && (!dt_request_reader_next_is_request(&reader) ||
                                      !(head.flags & FCGI_RECORD_FLAG_KEEP_CONN)));
        if (forbidden)
            dt_fcgi_response_forbid_keepalive(&response);
        size_t body_length;
        char *body = dt_request_reader_take_body(&reader, &body_length);

        /* The answer: 413, or 200 echoing the body (any bytes, any length). */
        char head_text[128];
        int n = verdict == REQUEST_TOO_LARGE
                    ? snprintf(head_text, sizeof(head_text),
                               "Status: 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
                    : snprintf(head_text, sizeof(head_text),
                               "Status: 200 OK\r\nContent-Length: %zu\r\n\r\n", body_length);
        CHECK(n > 0 && (size_t)n < sizeof(head_text));
        size_t answer_length = (size_t)n + (verdict == REQUEST_COMPLETE ? body_length : 0);
        char *answer = malloc(answer_length + 1);
        CHECK(answer);
        memcpy(answer, head_text, (size_t)n);
        if (verdict == REQUEST_COMPLETE && body_length)
            memcpy(answer + n, body, body_length);
        free(body);
        /* As job.c: the head and the body as parts of one write. */
        struct iovec parts[2] = { { answer, (size_t)n }, { answer + n, answer_length - (size_t)n } };
        int write_failed = dt_fcgi_response_writev(&response, parts, 2, 0) < 0;
        if (write_failed)
            dt_fcgi_response_forbid_keepalive(&response);

        int kept = dt_fcgi_response_end(&response);
        CHECK(kept == 0 || kept == 1);
        /* The writer reads nothing from the socket. */
        CHECK(unread_bytes(pair[1]) == left_in_socket);
        if (peer_stays) {
            CHECK(!write_failed);
            CHECK(kept == ((head.flags & FCGI_RECORD_FLAG_KEEP_CONN) && !forbidden));
            answers[answered].request_id = head.request_id;
            answers[answered].content = answer;
            answers[answered].length = answer_length;
            answered++;
        } else {
            CHECK(kept == 0);   /* the write of END_REQUEST failed at least */
            free(answer);
        }
        free(head.params);
        open = kept;
    }
    dt_request_reader_free(&reader);
    size_t left_unread = unread_bytes(pair[1]);
    close(pair[1]);

    if (peer_stays) {
        check_answers(pair[0], answers, answered, left_unread);
        for (size_t i = 0; i < answered; i++)
            free(answers[i].content);
        close(pair[0]);
    }
    CHECK(count_fds() == fds_before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > INPUT_MAX)
        return -1;   /* not added to the corpus */
    serve(data, size, 1, MAX_BODY);
    serve(data, size, 0, MAX_BODY);
    if (size > SMALL_BODY)
        serve(data, size, 1, SMALL_BODY);
    return 0;
}
