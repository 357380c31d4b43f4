/*
 * test_script.c - telling a script's CGI head from its body.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/script.h"

static int head(const char *text, size_t *body_start)
{
    *body_start = 0;
    return script_output_head(text, strlen(text), body_start);
}

static void finds_a_head(void **state)
{
    size_t start;

    assert_int_equal(head("Content-Type: text/html\r\nStatus: 201 Created\r\n\r\nbody", &start), 1);
    assert_int_equal(start, strlen("Content-Type: text/html\r\nStatus: 201 Created\r\n\r\n"));
    assert_int_equal(head("X-A: 1\n\nrest", &start), 1);
    assert_int_equal(start, 8);
}

static void plain_output_has_no_head(void **state)
{
    size_t start;

    assert_int_equal(head("hello world\n", &start), 0);
    assert_int_equal(head("Progress 50%: done\n", &start), 0);
    assert_int_equal(head("\nbody after a blank line\n", &start), 0);
    assert_int_equal(head("X-A: 1\nnot a header line\n\n", &start), 0);
    assert_int_equal(head("hello, no colon yet", &start), 0);
    assert_int_equal(head("hello", &start), -1);
    assert_int_equal(head("a sentence: with a colon", &start), 0);
}

static void needs_more_bytes(void **state)
{
    size_t start;

    assert_int_equal(head("Content-Type: text/html\r\n", &start), -1);
    assert_int_equal(head("Content-Ty", &start), -1);
    assert_int_equal(head("", &start), -1);
    /* Split between the blank line's CR and LF. */
    assert_int_equal(head("A:\n\r", &start), -1);
    assert_int_equal(head("A:\n\r\nxyz", &start), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_a_head),
        cmocka_unit_test(plain_output_has_no_head),
        cmocka_unit_test(needs_more_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
