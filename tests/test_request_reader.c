/*
 * test_request_reader.c - the record-by-record check of a request: whole
 * requests, requests arriving a byte at a time, the body bound, and every
 * kind of hostile record that must never reach libfcgi.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fcgi/fcgi_record.h"
#include "fcgi/request_reader.h"

/* A request as nginx sends it, built with our own encoder. */
static struct fcgi_buffer request(const char *body, uint16_t role)
{
    static const char *const params[] = { "SCRIPT_NAME=/x", "REQUEST_METHOD=POST" };
    struct fcgi_buffer out = { 0 };

    assert_int_equal(dt_fcgi_request_build(&out, 1, 0, params, 2, body, body ? strlen(body) : 0), 0);
    if (role != FCGI_ROLE_RESPONDER)
        out.data[FCGI_RECORD_HEADER_SIZE + 1] = (uint8_t)role;   /* BEGIN body: role low byte */
    return out;
}

static enum request_verdict feed(struct request_reader *reader, const void *data, size_t length)
{
    assert_int_equal(dt_request_reader_room(reader, length), 0);
    memcpy(reader->data + reader->length, data, length);
    reader->length += length;
    return dt_request_reader_parse(reader);
}

static void whole_request(void **state)
{
    struct fcgi_buffer bytes = request("a=1&b=2", FCGI_ROLE_RESPONDER);
    struct request_reader reader;
    size_t length;
    char *body;

    dt_request_reader_init(&reader, 1024);
    assert_int_equal(feed(&reader, bytes.data, bytes.length), REQUEST_COMPLETE);
    assert_int_equal(reader.request_length, bytes.length);
    assert_true(reader.head_length > 16 && reader.head_length < bytes.length);
    body = dt_request_reader_take_body(&reader, &length);
    assert_int_equal(length, 7);
    assert_string_equal(body, "a=1&b=2");
    free(body);
    dt_request_reader_free(&reader);
    dt_fcgi_buffer_free(&bytes);
}

static void one_byte_at_a_time(void **state)
{
    struct fcgi_buffer bytes = request("payload", FCGI_ROLE_RESPONDER);
    struct request_reader reader;

    dt_request_reader_init(&reader, 1024);
    for (size_t i = 0; i + 1 < bytes.length; i++)
        assert_int_equal(feed(&reader, bytes.data + i, 1), REQUEST_NEED_MORE);
    assert_int_equal(feed(&reader, bytes.data + bytes.length - 1, 1), REQUEST_COMPLETE);
    assert_int_equal(reader.body_length, 7);
    dt_request_reader_free(&reader);
    dt_fcgi_buffer_free(&bytes);
}

static void body_over_the_bound(void **state)
{
    char big[2048];
    struct fcgi_buffer bytes;
    struct request_reader reader;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    bytes = request(big, FCGI_ROLE_RESPONDER);
    dt_request_reader_init(&reader, 1024);
    assert_int_equal(feed(&reader, bytes.data, bytes.length), REQUEST_TOO_LARGE);
    assert_true(reader.head_length > 0);   /* the head is whole: a 413 can be answered */
    dt_request_reader_free(&reader);
    dt_fcgi_buffer_free(&bytes);
}

static void expect_invalid(const uint8_t *data, size_t length)
{
    struct request_reader reader;

    dt_request_reader_init(&reader, 1 << 20);
    assert_int_equal(feed(&reader, data, length), REQUEST_INVALID);
    assert_non_null(reader.why);
    dt_request_reader_free(&reader);
}

static size_t begin(uint8_t *out, uint16_t role)
{
    dt_fcgi_begin_request_encode(out, 1, role, 0);
    return 16;
}

static size_t record(uint8_t *out, uint8_t type, uint16_t id, const void *content, uint16_t length)
{
    dt_fcgi_header_encode(out, type, id, length, 0);
    if (length)
        memcpy(out + 8, content, length);
    return 8u + length;
}

