/*
 * test_cgi_head.c - unit tests for src/cgi_head.c, what the FastCGI side
 * of the trigger client parses itself: FastCGI addresses, and the CGI
 * response head, including the partial and hostile input it sees from
 * the network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/cgi_head.h"

static void addresses(void **state)
{
    struct fcgi_address address;

    (void)state;
    assert_int_equal(dt_fcgi_address_parse("127.0.0.1:9000", &address), 0);
    assert_string_equal(address.host, "127.0.0.1");
    assert_int_equal(address.port, 9000);
    assert_false(address.is_ipv6);
    assert_int_equal(dt_fcgi_address_parse("[::1]:9000", &address), 0);
    assert_string_equal(address.host, "::1");
    assert_true(address.is_ipv6);
    assert_int_equal(dt_fcgi_address_parse("localhost:1", &address), 0);
    assert_int_equal(dt_fcgi_address_parse("app-1.example_net:65535", &address), 0);

    static const char *const bad[] = {
        "localhost", "[::1]", "::1:9000", ":9000", "host:99999", "host:0", "host:", "host:9x",
        "[::1]9000", "[::g]:1", "a b:1", "host:123456", "", "ho\nst:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (dt_fcgi_address_parse(bad[i], &address) != -1)
            fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(dt_fcgi_address_parse(NULL, &address), -1);

    char long_host[300];
    memset(long_host, 'a', sizeof long_host);
    strcpy(long_host + FCGI_HOST_SIZE, ":80");
    assert_int_equal(dt_fcgi_address_parse(long_host, &address), -1);
}

static void cgi_head_rejects_long_job_id(void **state)
{
    char head[200];
    struct cgi_head response;

    (void)state;
    snprintf(head, sizeof head, "X-Detach-Job: %.*s\r\n\r\n", CGI_JOB_ID_SIZE - 1,
             "0123456789012345678901234567890123456789012345678901234567890123456789");
    assert_int_equal(dt_cgi_response_parse(head, strlen(head), &response), (int)strlen(head));
    snprintf(head, sizeof head, "X-Detach-Job: %.*s\r\n\r\n", CGI_JOB_ID_SIZE,
             "0123456789012345678901234567890123456789012345678901234567890123456789");
    assert_int_equal(dt_cgi_response_parse(head, strlen(head), &response), -1);
    assert_int_equal(dt_cgi_response_parse("X-Detach-Job: a\x01b\r\n\r\n", 20, &response), -1);
}

static void cgi_head_too_long(void **state)
{
    size_t size = CGI_HEAD_MAX + 10;
    char *head = malloc(size);
    struct cgi_head response;

    (void)state;
    assert_non_null(head);
    memcpy(head, "X-Padding: ", 11);
    memset(head + 11, 'x', size - 11);
    assert_int_equal(dt_cgi_response_parse(head, 1000, &response), 0);
    assert_int_equal(dt_cgi_response_parse(head, size, &response), -1);
    free(head);
}

static void cgi_head_with_status(void **state)
{
    const char head[] = "Status: 503 Service Unavailable\r\nRetry-After: 10\r\n\r\n";
    struct cgi_head response;

    assert_int_equal(dt_cgi_response_parse(head, strlen(head), &response), (int)strlen(head));
    assert_int_equal(response.status, 503);

    const char lower[] = "content-type: text/plain\r\nstatus: 404\r\nx-detach-job: q1\r\n\r\nbody";
    assert_int_equal(dt_cgi_response_parse(lower, strlen(lower), &response), (int)strlen(lower) - 4);
    assert_int_equal(response.status, 404);
    assert_string_equal(response.job_id, "q1");
}

static void cgi_head_without_status(void **state)
{
    const char head[] = "X-Detach-Job: abc\r\nContent-Length: 0\r\n\r\n";
    struct cgi_head response;

    for (size_t len = 0; len < strlen(head); len++)
        if (dt_cgi_response_parse(head, len, &response) != 0)
            fail_msg("prefix of %zu bytes was not 'need more'", len);
    assert_int_equal(dt_cgi_response_parse(head, strlen(head), &response), (int)strlen(head));
    assert_int_equal(response.status, 200);
    assert_string_equal(response.job_id, "abc");

    const char redirect[] = "Location: http://example.com/\r\n\r\n";
    assert_int_equal(dt_cgi_response_parse(redirect, strlen(redirect), &response), (int)strlen(redirect));
    assert_int_equal(response.status, 302);
}

static void cgi_head_rejects_garbage(void **state)
{
    static const char *const bad[] = {
        "\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",
        "Status: abc\r\n\r\n",
        "Status: 20\r\n\r\n",
        "Status: 2000\r\n\r\n",
        "just text\r\n\r\n",
    };
    struct cgi_head response;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (dt_cgi_response_parse(bad[i], strlen(bad[i]), &response) != -1)
            fail_msg("accepted '%s'", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(addresses),
        cmocka_unit_test(cgi_head_with_status),
        cmocka_unit_test(cgi_head_without_status),
        cmocka_unit_test(cgi_head_rejects_garbage),
        cmocka_unit_test(cgi_head_rejects_long_job_id),
        cmocka_unit_test(cgi_head_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
