/*
 * test_fcgi_record.c - unit tests for the FastCGI wire format in
 * src/fcgi_record.c: round trips, both length forms, and the hostile
 * inputs (truncated, overlong near 2^31) the daemon must survive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fcgi/fcgi_record.h"

static void header_round_trip(void **state)
{
    uint8_t bytes[FCGI_RECORD_HEADER_SIZE];
    struct fcgi_header header;

    dt_fcgi_header_encode(bytes, FCGI_TYPE_STDOUT, 0xabcd, 0x1234, 7);
    assert_int_equal(bytes[0], 1);
    assert_int_equal(bytes[1], FCGI_TYPE_STDOUT);
    assert_int_equal(bytes[2], 0xab);
    assert_int_equal(bytes[3], 0xcd);
    assert_int_equal(bytes[4], 0x12);
    assert_int_equal(bytes[5], 0x34);
    assert_int_equal(bytes[6], 7);
    assert_int_equal(bytes[7], 0);

    assert_int_equal(dt_fcgi_header_decode(bytes, sizeof bytes, &header), 0);
    assert_int_equal(header.version, FCGI_RECORD_VERSION);
    assert_int_equal(header.type, FCGI_TYPE_STDOUT);
    assert_int_equal(header.request_id, 0xabcd);
    assert_int_equal(header.content_length, 0x1234);
    assert_int_equal(header.padding_length, 7);
}

static void header_rejects_short_and_wrong_version(void **state)
{
    uint8_t bytes[FCGI_RECORD_HEADER_SIZE];
    struct fcgi_header header;

    dt_fcgi_header_encode(bytes, FCGI_TYPE_PARAMS, 1, 0, 0);
    for (size_t len = 0; len < sizeof bytes; len++)
        assert_int_equal(dt_fcgi_header_decode(bytes, len, &header), -1);
    bytes[0] = 2;
    assert_int_equal(dt_fcgi_header_decode(bytes, sizeof bytes, &header), -1);
    bytes[0] = 0;
    assert_int_equal(dt_fcgi_header_decode(bytes, sizeof bytes, &header), -1);
}

/* Any padding 0-255 is legal on any record type, BEGIN_REQUEST included:
 * the header decoder takes every one as sent, the reserved byte ignored. */
static void header_takes_any_padding_on_any_type(void **state)
{
    uint8_t bytes[FCGI_RECORD_HEADER_SIZE];
    struct fcgi_header header;

    (void)state;
    for (unsigned type = FCGI_TYPE_BEGIN_REQUEST; type <= FCGI_TYPE_UNKNOWN_TYPE; type++) {
        for (unsigned padding = 0; padding <= 255; padding++) {
            dt_fcgi_header_encode(bytes, (uint8_t)type, 1, 8, (uint8_t)padding);
            bytes[7] = 0xff;
            assert_int_equal(dt_fcgi_header_decode(bytes, sizeof bytes, &header), 0);
            assert_int_equal(header.type, type);
            assert_int_equal(header.content_length, 8);
            assert_int_equal(header.padding_length, padding);
        }
    }
}

static void padding_rounds_to_eight(void **state)
{
    assert_int_equal(dt_fcgi_padding_for(0), 0);
    assert_int_equal(dt_fcgi_padding_for(1), 7);
    assert_int_equal(dt_fcgi_padding_for(8), 0);
    assert_int_equal(dt_fcgi_padding_for(9), 7);
    assert_int_equal(dt_fcgi_padding_for(65535), 1);
}

static void param_short_lengths_round_trip(void **state)
{
    uint8_t bytes[64];
    size_t consumed, name_len, value_len;
    const uint8_t *name, *value;

    size_t needed = dt_fcgi_param_encode(bytes, sizeof bytes, "NAME", 4, "value", 5);
    assert_int_equal(needed, 2 + 4 + 5);
    assert_int_equal(bytes[0], 4);
    assert_int_equal(bytes[1], 5);
    assert_memory_equal(bytes + 2, "NAMEvalue", 9);

    assert_int_equal(dt_fcgi_param_decode(bytes, needed, &consumed, &name, &name_len, &value, &value_len), 0);
    assert_int_equal(consumed, needed);
    assert_int_equal(name_len, 4);
    assert_int_equal(value_len, 5);
    assert_memory_equal(name, "NAME", 4);
    assert_memory_equal(value, "value", 5);
}