static void hostile_records_never_pass(void **state)
{
    static uint8_t data[200000];
    uint8_t pairs[64];
    size_t used;

    /* FCGI_GET_VALUES: libfcgi 2.4.2 overflows a stack buffer answering it. */
    used = record(data, FCGI_TYPE_GET_VALUES, 0, "\x0e\x00" "FCGI_MAX_CONNS", 16);
    expect_invalid(data, used);
    /* ... also once the request began, in the body. */
    used = begin(data, FCGI_ROLE_RESPONDER);
    used += record(data + used, FCGI_TYPE_PARAMS, 1, NULL, 0);
    used += record(data + used, FCGI_TYPE_GET_VALUES, 0, "\x0e\x00" "FCGI_MAX_CONNS", 16);
    expect_invalid(data, used);
    /* A value length near 2^31 in a tiny stream (the CVE-2025-23016 shape). */
    used = begin(data, FCGI_ROLE_RESPONDER);
    used += record(data + used, FCGI_TYPE_PARAMS, 1, "\x01\xff\xff\xff\xf0" "a", 6);
    used += record(data + used, FCGI_TYPE_PARAMS, 1, NULL, 0);
    expect_invalid(data, used);
    /* Roles, versions, order, multiplexing, aborts. */
    used = begin(data, FCGI_ROLE_AUTHORIZER);
    expect_invalid(data, used);
    used = begin(data, FCGI_ROLE_RESPONDER);
    data[0] = 2;
    expect_invalid(data, used);
    used = record(data, FCGI_TYPE_STDIN, 1, "x", 1);
    expect_invalid(data, used);
    used = begin(data, FCGI_ROLE_RESPONDER);
    used += record(data + used, FCGI_TYPE_STDIN, 1, NULL, 0);
    expect_invalid(data, used);
    used = begin(data, FCGI_ROLE_RESPONDER);
    used += record(data + used, FCGI_TYPE_PARAMS, 2, NULL, 0);
    expect_invalid(data, used);
    used = begin(data, FCGI_ROLE_RESPONDER);
    used += record(data + used, FCGI_TYPE_PARAMS, 1, NULL, 0);
    used += record(data + used, FCGI_TYPE_ABORT_REQUEST, 1, NULL, 0);
    expect_invalid(data, used);
    /* An empty name, and a flood of tiny params. */
    used = begin(data, FCGI_ROLE_RESPONDER);
    used += record(data + used, FCGI_TYPE_PARAMS, 1, "\x00\x01v", 3);
    used += record(data + used, FCGI_TYPE_PARAMS, 1, NULL, 0);
    expect_invalid(data, used);
    used = begin(data, FCGI_ROLE_RESPONDER);
    for (int i = 0; i < 1025; i++)
        used += record(data + used, FCGI_TYPE_PARAMS, 1, "\x01\x00" "A", 3);
    used += record(data + used, FCGI_TYPE_PARAMS, 1, NULL, 0);
    expect_invalid(data, used);
    /* Params over 64 KiB, spread across records. */
    used = begin(data, FCGI_ROLE_RESPONDER);
    for (int i = 0; i < 3; i++) {
        memset(pairs, 'x', sizeof(pairs));
        dt_fcgi_header_encode(data + used, FCGI_TYPE_PARAMS, 1, 30000, 0);
        memset(data + used + 8, 'x', 30000);
        used += 8 + 30000;
    }
    expect_invalid(data, used);
    /* Garbage. */
    memset(data, 'G', 64);
    expect_invalid(data, 64);
}

/* A body in 1-byte records with 255 bytes of padding each: 264 bytes on
 * the wire per byte of body.  Parsed records are dropped as they go, so
 * what the reader holds stays near one record, not 264 times the body. */
static void tiny_padded_body_records_do_not_pile_up(void **state)
{
    struct fcgi_buffer head = request(NULL, FCGI_ROLE_RESPONDER);
    struct request_reader reader;
    uint8_t record[8 + 1 + 255] = { 0 };
    size_t head_length = head.length - 8;   /* without the empty STDIN */
    size_t most = 0;

    dt_request_reader_init(&reader, 1 << 20);
    assert_int_equal(feed(&reader, head.data, head_length), REQUEST_NEED_MORE);
    dt_fcgi_header_encode(record, FCGI_TYPE_STDIN, 1, 1, 255);
    record[8] = 'x';
    for (int i = 0; i < 20000; i++) {
        assert_int_equal(feed(&reader, record, sizeof(record)), REQUEST_NEED_MORE);
        if (reader.length > most)
            most = reader.length;
    }
    assert_true(most <= head_length + sizeof(record));
    assert_int_equal(reader.body_length, 20000);
    assert_int_equal(feed(&reader, head.data + head_length, 8), REQUEST_COMPLETE);
    assert_int_equal(reader.request_length, head_length + 20000 * sizeof(record) + 8);
    assert_int_equal(reader.trailing_length, 0);
    dt_request_reader_free(&reader);
    dt_fcgi_buffer_free(&head);
}

