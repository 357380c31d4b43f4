/*
 * test_url.c - unit tests for src/url.c: URL and address parsing, form
 * encoding, and the HTTP and CGI response head parsers, including the
 * partial and hostile input they see from the network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "url.h"

static void assert_target(const struct url *url, const char *target, const char *path)
{
    assert_int_equal(url->target_length, strlen(target));
    assert_memory_equal(url->target, target, url->target_length);
    assert_int_equal(url->path_length, strlen(path));
}

static void url_with_defaults(void **state)
{
    struct url url;

    assert_int_equal(url_parse("http://example.com", &url), 0);
    assert_string_equal(url.host, "example.com");
    assert_int_equal(url.port, 80);
    assert_false(url.host_is_ipv6);
    assert_target(&url, "/", "/");

    assert_int_equal(url_parse("HTTP://Example.com/", &url), 0);
    assert_string_equal(url.host, "Example.com");
    assert_target(&url, "/", "/");
}

static void url_with_port_path_and_query(void **state)
{
    struct url url;

    assert_int_equal(url_parse("http://127.0.0.1:8080/jobs/report?month=11&x=%20y", &url), 0);
    assert_string_equal(url.host, "127.0.0.1");
    assert_int_equal(url.port, 8080);
    assert_target(&url, "/jobs/report?month=11&x=%20y", "/jobs/report");

    assert_int_equal(url_parse("http://h:65535/a#fragment", &url), 0);
    assert_int_equal(url.port, 65535);
    assert_target(&url, "/a", "/a");

    assert_int_equal(url_parse("http://h#frag", &url), 0);
    assert_target(&url, "/", "/");
}

static void url_with_ipv6_literals(void **state)
{
    struct url url;

    assert_int_equal(url_parse("http://[::1]:9000/x?y", &url), 0);
    assert_string_equal(url.host, "::1");
    assert_true(url.host_is_ipv6);
    assert_int_equal(url.port, 9000);
    assert_target(&url, "/x?y", "/x");

    assert_int_equal(url_parse("http://[2001:db8::42]/", &url), 0);
    assert_string_equal(url.host, "2001:db8::42");
    assert_int_equal(url.port, 80);

    assert_int_equal(url_parse("http://[::ffff:127.0.0.1]", &url), 0);
    assert_string_equal(url.host, "::ffff:127.0.0.1");
}

static void url_rejects_bad_input(void **state)
{
    static const char *const bad[] = {
        "https://example.com/",
        "ftp://example.com/",
        "example.com/path",
        "/just/a/path",
        "",
        "http://",
        "http:///path",
        "http://host:/",
        "http://host:0/",
        "http://host:65536/",
        "http://host:123456/",
        "http://host:80x/",
        "http://user:pass@host/",
        "http://::1/",
        "http://[::1/",
        "http://[]/",
        "http://[not-v6]/",
        "http://[::1]x/",
        "http://[::1]:/",
        "http://ho st/",
        "http://host/a b",
        "http://host/a\r\nX-Injected: 1",
        "http://host/a\tb",
        "http://host?query",
    };
    struct url url;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (url_parse(bad[i], &url) != -1)
            fail_msg("accepted '%s'", bad[i]);
    }
    assert_int_equal(url_parse(NULL, &url), -1);
}

static void url_rejects_overlong_host(void **state)
{
    char text[400];
    struct url url;

    strcpy(text, "http://");
    memset(text + 7, 'a', 300);
    strcpy(text + 307, "/");
    assert_int_equal(url_parse(text, &url), -1);

    /* 255 characters still fit. */
    memset(text + 7, 'a', 255);
    strcpy(text + 262, "/");
    assert_int_equal(url_parse(text, &url), 0);
    assert_int_equal(strlen(url.host), 255);
}

static void target_only(void **state)
{
    struct url url;

    assert_int_equal(url_parse_target("/jobs/x?a=1", &url), 0);
    assert_target(&url, "/jobs/x?a=1", "/jobs/x");
    assert_string_equal(url.host, "");
    assert_int_equal(url.port, 0);

    assert_int_equal(url_parse_target("/", &url), 0);
    assert_target(&url, "/", "/");
    assert_int_equal(url_parse_target("jobs", &url), -1);
    assert_int_equal(url_parse_target("", &url), -1);
    assert_int_equal(url_parse_target("/a b", &url), -1);
    assert_int_equal(url_parse_target(NULL, &url), -1);
}