static void param_empty_value(void **state)
{
    uint8_t bytes[16];
    size_t consumed, name_len, value_len;
    const uint8_t *name, *value;

    size_t needed = dt_fcgi_param_encode(bytes, sizeof bytes, "Q", 1, "", 0);
    assert_int_equal(needed, 3);
    assert_int_equal(dt_fcgi_param_decode(bytes, needed, &consumed, &name, &name_len, &value, &value_len), 0);
    assert_int_equal(consumed, 3);
    assert_int_equal(value_len, 0);
}

static void param_length_form_switches_at_128(void **state)
{
    char value[200];
    uint8_t bytes[256];
    size_t consumed, name_len, value_len;
    const uint8_t *name, *value_out;

    memset(value, 'v', sizeof value);
    /* 127 still fits one byte. */
    size_t needed = dt_fcgi_param_encode(bytes, sizeof bytes, "N", 1, value, 127);
    assert_int_equal(needed, 1 + 1 + 1 + 127);
    assert_int_equal(bytes[1], 127);

    /* 128 needs four bytes with the top bit set. */
    needed = dt_fcgi_param_encode(bytes, sizeof bytes, "N", 1, value, 128);
    assert_int_equal(needed, 1 + 4 + 1 + 128);
    assert_int_equal(bytes[0], 1);
    assert_int_equal(bytes[1], 0x80);
    assert_int_equal(bytes[2], 0);
    assert_int_equal(bytes[3], 0);
    assert_int_equal(bytes[4], 128);
    assert_int_equal(dt_fcgi_param_decode(bytes, needed, &consumed, &name, &name_len, &value_out,
                                       &value_len), 0);
    assert_int_equal(value_len, 128);
    assert_int_equal(consumed, needed);
    assert_memory_equal(value_out, value, 128);

    /* A long name too. */
    needed = dt_fcgi_param_encode(bytes, sizeof bytes, value, 130, "x", 1);
    assert_int_equal(needed, 4 + 1 + 130 + 1);
    assert_int_equal(dt_fcgi_param_decode(bytes, needed, &consumed, &name, &name_len, &value_out,
                                       &value_len), 0);
    assert_int_equal(name_len, 130);
    assert_int_equal(value_len, 1);
    assert_int_equal(value_out[0], 'x');
}

static void param_encode_is_snprintf_like(void **state)
{
    uint8_t bytes[8];

    memset(bytes, 0xee, sizeof bytes);
    assert_int_equal(dt_fcgi_param_encode(NULL, 0, "NAME", 4, "value", 5), 11);
    assert_int_equal(dt_fcgi_param_encode(bytes, sizeof bytes, "NAME", 4, "value", 5), 11);
    for (size_t i = 0; i < sizeof bytes; i++)
        assert_int_equal(bytes[i], 0xee);  /* nothing written when it does not fit */
    assert_int_equal(dt_fcgi_param_encode(NULL, 0, "N", 1, "v", (size_t)FCGI_RECORD_MAX_PARAM_LENGTH + 1), 0);
}

static void param_decode_rejects_truncation(void **state)
{
    uint8_t bytes[64];
    size_t consumed, name_len, value_len;
    const uint8_t *name, *value;

    size_t needed = dt_fcgi_param_encode(bytes, sizeof bytes, "NAME", 4, "value", 5);
    for (size_t len = 0; len < needed; len++)
        assert_int_equal(dt_fcgi_param_decode(bytes, len, &consumed, &name, &name_len, &value,
                                           &value_len), -1);

    /* A 4-byte length cut short. */
    uint8_t long_prefix[] = {0x80, 0x00, 0x01};
    assert_int_equal(dt_fcgi_param_decode(long_prefix, sizeof long_prefix, &consumed, &name,
                                       &name_len, &value, &value_len), -1);
    assert_int_equal(dt_fcgi_param_decode(NULL, 0, &consumed, &name, &name_len, &value, &value_len), -1);
}