static void verdicts_are_final(void **state)
{
    uint8_t garbage[16];
    struct request_reader reader;

    memset(garbage, 'G', sizeof(garbage));
    dt_request_reader_init(&reader, 1024);
    assert_int_equal(feed(&reader, garbage, sizeof(garbage)), REQUEST_INVALID);
    assert_int_equal(dt_request_reader_parse(&reader), REQUEST_INVALID);
    dt_request_reader_free(&reader);
}

/* The params as a job gets them: packed NAME=value strings, HTTP_PROXY
 * left out. */
static void params_as_strings(void **state)
{
    static const char *const sent[] = { "SCRIPT_NAME=/x", "HTTP_PROXY=http://evil:1",
                                        "EMPTY", "QUERY_STRING=a=1&b=2" };
    struct fcgi_buffer bytes = { 0 };
    struct request_reader reader;
    static const char packed[] = "SCRIPT_NAME=/x\0EMPTY=\0QUERY_STRING=a=1&b=2\0";
    char *params;

    (void)state;
    assert_int_equal(dt_fcgi_request_build(&bytes, 3, FCGI_RECORD_FLAG_KEEP_CONN, sent, 4, "", 0), 0);
    dt_request_reader_init(&reader, 1024);
    assert_int_equal(feed(&reader, bytes.data, bytes.length), REQUEST_COMPLETE);
    assert_int_equal(reader.request_id, 3);
    assert_int_equal(reader.keep_connection, 1);
    params = dt_request_reader_params(&reader);
    assert_non_null(params);
    assert_memory_equal(params, packed, sizeof(packed));   /* the last NUL: the end */
    assert_int_equal(dt_request_params_size(params), sizeof(packed));
    assert_int_equal(dt_request_params_size(""), 1);
    assert_string_equal(dt_request_param(params, "QUERY_STRING"), "a=1&b=2");
    assert_string_equal(dt_request_param(params, "EMPTY"), "");
    assert_null(dt_request_param(params, "HTTP_PROXY"));
    assert_null(dt_request_param(params, "SCRIPT"));   /* a prefix is not a name */
    free(params);
    dt_request_reader_free(&reader);
    dt_fcgi_buffer_free(&bytes);
}

/* A kept-alive connection's next request parses from a clean state, and
 * the flag follows each BEGIN_REQUEST. */
static void reset_between_requests(void **state)
{
    static const char *const sent[] = { "SCRIPT_NAME=/x" };
    struct fcgi_buffer first = { 0 }, second = { 0 };
    struct request_reader reader;
    size_t length;

    (void)state;
    assert_int_equal(dt_fcgi_request_build(&first, 1, FCGI_RECORD_FLAG_KEEP_CONN, sent, 1, "one", 3), 0);
    assert_int_equal(dt_fcgi_request_build(&second, 2, 0, sent, 1, "", 0), 0);
    dt_request_reader_init(&reader, 1024);
    assert_int_equal(feed(&reader, first.data, first.length), REQUEST_COMPLETE);
    free(dt_request_reader_take_body(&reader, &length));
    dt_request_reader_reset(&reader);
    assert_int_equal(reader.length, 0);
    assert_non_null(reader.data);   /* the small buffer is kept */
    assert_int_equal(feed(&reader, second.data, second.length), REQUEST_COMPLETE);
    assert_int_equal(reader.request_id, 2);
    assert_int_equal(reader.keep_connection, 0);
    assert_int_equal(reader.body_length, 0);
    dt_request_reader_free(&reader);
    dt_fcgi_buffer_free(&first);
    dt_fcgi_buffer_free(&second);
}

/* One record with `padding` bytes of padding (0-255, any value the spec allows). */
static size_t padded_record(uint8_t *out, uint8_t type, uint16_t id, const void *content,
                            uint16_t length, uint8_t padding)
{
    dt_fcgi_header_encode(out, type, id, length, padding);
    if (length)
        memcpy(out + 8, content, length);
    memset(out + 8 + length, 0xA5, padding);   /* padding's value means nothing */
    return 8u + length + padding;
}

