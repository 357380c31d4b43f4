/*
 * test_job_log_prune.c - job_log_keep: only "*.log" regular files older
 * than the retention leave log_dir; the rest stays.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include <cmocka.h>

#include "daemon/job_log_prune.h"

static void make_file(const char *dir, const char *name, time_t mtime)
{
    char path[256];
    struct utimbuf times = { mtime, mtime };
    FILE *file;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    file = fopen(path, "w");
    assert_non_null(file);
    fputs("x\n", file);
    fclose(file);
    assert_int_equal(utime(path, &times), 0);
}

static int exists(const char *dir, const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void only_old_job_logs_go(void **state)
{
    char dir[] = "/tmp/test_job_log_prune.XXXXXX", sub[300];
    time_t now = 1800000000;

    (void)state;
    assert_non_null(mkdtemp(dir));
    make_file(dir, "old.log", now - 101);
    make_file(dir, "edge.log", now - 100);   /* exactly the retention: kept */
    make_file(dir, "young.log", now - 5);
    make_file(dir, "old.txt", now - 1000);
    make_file(dir, ".hidden.log", now - 1000);
    snprintf(sub, sizeof(sub), "%s/dir.log", dir);
    assert_int_equal(mkdir(sub, 0700), 0);

    assert_int_equal(job_logs_prune(dir, now, 100), 1);
    assert_false(exists(dir, "old.log"));
    assert_true(exists(dir, "edge.log"));
    assert_true(exists(dir, "young.log"));
    assert_true(exists(dir, "old.txt"));
    assert_true(exists(dir, ".hidden.log"));
    assert_true(exists(dir, "dir.log"));
    assert_int_equal(job_logs_prune(dir, now + 1, 100), 1);   /* edge.log now */
    assert_int_equal(job_logs_prune(dir, now + 1, 100), 0);

    assert_int_equal(rmdir(sub), 0);
    snprintf(sub, sizeof(sub), "rm -rf %s", dir);
    assert_int_equal(system(sub), 0);
    assert_int_equal(job_logs_prune(dir, now, 100), -1);   /* gone: an error, not a crash */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(only_old_job_logs_go),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