static void param_decode_rejects_overlong_lengths(void **state)
{
    size_t consumed, name_len, value_len;
    const uint8_t *name, *value;

    /* Name 2^31-1 and value 2^31-1: their sum would wrap a 32-bit size. */
    uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'a', 'b'};
    assert_int_equal(dt_fcgi_param_decode(huge, sizeof huge, &consumed, &name, &name_len, &value,
                                       &value_len), -1);

    /* Name fits, value announces 2^31-1. */
    uint8_t value_too_long[] = {1, 0xff, 0xff, 0xff, 0xff, 'n', 'v'};
    assert_int_equal(dt_fcgi_param_decode(value_too_long, sizeof value_too_long, &consumed, &name,
                                       &name_len, &value, &value_len), -1);

    /* 2^31 with the flag: masked to 0 by the protocol, so a valid empty name. */
    uint8_t flag_only[] = {0x80, 0x00, 0x00, 0x00, 0};
    assert_int_equal(dt_fcgi_param_decode(flag_only, sizeof flag_only, &consumed, &name, &name_len,
                                       &value, &value_len), 0);
    assert_int_equal(name_len, 0);
    assert_int_equal(value_len, 0);
    assert_int_equal(consumed, 5);

    /* One byte more than is there. */
    uint8_t off_by_one[] = {2, 2, 'n', 'n', 'v'};
    assert_int_equal(dt_fcgi_param_decode(off_by_one, sizeof off_by_one, &consumed, &name, &name_len,
                                       &value, &value_len), -1);
}

static void param_decode_walks_a_stream(void **state)
{
    uint8_t bytes[64];
    size_t used = 0, consumed, name_len, value_len;
    const uint8_t *name, *value;

    used += dt_fcgi_param_encode(bytes + used, sizeof bytes - used, "A", 1, "1", 1);
    used += dt_fcgi_param_encode(bytes + used, sizeof bytes - used, "BB", 2, "22", 2);
    assert_int_equal(dt_fcgi_param_decode(bytes, used, &consumed, &name, &name_len, &value, &value_len), 0);
    assert_int_equal(consumed, 4);
    assert_int_equal(dt_fcgi_param_decode(bytes + consumed, used - consumed, &consumed, &name,
                                       &name_len, &value, &value_len), 0);
    assert_int_equal(consumed, 6);
    assert_memory_equal(name, "BB", 2);
}

static void begin_and_end_request(void **state)
{
    uint8_t begin[16], end[16];
    struct fcgi_header header;
    uint16_t role;
    uint8_t flags, protocol_status;
    uint32_t app_status;

    dt_fcgi_begin_request_encode(begin, 7, FCGI_ROLE_RESPONDER, FCGI_RECORD_FLAG_KEEP_CONN);
    assert_int_equal(dt_fcgi_header_decode(begin, sizeof begin, &header), 0);
    assert_int_equal(header.type, FCGI_TYPE_BEGIN_REQUEST);
    assert_int_equal(header.request_id, 7);
    assert_int_equal(header.content_length, 8);
    assert_int_equal(dt_fcgi_begin_request_decode(begin + 8, 8, &role, &flags), 0);
    assert_int_equal(role, FCGI_ROLE_RESPONDER);
    assert_int_equal(flags, FCGI_RECORD_FLAG_KEEP_CONN);
    assert_int_equal(dt_fcgi_begin_request_decode(begin + 8, 7, &role, &flags), -1);

    dt_fcgi_end_request_encode(end, 7, 0xdeadbeef, FCGI_PROTOCOL_STATUS_OVERLOADED);
    assert_int_equal(dt_fcgi_header_decode(end, sizeof end, &header), 0);
    assert_int_equal(header.type, FCGI_TYPE_END_REQUEST);
    assert_int_equal(dt_fcgi_end_request_decode(end + 8, 8, &app_status, &protocol_status), 0);
    assert_int_equal(app_status, 0xdeadbeef);
    assert_int_equal(protocol_status, FCGI_PROTOCOL_STATUS_OVERLOADED);
    for (size_t len = 0; len < 8; len++)
        assert_int_equal(dt_fcgi_end_request_decode(end + 8, len, &app_status, &protocol_status), -1);
}