/* A whole request whose every record carries `padding` bytes of padding;
 * *head_end gets where its head ends as sent. */
static size_t padded_request(uint8_t *out, uint16_t id, uint8_t flags, uint8_t padding,
                             size_t *head_end)
{
    static const uint8_t pairs[] = "\x0b\x02SCRIPT_NAME/x\x0e\x04REQUEST_METHODPOST";
    uint8_t begin_body[8] = { 0, FCGI_ROLE_RESPONDER, flags, 0, 0, 0, 0, 0 };
    size_t used = 0;

    used += padded_record(out + used, FCGI_TYPE_BEGIN_REQUEST, id, begin_body, 8, padding);
    used += padded_record(out + used, FCGI_TYPE_PARAMS, id, pairs, 15, padding);
    used += padded_record(out + used, FCGI_TYPE_PARAMS, id, pairs + 15, sizeof(pairs) - 1 - 15,
                          padding);
    used += padded_record(out + used, FCGI_TYPE_PARAMS, id, NULL, 0, padding);
    *head_end = used;
    used += padded_record(out + used, FCGI_TYPE_STDIN, id, "bo", 2, padding);
    used += padded_record(out + used, FCGI_TYPE_STDIN, id, "dy", 2, padding);
    used += padded_record(out + used, FCGI_TYPE_STDIN, id, NULL, 0, padding);
    return used;
}

/* The spec allows padding on every record, BEGIN_REQUEST included: any
 * amount, fed whole or a byte at a time.  The head kept for libfcgi opens
 * with a plain 16-byte BEGIN_REQUEST. */
static void padding_on_every_record(void **state)
{
    static const uint8_t paddings[] = { 0, 1, 7, 8, 200, 255 };
    uint8_t data[8 * 300];
    struct request_reader reader;

    (void)state;
    for (size_t p = 0; p < sizeof(paddings); p++) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            size_t head_end, length = padded_request(data, 7, FCGI_RECORD_FLAG_KEEP_CONN,
                                                     paddings[p], &head_end);
            enum request_verdict verdict = REQUEST_NEED_MORE;
            char *params;

            dt_request_reader_init(&reader, 1024);
            if (bytewise)
                for (size_t i = 0; i < length; i++)
                    verdict = feed(&reader, data + i, 1);
            else
                verdict = feed(&reader, data, length);
            assert_int_equal(verdict, REQUEST_COMPLETE);
            assert_int_equal(reader.request_id, 7);
            assert_int_equal(reader.keep_connection, 1);
            assert_int_equal(reader.request_length, length);
            assert_int_equal(reader.trailing_length, 0);
            assert_string_equal(reader.body, "body");
            /* The head as libfcgi gets it: BEGIN_REQUEST unpadded, the
             * PARAMS records as sent. */
            assert_int_equal(reader.head_length, head_end - paddings[p]);
            assert_int_equal(reader.data[6], 0);
            assert_memory_equal(reader.data, data, 6);
            assert_memory_equal(reader.data + 8, data + 8, 8);
            assert_memory_equal(reader.data + 16, data + 16 + paddings[p], head_end - 16 - paddings[p]);
            params = dt_request_reader_params(&reader);
            assert_non_null(params);
            assert_string_equal(dt_request_param(params, "SCRIPT_NAME"), "/x");
            assert_string_equal(dt_request_param(params, "REQUEST_METHOD"), "POST");
            free(params);
            dt_request_reader_free(&reader);
        }
    }
}

