/*
 * test_fcgi_response.c - the response writer in src/fcgi/fcgi_response.c:
 * its encoders byte by byte, and what it sends on a socketpair taken
 * apart record by record -- STDOUT records of at most 65535 bytes padded
 * to 8 with zeros, content intact across records and parts, the empty
 * STDOUT, END_REQUEST (app status 0, complete), nothing after; keep-alive
 * as asked unless refused or a send failed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fcgi/fcgi_record.h"
#include "fcgi/fcgi_response.h"

#define BIG (2 * FCGI_RECORD_MAX_CONTENT + 1000)

static void stdout_header_sizes_and_pads(void **state)
{
    static const struct { size_t remaining, length; uint8_t padding; } cases[] = {
        { 0, 0, 0 }, { 1, 1, 7 }, { 5, 5, 3 }, { 8, 8, 0 }, { 65535, 65535, 1 },
        { 65536, 65535, 1 }, { 1000000, 65535, 1 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t header[FCGI_RECORD_HEADER_SIZE];
        struct fcgi_header decoded;
        uint8_t padding = 99;
        size_t length = dt_fcgi_stdout_header_encode(header, 0x0102, cases[i].remaining, &padding);

        assert_int_equal(length, cases[i].length);
        assert_int_equal(padding, cases[i].padding);
        assert_int_equal(dt_fcgi_header_decode(header, sizeof(header), &decoded), 0);
        assert_int_equal(decoded.type, FCGI_TYPE_STDOUT);
        assert_int_equal(decoded.request_id, 0x0102);
        assert_int_equal(decoded.content_length, cases[i].length);
        assert_int_equal(decoded.padding_length, cases[i].padding);
        assert_int_equal(header[7], 0);
    }
}

static void end_encodes_empty_stdout_and_end_request(void **state)
{
    static const uint8_t expected[FCGI_RESPONSE_END_SIZE] = {
        1, FCGI_TYPE_STDOUT, 0x12, 0x34, 0, 0, 0, 0,
        1, FCGI_TYPE_END_REQUEST, 0x12, 0x34, 0, 8, 0, 0,
        0xde, 0xad, 0xbe, 0xef, FCGI_PROTOCOL_STATUS_OVERLOADED, 0, 0, 0,
    };
    uint8_t out[FCGI_RESPONSE_END_SIZE];

    memset(out, 0xff, sizeof(out));
    dt_fcgi_response_end_encode(out, 0x1234, 0xdeadbeef, FCGI_PROTOCOL_STATUS_OVERLOADED);
    assert_memory_equal(out, expected, sizeof(expected));
}

struct received {
    uint8_t *content;
    size_t length;
    int ended;            /* the empty STDOUT, then END_REQUEST, were seen */
};

/* Reads everything the writer sent (its end is shut) and checks each record. */
static void take_apart(int fd, uint16_t request_id, struct received *out)
{
    size_t capacity = 4 * BIG, length = 0, at = 0;
    uint8_t *wire = malloc(capacity);
    ssize_t n;
    int stream_closed = 0;

    assert_non_null(wire);
    while ((n = read(fd, wire + length, capacity - length)) > 0)
        length += (size_t)n;
    assert_int_equal(n, 0);
    out->content = malloc(length + 1);
    assert_non_null(out->content);
    out->length = 0;
    out->ended = 0;
    while (at < length) {
        struct fcgi_header header;

        assert_false(out->ended);   /* nothing after END_REQUEST */
        assert_int_equal(dt_fcgi_header_decode(wire + at, length - at, &header), 0);
        assert_int_equal(header.request_id, request_id);
        assert_true(at + FCGI_RECORD_HEADER_SIZE + header.content_length +
                    header.padding_length <= length);
        assert_int_equal((header.content_length + header.padding_length) % 8, 0);
        assert_true(header.padding_length < 8);
        for (size_t i = 0; i < header.padding_length; i++)
            assert_int_equal(wire[at + FCGI_RECORD_HEADER_SIZE + header.content_length + i], 0);
        if (header.type == FCGI_TYPE_STDOUT) {
            assert_false(stream_closed);
            if (header.content_length == 0)
                stream_closed = 1;
            memcpy(out->content + out->length, wire + at + FCGI_RECORD_HEADER_SIZE,
                   header.content_length);
            out->length += header.content_length;
        } else {
            uint32_t app_status;
            uint8_t protocol_status;

            assert_int_equal(header.type, FCGI_TYPE_END_REQUEST);
            assert_true(stream_closed);
            assert_int_equal(dt_fcgi_end_request_decode(wire + at + FCGI_RECORD_HEADER_SIZE,
                                                     header.content_length, &app_status,
                                                     &protocol_status), 0);
            assert_int_equal(app_status, 0);
            assert_int_equal(protocol_status, FCGI_PROTOCOL_STATUS_REQUEST_COMPLETE);
            out->ended = 1;
        }
        at += FCGI_RECORD_HEADER_SIZE + header.content_length + header.padding_length;
    }
    free(wire);
}

static void socket_pair(int pair[2])
{
    int size = 4 * BIG;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    /* The whole response sits in the buffer: no reader thread needed. */
    assert_int_equal(setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)), 0);
    assert_int_equal(setsockopt(pair[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)), 0);
}

