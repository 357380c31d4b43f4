/*
 * test_access.c - who may read the status page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/access.h"

static void exact_addresses(void **state)
{
    assert_true(dt_access_allowed("127.0.0.1 ::1", "127.0.0.1"));
    assert_true(dt_access_allowed("127.0.0.1 ::1", "::1"));
    assert_true(dt_access_allowed("127.0.0.1 ::1", "0:0:0:0:0:0:0:1"));
    assert_false(dt_access_allowed("127.0.0.1 ::1", "127.0.0.2"));
    assert_false(dt_access_allowed("127.0.0.1 ::1", "10.0.0.1"));
}

static void ranges(void **state)
{
    assert_true(dt_access_allowed("10.0.0.0/8", "10.200.3.4"));
    assert_false(dt_access_allowed("10.0.0.0/8", "11.0.0.1"));
    assert_true(dt_access_allowed("192.168.1.0/25", "192.168.1.127"));
    assert_false(dt_access_allowed("192.168.1.0/25", "192.168.1.128"));
    assert_true(dt_access_allowed("fd00::/8", "fd12:3456::1"));
    assert_true(dt_access_allowed("0.0.0.0/0", "8.8.8.8"));
    assert_false(dt_access_allowed("0.0.0.0/0", "::1"));
}

static void mapped_ipv4_matches_its_entry(void **state)
{
    assert_true(dt_access_allowed("127.0.0.1", "::ffff:127.0.0.1"));
}

static void malformed_never_allows(void **state)
{
    assert_false(dt_access_allowed("127.0.0.1", "localhost"));
    assert_false(dt_access_allowed("127.0.0.1", ""));
    assert_false(dt_access_allowed("127.0.0.1", NULL));
    assert_false(dt_access_allowed(NULL, "127.0.0.1"));
    assert_false(dt_access_allowed("not-an-address", "127.0.0.1"));
    assert_false(dt_access_allowed("127.0.0.1/33", "127.0.0.1"));
}

static void list_validation(void **state)
{
    const char *bad = NULL;
    int length = 0;

    assert_int_equal(dt_access_list_valid("127.0.0.1 ::1, 10.0.0.0/8", &bad, &length), 0);
    assert_int_equal(dt_access_list_valid("127.0.0.1 10.0.0.0/99 ::1", &bad, &length), -1);
    assert_int_equal(length, 11);
    assert_memory_equal(bad, "10.0.0.0/99", 11);
    assert_int_equal(dt_access_list_valid("localhost", &bad, &length), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_addresses),
        cmocka_unit_test(ranges),
        cmocka_unit_test(mapped_ipv4_matches_its_entry),
        cmocka_unit_test(malformed_never_allows),
        cmocka_unit_test(list_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