/* A bad record's reason names what was wrong, not a generic complaint. */
static void reasons_say_what_was_wrong(void **state)
{
    static const struct {
        const char *why;
        uint8_t type;
        uint16_t begin_length;   /* 0: no BEGIN_REQUEST first */
        int after_params;
    } cases[] = {
        { "a request opened with a record other than BEGIN_REQUEST", FCGI_TYPE_PARAMS, 0, 0 },
        { "ABORT_REQUEST for no open request", FCGI_TYPE_ABORT_REQUEST, 0, 0 },
        { "a BEGIN_REQUEST body other than 8 bytes", FCGI_TYPE_BEGIN_REQUEST, 16, 0 },
        { "a second BEGIN_REQUEST before the params ended", FCGI_TYPE_BEGIN_REQUEST, 8, 0 },
        { "ABORT_REQUEST before the params ended", FCGI_TYPE_ABORT_REQUEST, 8, 0 },
        { "a STDIN record before the params ended", FCGI_TYPE_STDIN, 8, 0 },
        { "a DATA record (the filter role is not served)", FCGI_TYPE_DATA, 8, 1 },
        { "ABORT_REQUEST before the body ended", FCGI_TYPE_ABORT_REQUEST, 8, 1 },
        { "a PARAMS record after the params ended", FCGI_TYPE_PARAMS, 8, 1 },
        { "a second BEGIN_REQUEST before the body ended", FCGI_TYPE_BEGIN_REQUEST, 8, 1 },
    };
    uint8_t data[128], body[16] = { 0, FCGI_ROLE_RESPONDER };
    struct request_reader reader;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t used = 0;

        if (cases[i].begin_length)
            used += record(data, FCGI_TYPE_BEGIN_REQUEST, 1, body, cases[i].begin_length);
        if (cases[i].after_params)
            used += record(data + used, FCGI_TYPE_PARAMS, 1, NULL, 0);
        if (cases[i].begin_length == 8)
            used += record(data + used, cases[i].type, 1, body, 8);
        else if (!cases[i].begin_length)
            used += record(data + used, cases[i].type, 1, NULL, 0);
        dt_request_reader_init(&reader, 1024);
        assert_int_equal(feed(&reader, data, used), REQUEST_INVALID);
        assert_string_equal(reader.why, cases[i].why);
        dt_request_reader_free(&reader);
    }
}

/* Requests pipelined on a kept connection: what was read past the first
 * is the start of the next, kept by the reset and parsed in turn. */
static void pipelined_requests_are_kept_for_the_next(void **state)
{
    static const char *const sent[] = { "SCRIPT_NAME=/x" };
    struct fcgi_buffer wire = { 0 };
    struct request_reader reader;
    size_t one, two, length;
    uint8_t padded[8 * 300];
    size_t head_end, padded_length = padded_request(padded, 3, 0, 255, &head_end);

    (void)state;
    assert_int_equal(dt_fcgi_request_build(&wire, 1, FCGI_RECORD_FLAG_KEEP_CONN, sent, 1, "one", 3), 0);
    one = wire.length;
    assert_int_equal(dt_fcgi_request_build(&wire, 2, FCGI_RECORD_FLAG_KEEP_CONN, sent, 1, "two", 3), 0);
    two = wire.length - one;
    assert_int_equal(dt_fcgi_buffer_append(&wire, padded, padded_length), 0);

    /* All three, and a few bytes of a fourth, in one read. */
    dt_request_reader_init(&reader, 1024);
    assert_int_equal(feed(&reader, wire.data, wire.length), REQUEST_COMPLETE);
    assert_int_equal(feed(&reader, "\x01\x01\x00", 3), REQUEST_COMPLETE);
    assert_int_equal(reader.request_id, 1);
    assert_int_equal(reader.trailing_length, two + padded_length + 3);
    assert_true(dt_request_reader_next_is_request(&reader));
    free(dt_request_reader_take_body(&reader, &length));

    dt_request_reader_reset(&reader);
    assert_int_equal(reader.length, two + padded_length + 3);
    assert_int_equal(dt_request_reader_parse(&reader), REQUEST_COMPLETE);
    assert_int_equal(reader.request_id, 2);
    assert_string_equal(reader.body, "two");
    assert_true(dt_request_reader_next_is_request(&reader));

    dt_request_reader_reset(&reader);
    assert_int_equal(dt_request_reader_parse(&reader), REQUEST_COMPLETE);
    assert_int_equal(reader.request_id, 3);
    assert_string_equal(reader.body, "body");
    assert_int_equal(reader.trailing_length, 3);
    assert_true(dt_request_reader_next_is_request(&reader));   /* as far as 3 bytes go */

    /* The fourth's start waits for the rest of it. */
    dt_request_reader_reset(&reader);
    assert_int_equal(reader.length, 3);
    assert_int_equal(dt_request_reader_parse(&reader), REQUEST_NEED_MORE);
    assert_int_equal(feed(&reader, wire.data + 3, one - 3), REQUEST_COMPLETE);
    assert_int_equal(reader.request_id, 1);
    assert_int_equal(reader.trailing_length, 0);
    assert_false(dt_request_reader_next_is_request(&reader));
    dt_request_reader_reset(&reader);
    assert_int_equal(reader.length, 0);
    dt_request_reader_free(&reader);
    dt_fcgi_buffer_free(&wire);
}