static void writes_records_and_ends(void **state)
{
    uint8_t *big = malloc(BIG);
    const char *small[12] = { "Status: 200 OK\r\n", "", "X: ", "1", "\r\n", "\r\n", "a", "b",
                              "c", "d", "e", "f" };
    struct iovec parts[12];
    struct fcgi_response response;
    struct received got;
    size_t expected_length = 0;
    uint8_t *expected = malloc(BIG + 256);
    int pair[2];

    assert_non_null(big);
    assert_non_null(expected);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    /* More parts than one record gathers: a record is cut short. */
    for (size_t i = 0; i < 12; i++) {
        parts[i] = (struct iovec){ (void *)small[i], strlen(small[i]) };
        memcpy(expected + expected_length, small[i], parts[i].iov_len);
        expected_length += parts[i].iov_len;
    }
    memcpy(expected + expected_length, big, BIG);
    expected_length += BIG;

    socket_pair(pair);
    dt_fcgi_response_begin(&response, pair[0], 7, 1);
    assert_int_equal(dt_fcgi_response_writev(&response, parts, 12, 0), 0);
    assert_int_equal(dt_fcgi_response_write(&response, NULL, 0), 0);   /* sends nothing */
    assert_int_equal(dt_fcgi_response_write(&response, big, BIG), 0);
    assert_int_equal(dt_fcgi_response_end(&response), 1);
    assert_int_equal(dt_fcgi_response_end(&response), 1);              /* ends once */
    assert_int_equal(dt_fcgi_response_write(&response, "x", 1), -1);   /* nothing after */
    assert_int_equal(shutdown(pair[0], SHUT_WR), 0);
    take_apart(pair[1], 7, &got);
    assert_true(got.ended);
    assert_int_equal(got.length, expected_length);
    assert_memory_equal(got.content, expected, expected_length);
    free(got.content);
    free(expected);
    free(big);
    close(pair[0]);
    close(pair[1]);
}

static void send_whole_is_the_watchers_short_response(void **state)
{
    static const char text[] = "Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nNot Found\n";
    uint8_t reference[256], wire[256];
    size_t reference_length = dt_fcgi_short_response_encode(reference, sizeof(reference), 9, text,
                                                         sizeof(text) - 1);
    struct fcgi_response response;
    ssize_t n;
    int pair[2];

    socket_pair(pair);
    dt_fcgi_response_begin(&response, pair[0], 9, 0);
    assert_int_equal(dt_fcgi_response_send_whole(&response, text, sizeof(text) - 1), 0);
    assert_int_equal(dt_fcgi_response_end(&response), 0);   /* not asked to keep it */
    assert_int_equal(shutdown(pair[0], SHUT_WR), 0);
    n = recv(pair[1], wire, sizeof(wire), MSG_WAITALL);
    assert_int_equal(n, (ssize_t)reference_length);
    assert_memory_equal(wire, reference, reference_length);
    close(pair[0]);
    close(pair[1]);
}

static void empty_response_is_empty_stdout_and_end(void **state)
{
    struct fcgi_response response;
    struct received got;
    int pair[2];

    socket_pair(pair);
    dt_fcgi_response_begin(&response, pair[0], 3, 1);
    assert_int_equal(dt_fcgi_response_end(&response), 1);
    assert_int_equal(shutdown(pair[0], SHUT_WR), 0);
    take_apart(pair[1], 3, &got);
    assert_true(got.ended);
    assert_int_equal(got.length, 0);
    free(got.content);
    close(pair[0]);
    close(pair[1]);
}

static void refused_keepalive_still_ends(void **state)
{
    struct fcgi_response response;
    struct received got;
    int pair[2];

    socket_pair(pair);
    dt_fcgi_response_begin(&response, pair[0], 4, 1);
    dt_fcgi_response_forbid_keepalive(&response);
    assert_int_equal(dt_fcgi_response_write(&response, "body", 4), 0);
    assert_int_equal(dt_fcgi_response_end(&response), 0);
    assert_int_equal(shutdown(pair[0], SHUT_WR), 0);
    take_apart(pair[1], 4, &got);
    assert_true(got.ended);
    assert_int_equal(got.length, 4);
    assert_memory_equal(got.content, "body", 4);
    free(got.content);
    close(pair[0]);
    close(pair[1]);
}

static void peer_gone_fails_and_drops_keepalive(void **state)
{
    struct fcgi_response response;
    int pair[2];

    socket_pair(pair);
    close(pair[1]);
    dt_fcgi_response_begin(&response, pair[0], 5, 1);
    errno = 0;
    /* No SIGPIPE: the test process would die of it. */
    assert_int_equal(dt_fcgi_response_write(&response, "late", 4), -1);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(dt_fcgi_response_write(&response, "more", 4), -1);
    assert_int_equal(dt_fcgi_response_end(&response), 0);
    close(pair[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stdout_header_sizes_and_pads),
        cmocka_unit_test(end_encodes_empty_stdout_and_end_request),
        cmocka_unit_test(writes_records_and_ends),
        cmocka_unit_test(send_whole_is_the_watchers_short_response),
        cmocka_unit_test(empty_response_is_empty_stdout_and_end),
        cmocka_unit_test(refused_keepalive_still_ends),
        cmocka_unit_test(peer_gone_fails_and_drops_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