static void buffer_grows_and_consumes(void **state)
{
    struct fcgi_buffer buffer = {0};

    for (int i = 0; i < 1000; i++)
        assert_int_equal(dt_fcgi_buffer_append(&buffer, "abcdefgh", 8), 0);
    assert_int_equal(buffer.length, 8000);
    assert_true(buffer.capacity >= buffer.length);
    dt_fcgi_buffer_consume(&buffer, 7996);
    assert_int_equal(buffer.length, 4);
    assert_memory_equal(buffer.data, "efgh", 4);
    dt_fcgi_buffer_consume(&buffer, 100);
    assert_int_equal(buffer.length, 0);
    assert_int_equal(dt_fcgi_buffer_reserve(&buffer, SIZE_MAX), -1);
    dt_fcgi_buffer_free(&buffer);
    assert_null(buffer.data);
}

/* One decoded record of a built request. */
struct record {
    struct fcgi_header header;
    const uint8_t *content;
};

/* Splits a buffer into records, checking framing and padding on the way. */
static size_t split_records(const struct fcgi_buffer *buffer, struct record *records, size_t max)
{
    size_t offset = 0, count = 0;

    while (offset < buffer->length) {
        assert_true(count < max);
        struct record *record = &records[count++];
        assert_int_equal(dt_fcgi_header_decode(buffer->data + offset, buffer->length - offset,
                                            &record->header), 0);
        assert_int_equal((record->header.content_length + record->header.padding_length) % 8, 0);
        assert_true(record->header.padding_length < 8);
        record->content = buffer->data + offset + FCGI_RECORD_HEADER_SIZE;
        offset += FCGI_RECORD_HEADER_SIZE + record->header.content_length +
                  record->header.padding_length;
        assert_true(offset <= buffer->length);
    }
    return count;
}

/* Gathers one stream's content from the records of the given type. */
static size_t gather_stream(const struct record *records, size_t count, uint8_t type,
                            uint8_t *out, size_t capacity, int *saw_end)
{
    size_t length = 0;
    *saw_end = 0;
    for (size_t i = 0; i < count; i++) {
        if (records[i].header.type != type)
            continue;
        assert_false(*saw_end);  /* nothing after the empty record */
        if (records[i].header.content_length == 0) {
            *saw_end = 1;
            continue;
        }
        assert_true(length + records[i].header.content_length <= capacity);
        memcpy(out + length, records[i].content, records[i].header.content_length);
        length += records[i].header.content_length;
    }
    return length;
}

static void request_build_small(void **state)
{
    struct fcgi_buffer buffer = {0};
    struct record records[16];
    const char *params[] = {"REQUEST_METHOD=GET", "SCRIPT_NAME=/jobs/x", "EMPTY"};
    uint8_t stream[256];
    int saw_end;
    uint16_t role;
    uint8_t flags;

    assert_int_equal(dt_fcgi_request_build(&buffer, 3, 0, params, 3, "hi", 2), 0);
    size_t count = split_records(&buffer, records, 16);
    /* BEGIN, PARAMS, empty PARAMS, STDIN, empty STDIN. */
    assert_int_equal(count, 5);
    assert_int_equal(records[0].header.type, FCGI_TYPE_BEGIN_REQUEST);
    assert_int_equal(dt_fcgi_begin_request_decode(records[0].content, 8, &role, &flags), 0);
    assert_int_equal(role, FCGI_ROLE_RESPONDER);
    assert_int_equal(flags, 0);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(records[i].header.request_id, 3);

    size_t length = gather_stream(records, count, FCGI_TYPE_PARAMS, stream, sizeof stream, &saw_end);
    assert_true(saw_end);
    size_t offset = 0, consumed, name_len, value_len;
    const uint8_t *name, *value;
    const char *expected[][2] = {{"REQUEST_METHOD", "GET"}, {"SCRIPT_NAME", "/jobs/x"}, {"EMPTY", ""}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(dt_fcgi_param_decode(stream + offset, length - offset, &consumed, &name,
                                           &name_len, &value, &value_len), 0);
        assert_int_equal(name_len, strlen(expected[i][0]));
        assert_memory_equal(name, expected[i][0], name_len);
        assert_int_equal(value_len, strlen(expected[i][1]));
        assert_memory_equal(value, expected[i][1], value_len);
        offset += consumed;
    }
    assert_int_equal(offset, length);

    length = gather_stream(records, count, FCGI_TYPE_STDIN, stream, sizeof stream, &saw_end);
    assert_true(saw_end);
    assert_int_equal(length, 2);
    assert_memory_equal(stream, "hi", 2);
    dt_fcgi_buffer_free(&buffer);
}