/* Bytes past a request that do not start one: an abort, garbage. */
static void trailing_bytes_that_are_not_a_request(void **state)
{
    struct fcgi_buffer wire = request("", FCGI_ROLE_RESPONDER);
    struct request_reader reader;
    uint8_t abort_record[8];

    (void)state;
    dt_fcgi_header_encode(abort_record, FCGI_TYPE_ABORT_REQUEST, 1, 0, 0);
    dt_request_reader_init(&reader, 1024);
    assert_int_equal(feed(&reader, wire.data, wire.length), REQUEST_COMPLETE);
    assert_false(dt_request_reader_next_is_request(&reader));   /* nothing past it */
    assert_int_equal(feed(&reader, abort_record, 2), REQUEST_COMPLETE);
    assert_false(dt_request_reader_next_is_request(&reader));
    dt_request_reader_free(&reader);

    dt_request_reader_init(&reader, 1024);
    assert_int_equal(feed(&reader, wire.data, wire.length), REQUEST_COMPLETE);
    assert_int_equal(feed(&reader, "G", 1), REQUEST_COMPLETE);
    assert_false(dt_request_reader_next_is_request(&reader));
    dt_request_reader_free(&reader);

    /* A request's first byte alone may begin one. */
    dt_request_reader_init(&reader, 1024);
    assert_int_equal(feed(&reader, wire.data, wire.length), REQUEST_COMPLETE);
    assert_int_equal(feed(&reader, "\x01", 1), REQUEST_COMPLETE);
    assert_true(dt_request_reader_next_is_request(&reader));
    dt_request_reader_free(&reader);
    dt_fcgi_buffer_free(&wire);
}

/* A large read buffer is given back between requests, unless it holds
 * the start of the next. */
static void reset_keeps_a_large_buffer_only_for_pipelined_bytes(void **state)
{
    static const char *const sent[] = { "SCRIPT_NAME=/x" };
    static char big[40000];
    struct fcgi_buffer wire = { 0 };
    struct request_reader reader;
    size_t first, length;

    (void)state;
    memset(big, 'b', sizeof(big) - 1);
    assert_int_equal(dt_fcgi_request_build(&wire, 1, FCGI_RECORD_FLAG_KEEP_CONN, sent, 1, big,
                                        sizeof(big) - 1), 0);
    first = wire.length;
    assert_int_equal(dt_fcgi_request_build(&wire, 2, 0, sent, 1, "2", 1), 0);
    dt_request_reader_init(&reader, 1 << 20);
    assert_int_equal(feed(&reader, wire.data, wire.length), REQUEST_COMPLETE);
    assert_true(reader.capacity > REQUEST_READER_KEPT_BUFFER);
    free(dt_request_reader_take_body(&reader, &length));
    dt_request_reader_reset(&reader);
    assert_int_equal(reader.length, wire.length - first);
    assert_int_equal(dt_request_reader_parse(&reader), REQUEST_COMPLETE);
    assert_string_equal(reader.body, "2");
    dt_request_reader_reset(&reader);   /* nothing past it: the big buffer goes */
    assert_null(reader.data);
    assert_int_equal(reader.capacity, 0);
    dt_request_reader_free(&reader);
    dt_fcgi_buffer_free(&wire);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_request),
        cmocka_unit_test(one_byte_at_a_time),
        cmocka_unit_test(body_over_the_bound),
        cmocka_unit_test(hostile_records_never_pass),
        cmocka_unit_test(tiny_padded_body_records_do_not_pile_up),
        cmocka_unit_test(verdicts_are_final),
        cmocka_unit_test(params_as_strings),
        cmocka_unit_test(reset_between_requests),
        cmocka_unit_test(padding_on_every_record),
        cmocka_unit_test(reasons_say_what_was_wrong),
        cmocka_unit_test(pipelined_requests_are_kept_for_the_next),
        cmocka_unit_test(trailing_bytes_that_are_not_a_request),
        cmocka_unit_test(reset_keeps_a_large_buffer_only_for_pipelined_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