static void addresses(void **state)
{
    struct url url;

    assert_int_equal(url_parse_address("127.0.0.1:9000", &url), 0);
    assert_string_equal(url.host, "127.0.0.1");
    assert_int_equal(url.port, 9000);
    assert_int_equal(url_parse_address("[::1]:9000", &url), 0);
    assert_string_equal(url.host, "::1");
    assert_true(url.host_is_ipv6);
    assert_int_equal(url_parse_address("localhost:1", &url), 0);

    assert_int_equal(url_parse_address("localhost", &url), -1);
    assert_int_equal(url_parse_address("[::1]", &url), -1);
    assert_int_equal(url_parse_address("::1:9000", &url), -1);
    assert_int_equal(url_parse_address(":9000", &url), -1);
    assert_int_equal(url_parse_address("host:99999", &url), -1);
}

static void assert_form(const char *const *fields, size_t count, const char *expected)
{
    char *encoded = url_form_encode(fields, count);
    assert_non_null(encoded);
    assert_string_equal(encoded, expected);
    free(encoded);
}

static void form_encoding(void **state)
{
    const char *simple[] = {"a=1", "b=two"};
    assert_form(simple, 2, "a=1&b=two");

    const char *spaces[] = {"full name=Ada Lovelace"};
    assert_form(spaces, 1, "full+name=Ada+Lovelace");

    const char *specials[] = {"q=a&b=c", "eq=x=y", "plus=1+1", "pct=100%"};
    assert_form(specials, 4, "q=a%26b%3Dc&eq=x%3Dy&plus=1%2B1&pct=100%25");

    const char *utf8[] = {"city=Z\xc3\xbcrich", "\xe2\x82\xac=euro"};
    assert_form(utf8, 2, "city=Z%C3%BCrich&%E2%82%AC=euro");

    const char *safe[] = {"k=AZaz09*-._~"};
    assert_form(safe, 1, "k=AZaz09*-._%7E");

    const char *no_equals[] = {"flag", "empty="};
    assert_form(no_equals, 2, "flag=&empty=");

    assert_form(NULL, 0, "");

    const char *newline[] = {"t=a\r\nb"};
    assert_form(newline, 1, "t=a%0D%0Ab");
}

static void http_head_complete(void **state)
{
    const char head[] = "HTTP/1.1 200 OK\r\n"
                        "Content-Length: 0\r\n"
                        "X-Detach-Job: 01HF-abc_123\r\n"
                        "\r\n";
    struct http_response response;

    assert_int_equal(http_response_parse(head, strlen(head), &response), (int)strlen(head));
    assert_int_equal(response.status, 200);
    assert_string_equal(response.job_id, "01HF-abc_123");

    /* A body after the head is not part of it. */
    char with_body[128];
    snprintf(with_body, sizeof with_body, "%sbody bytes", head);
    assert_int_equal(http_response_parse(with_body, strlen(with_body), &response), (int)strlen(head));
}

static void http_head_partial(void **state)
{
    const char head[] = "HTTP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\n\r\n";
    struct http_response response;

    for (size_t len = 0; len < strlen(head); len++)
        if (http_response_parse(head, len, &response) != 0)
            fail_msg("prefix of %zu bytes was not 'need more'", len);
    assert_int_equal(http_response_parse(head, strlen(head), &response), (int)strlen(head));
    assert_int_equal(response.status, 503);
    assert_string_equal(response.job_id, "");
}

static void http_head_header_names_any_case(void **state)
{
    const char head[] = "HTTP/1.1 202 Accepted\r\nx-detach-job:   job-7  \r\n\r\n";
    struct http_response response;

    assert_int_equal(http_response_parse(head, strlen(head), &response), (int)strlen(head));
    assert_int_equal(response.status, 202);
    assert_string_equal(response.job_id, "job-7");

    const char upper[] = "HTTP/1.1 200 OK\nX-DETACH-JOB: J\n\n";
    assert_int_equal(http_response_parse(upper, strlen(upper), &response), (int)strlen(upper));
    assert_string_equal(response.job_id, "J");
}