static void request_build_splits_large_param_and_body(void **state)
{
    const size_t value_length = 150000, body_length = 140001;
    char *param = malloc(2 + value_length + 1);
    uint8_t *body = malloc(body_length);
    uint8_t *stream = malloc(300000);
    struct record records[32];
    struct fcgi_buffer buffer = {0};
    int saw_end;

    assert_non_null(param);
    assert_non_null(body);
    assert_non_null(stream);
    memcpy(param, "V=", 2);
    for (size_t i = 0; i < value_length; i++)
        param[2 + i] = (char)('a' + i % 26);
    param[2 + value_length] = '\0';
    for (size_t i = 0; i < body_length; i++)
        body[i] = (uint8_t)(i * 7);

    const char *params[] = {"A=1", param};
    assert_int_equal(dt_fcgi_request_build(&buffer, 1, FCGI_RECORD_FLAG_KEEP_CONN, params, 2, body,
                                        body_length), 0);
    size_t count = split_records(&buffer, records, 32);

    size_t params_records = 0, stdin_records = 0;
    for (size_t i = 0; i < count; i++) {
        assert_true(records[i].header.content_length <= FCGI_RECORD_MAX_CONTENT);
        params_records += records[i].header.type == FCGI_TYPE_PARAMS;
        stdin_records += records[i].header.type == FCGI_TYPE_STDIN;
    }
    /* 150010 bytes of params need 3 records, 140001 of body 3, plus the empty ones. */
    assert_int_equal(params_records, 4);
    assert_int_equal(stdin_records, 4);
    assert_int_equal(records[1].header.content_length, FCGI_RECORD_MAX_CONTENT);
    assert_int_equal(records[1].header.padding_length, 1);

    size_t length = gather_stream(records, count, FCGI_TYPE_PARAMS, stream, 300000, &saw_end);
    assert_true(saw_end);
    size_t consumed, name_len, value_len;
    const uint8_t *name, *value;
    assert_int_equal(dt_fcgi_param_decode(stream, length, &consumed, &name, &name_len, &value, &value_len), 0);
    assert_int_equal(dt_fcgi_param_decode(stream + consumed, length - consumed, &consumed, &name,
                                       &name_len, &value, &value_len), 0);
    assert_int_equal(name_len, 1);
    assert_int_equal(value_len, value_length);
    assert_memory_equal(value, param + 2, value_length);

    length = gather_stream(records, count, FCGI_TYPE_STDIN, stream, 300000, &saw_end);
    assert_true(saw_end);
    assert_int_equal(length, body_length);
    assert_memory_equal(stream, body, body_length);

    dt_fcgi_buffer_free(&buffer);
    free(param);
    free(body);
    free(stream);
}

static void request_build_without_params_or_body(void **state)
{
    struct fcgi_buffer buffer = {0};
    struct record records[8];

    assert_int_equal(dt_fcgi_request_build(&buffer, 1, 0, NULL, 0, NULL, 0), 0);
    size_t count = split_records(&buffer, records, 8);
    assert_int_equal(count, 3);
    assert_int_equal(records[1].header.type, FCGI_TYPE_PARAMS);
    assert_int_equal(records[1].header.content_length, 0);
    assert_int_equal(records[2].header.type, FCGI_TYPE_STDIN);
    assert_int_equal(records[2].header.content_length, 0);
    assert_int_equal(buffer.length, 3 * 8 + 8);
    dt_fcgi_buffer_free(&buffer);
}

