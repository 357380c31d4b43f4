/*
 * test_request_head.c - the params bound checked before libfcgi parses:
 * complete, incomplete (and how many bytes are needed), and every kind of
 * hostile opening a connection can send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "fcgi_record.h"
#include "request_head.h"

static size_t build(uint8_t *out, uint16_t role, const uint8_t *params, size_t params_length,
                    int end_params)
{
    size_t used = 0;

    fcgi_begin_request_encode(out, 1, role, 0);
    used += 16;
    if (params_length) {
        fcgi_header_encode(out + used, FCGI_TYPE_PARAMS, 1, (uint16_t)params_length, 0);
        memcpy(out + used + 8, params, params_length);
        used += 8 + params_length;
    }
    if (end_params) {
        fcgi_header_encode(out + used, FCGI_TYPE_PARAMS, 1, 0, 0);
        used += 8;
    }
    return used;
}

static enum request_head_verdict check(const uint8_t *data, size_t length, size_t *needed,
                                       const char **why)
{
    return request_head_check(data, length, REQUEST_HEAD_MAX_PARAMS_BYTES, needed, why);
}

static void complete_request(void **state)
{
    uint8_t data[256], params[64];
    size_t length = fcgi_param_encode(params, sizeof(params), "SCRIPT_NAME", 11, "/x", 2);
    size_t total = build(data, FCGI_ROLE_RESPONDER, params, length, 1), needed;
    const char *why;

    assert_int_equal(check(data, total, &needed, &why), REQUEST_HEAD_COMPLETE);
    /* Anything after the params (the body) is not our business here. */
    memcpy(data + total, "\x01\x05\x00\x01\x00\x00\x00\x00", 8);
    assert_int_equal(check(data, total + 8, &needed, &why), REQUEST_HEAD_COMPLETE);
}

static void every_prefix_is_incomplete_and_says_what_it_needs(void **state)
{
    uint8_t data[256], params[64];
    size_t length = fcgi_param_encode(params, sizeof(params), "A", 1, "b", 1);
    size_t total = build(data, FCGI_ROLE_RESPONDER, params, length, 1), needed;
    const char *why;

    for (size_t cut = 0; cut < total; cut++) {
        assert_int_equal(check(data, cut, &needed, &why), REQUEST_HEAD_INCOMPLETE);
        assert_true(needed > cut && needed <= total);
    }
}

static void hostile_openings_are_refused(void **state)
{
    uint8_t data[512], params[64];
    size_t needed, total;
    const char *why;
    /* A value length near 2^31 in a tiny stream (the CVE-2025-23016 shape). */
    static const uint8_t huge[] = { 0x01, 0xff, 0xff, 0xff, 0xf0, 'a' };

    total = build(data, FCGI_ROLE_RESPONDER, huge, sizeof(huge), 1);
    assert_int_equal(check(data, total, &needed, &why), REQUEST_HEAD_INVALID);

    total = build(data, FCGI_ROLE_AUTHORIZER, NULL, 0, 1);
    assert_int_equal(check(data, total, &needed, &why), REQUEST_HEAD_INVALID);
    assert_non_null(why);

    total = build(data, FCGI_ROLE_RESPONDER, NULL, 0, 1);
    data[0] = 2;   /* version */
    assert_int_equal(check(data, total, &needed, &why), REQUEST_HEAD_INVALID);

    /* STDIN before the params ended. */
    total = build(data, FCGI_ROLE_RESPONDER, NULL, 0, 0);
    fcgi_header_encode(data + total, FCGI_TYPE_STDIN, 1, 0, 0);
    assert_int_equal(check(data, total + 8, &needed, &why), REQUEST_HEAD_INVALID);

    /* A second request id: multiplexing. */
    total = build(data, FCGI_ROLE_RESPONDER, NULL, 0, 0);
    fcgi_header_encode(data + total, FCGI_TYPE_PARAMS, 2, 0, 0);
    assert_int_equal(check(data, total + 8, &needed, &why), REQUEST_HEAD_INVALID);

    /* FCGI_ABORT_REQUEST before anything. */
    fcgi_header_encode(data, FCGI_TYPE_ABORT_REQUEST, 1, 0, 0);
    assert_int_equal(check(data, 8, &needed, &why), REQUEST_HEAD_INVALID);

    /* An empty param name. */
    size_t length = fcgi_param_encode(params, sizeof(params), "", 0, "v", 1);
    total = build(data, FCGI_ROLE_RESPONDER, params, length, 1);
    assert_int_equal(check(data, total, &needed, &why), REQUEST_HEAD_INVALID);

    /* Garbage. */
    memset(data, 'G', 64);
    assert_int_equal(check(data, 64, &needed, &why), REQUEST_HEAD_INVALID);
}

static void params_bounded_in_bytes_and_count(void **state)
{
    static uint8_t data[200000], params[70000];
    size_t needed, total, used = 0;
    const char *why;

    /* 1025 tiny params: over the count. */
    for (int i = 0; i < 1025; i++)
        used += fcgi_param_encode(params + used, sizeof(params) - used, "A", 1, "", 0);
    total = build(data, FCGI_ROLE_RESPONDER, params, used, 1);
    assert_int_equal(check(data, total, &needed, &why), REQUEST_HEAD_INVALID);

    /* Over the byte bound, spread across records. */
    total = build(data, FCGI_ROLE_RESPONDER, NULL, 0, 0);
    for (int i = 0; i < 3; i++) {
        fcgi_header_encode(data + total, FCGI_TYPE_PARAMS, 1, 30000, 0);
        memset(data + total + 8, 'x', 30000);
        total += 8 + 30000;
    }
    assert_int_equal(check(data, total, &needed, &why), REQUEST_HEAD_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(complete_request),
        cmocka_unit_test(every_prefix_is_incomplete_and_says_what_it_needs),
        cmocka_unit_test(hostile_openings_are_refused),
        cmocka_unit_test(params_bounded_in_bytes_and_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