static void http_head_skips_interim(void **state)
{
    const char head[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-Detach-Job: 9\r\n\r\n";
    struct http_response response;

    assert_int_equal(http_response_parse(head, 25, &response), 0);
    assert_int_equal(http_response_parse(head, strlen(head), &response), (int)strlen(head));
    assert_int_equal(response.status, 200);
    assert_string_equal(response.job_id, "9");
}

static void http_head_rejects_garbage(void **state)
{
    static const char *const bad[] = {
        "GARBAGE",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 600 High\r\n\r\n",
        "HTTP/1.1200 OK\r\n\r\n",
        "HTTP/x.1 200 OK\r\n\r\n",
        "\r\n",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nName : space before colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: no name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Detach-Job: has space\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Bell: \a\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n",
    };
    struct http_response response;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (http_response_parse(bad[i], strlen(bad[i]), &response) != -1)
            fail_msg("accepted '%s'", bad[i]);

    /* A NUL inside a header line. */
    const char nul[] = "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n";
    assert_int_equal(http_response_parse(nul, sizeof nul - 1, &response), -1);
}

static void http_head_rejects_long_job_id(void **state)
{
    char head[256];
    struct http_response response;
    char id[80];

    memset(id, 'j', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nX-Detach-Job: %s\r\n\r\n", id);
    assert_int_equal(http_response_parse(head, strlen(head), &response), -1);

    /* 63 characters is the most that fits. */
    id[63] = '\0';
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nX-Detach-Job: %s\r\n\r\n", id);
    assert_int_equal(http_response_parse(head, strlen(head), &response), (int)strlen(head));
    assert_int_equal(strlen(response.job_id), 63);
}

static void http_head_too_long(void **state)
{
    size_t size = HTTP_HEAD_MAX + 100;
    char *head = malloc(size);
    struct http_response response;

    assert_non_null(head);
    memcpy(head, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
    memset(head + 24, 'x', size - 24);
    assert_int_equal(http_response_parse(head, 1000, &response), 0);
    assert_int_equal(http_response_parse(head, size, &response), -1);
    free(head);
}

static void cgi_head_with_status(void **state)
{
    const char head[] = "Status: 503 Service Unavailable\r\nRetry-After: 10\r\n\r\n";
    struct http_response response;

    assert_int_equal(cgi_response_parse(head, strlen(head), &response), (int)strlen(head));
    assert_int_equal(response.status, 503);

    const char lower[] = "content-type: text/plain\r\nstatus: 404\r\nx-detach-job: q1\r\n\r\nbody";
    assert_int_equal(cgi_response_parse(lower, strlen(lower), &response), (int)strlen(lower) - 4);
    assert_int_equal(response.status, 404);
    assert_string_equal(response.job_id, "q1");
}

static void cgi_head_without_status(void **state)
{
    const char head[] = "X-Detach-Job: abc\r\nContent-Length: 0\r\n\r\n";
    struct http_response response;

    for (size_t len = 0; len < strlen(head); len++)
        if (cgi_response_parse(head, len, &response) != 0)
            fail_msg("prefix of %zu bytes was not 'need more'", len);
    assert_int_equal(cgi_response_parse(head, strlen(head), &response), (int)strlen(head));
    assert_int_equal(response.status, 200);
    assert_string_equal(response.job_id, "abc");

    const char redirect[] = "Location: http://example.com/\r\n\r\n";
    assert_int_equal(cgi_response_parse(redirect, strlen(redirect), &response), (int)strlen(redirect));
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
    struct http_response response;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (cgi_response_parse(bad[i], strlen(bad[i]), &response) != -1)
            fail_msg("accepted '%s'", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_with_defaults),
        cmocka_unit_test(url_with_port_path_and_query),
        cmocka_unit_test(url_with_ipv6_literals),
        cmocka_unit_test(url_rejects_bad_input),
        cmocka_unit_test(url_rejects_overlong_host),
        cmocka_unit_test(target_only),
        cmocka_unit_test(addresses),
        cmocka_unit_test(form_encoding),
        cmocka_unit_test(http_head_complete),
        cmocka_unit_test(http_head_partial),
        cmocka_unit_test(http_head_header_names_any_case),
        cmocka_unit_test(http_head_skips_interim),
        cmocka_unit_test(http_head_rejects_garbage),
        cmocka_unit_test(http_head_rejects_long_job_id),
        cmocka_unit_test(http_head_too_long),
        cmocka_unit_test(cgi_head_with_status),
        cmocka_unit_test(cgi_head_without_status),
        cmocka_unit_test(cgi_head_rejects_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