static void record_append_keeps_existing_bytes(void **state)
{
    struct fcgi_buffer buffer = {0};
    struct fcgi_header header;

    assert_int_equal(dt_fcgi_buffer_append(&buffer, "prefix", 6), 0);
    assert_int_equal(dt_fcgi_record_append(&buffer, FCGI_TYPE_STDOUT, 9, "abc", 3), 0);
    assert_int_equal(buffer.length, 6 + 8 + 3 + 5);
    assert_memory_equal(buffer.data, "prefix", 6);
    assert_int_equal(dt_fcgi_header_decode(buffer.data + 6, buffer.length - 6, &header), 0);
    assert_int_equal(header.content_length, 3);
    assert_int_equal(header.padding_length, 5);
    assert_memory_equal(buffer.data + 14, "abc", 3);
    dt_fcgi_buffer_free(&buffer);
}

/* A trigger's whole answer: STDOUT with the head, empty STDOUT, END_REQUEST. */
static void short_response_layout(void **state)
{
    static const char head[] = "Status: 200 OK\r\n\r\n";   /* 18 bytes: 6 of padding */
    uint8_t out[128];
    struct fcgi_header header;
    uint32_t app_status;
    uint8_t protocol_status;
    size_t length = strlen(head);
    size_t needed = dt_fcgi_short_response_encode(NULL, 0, 7, head, (uint16_t)length);
    size_t offset = 0;

    (void)state;
    assert_int_equal(needed, 8 + 24 + 8 + 16);
    assert_int_equal(dt_fcgi_short_response_encode(out, sizeof(out), 7, head, (uint16_t)length), needed);
    assert_int_equal(dt_fcgi_header_decode(out, needed, &header), 0);
    assert_int_equal(header.type, FCGI_TYPE_STDOUT);
    assert_int_equal(header.request_id, 7);
    assert_int_equal(header.content_length, length);
    assert_int_equal(header.padding_length, 6);
    assert_memory_equal(out + 8, head, length);
    offset = 8 + 24;
    assert_int_equal(dt_fcgi_header_decode(out + offset, needed - offset, &header), 0);
    assert_int_equal(header.type, FCGI_TYPE_STDOUT);
    assert_int_equal(header.content_length, 0);
    offset += 8;
    assert_int_equal(dt_fcgi_header_decode(out + offset, needed - offset, &header), 0);
    assert_int_equal(header.type, FCGI_TYPE_END_REQUEST);
    assert_int_equal(header.request_id, 7);
    assert_int_equal(dt_fcgi_end_request_decode(out + offset + 8, 8, &app_status, &protocol_status), 0);
    assert_int_equal(app_status, 0);
    assert_int_equal(protocol_status, FCGI_PROTOCOL_STATUS_REQUEST_COMPLETE);
}

/* Too small a buffer: the size comes back and nothing is written. */
static void short_response_is_snprintf_like(void **state)
{
    uint8_t out[40];

    (void)state;
    memset(out, 0xaa, sizeof(out));
    /* "x" takes 8 + 1 + 7 of padding, then 8 and 16: 40, one more than given. */
    assert_int_equal(dt_fcgi_short_response_encode(out, sizeof(out) - 1, 1, "x", 1), 40);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xaa);
    assert_int_equal(dt_fcgi_short_response_encode(NULL, 0, 1, NULL, 0), 8 + 8 + 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_round_trip),
        cmocka_unit_test(header_rejects_short_and_wrong_version),
        cmocka_unit_test(header_takes_any_padding_on_any_type),
        cmocka_unit_test(padding_rounds_to_eight),
        cmocka_unit_test(param_short_lengths_round_trip),
        cmocka_unit_test(param_empty_value),
        cmocka_unit_test(param_length_form_switches_at_128),
        cmocka_unit_test(param_encode_is_snprintf_like),
        cmocka_unit_test(param_decode_rejects_truncation),
        cmocka_unit_test(param_decode_rejects_overlong_lengths),
        cmocka_unit_test(param_decode_walks_a_stream),
        cmocka_unit_test(begin_and_end_request),
        cmocka_unit_test(buffer_grows_and_consumes),
        cmocka_unit_test(request_build_small),
        cmocka_unit_test(request_build_splits_large_param_and_body),
        cmocka_unit_test(request_build_without_params_or_body),
        cmocka_unit_test(record_append_keeps_existing_bytes),
        cmocka_unit_test(short_response_layout),
        cmocka_unit_test(short_response_is_snprintf_like),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
