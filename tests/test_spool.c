/*
 * test_spool.c - the spool file format and directory: round trips, torn
 * and corrupted files, recovery order, and corrupt files moved aside.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "sched/spool.h"

/* Packed, as a job holds them: the literal's own NUL ends the list. */
static char params_block[] = "REQUEST_METHOD=POST\0QUERY_STRING=a=1\0";

static struct spool_record sample(const char *id)
{
    struct spool_record record = { .route = "/jobs/report", .params = params_block,
                                   .body = "x=1\0binary", .body_length = 10 };
    snprintf(record.id, sizeof(record.id), "%s", id);
    return record;
}

static void round_trip(void **state)
{
    struct spool_record record = sample("00000001aaaa0001"), decoded;
    uint8_t *data;
    size_t length;

    assert_int_equal(dt_spool_encode(&record, &data, &length), 0);
    assert_int_equal(dt_spool_decode(data, length, &decoded), 0);
    assert_string_equal(decoded.id, record.id);
    assert_string_equal(decoded.route, "/jobs/report");
    assert_memory_equal(decoded.params, params_block, sizeof(params_block));
    assert_int_equal(decoded.body_length, 10);
    assert_memory_equal(decoded.body, "x=1\0binary", 10);
    dt_spool_record_free(&decoded);
    free(data);
}

/* A param must be NAME=value, as the request reader lets through: an
 * empty one would end the packed list early, and a file with one was not
 * written by us. */
static void a_param_that_is_not_name_value_is_refused(void **state)
{
    static char *const bad[] = { "NO_EQUALS\0", "=value\0" };
    struct spool_record record = sample("00000001aaaa0003"), decoded;
    uint8_t *data;
    size_t length;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        record.params = bad[i];
        assert_int_equal(dt_spool_encode(&record, &data, &length), 0);
        assert_int_equal(dt_spool_decode(data, length, &decoded), -1);
        assert_null(decoded.params);
        free(data);
    }
}

static void every_truncation_and_flip_is_refused(void **state)
{
    struct spool_record record = sample("00000001aaaa0002"), decoded;
    uint8_t *data;
    size_t length;

    assert_int_equal(dt_spool_encode(&record, &data, &length), 0);
    for (size_t cut = 0; cut < length; cut++)
        assert_int_equal(dt_spool_decode(data, cut, &decoded), -1);
    for (size_t i = 0; i < length; i++) {
        data[i] ^= 0x20;
        assert_int_equal(dt_spool_decode(data, length, &decoded), -1);
        data[i] ^= 0x20;
    }
    free(data);
}

static int write_file(const char *path, const void *data, size_t length)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ssize_t n = write(fd, data, length);
    close(fd);
    return n == (ssize_t)length ? 0 : -1;
}

struct found {
    char ids[8][64];
    int count;
};

static void collect(void *context, struct spool_record *record)
{
    struct found *found = context;
    snprintf(found->ids[found->count++], 64, "%s", record->id);
    dt_spool_record_free(record);
}

static void write_remove_recover(void **state)
{
    char directory[] = "/tmp/detach-spool-test-XXXXXX", path[512];
    struct spool *spool;
    struct found found = { .count = 0 };
    struct spool_record second = sample("00000002bbbb0001"), first = sample("00000001bbbb0001"),
                        gone = sample("00000003bbbb0001");
    struct stat info;

    assert_non_null(mkdtemp(directory));
    spool = dt_spool_open(directory);
    assert_non_null(spool);
    assert_int_equal(dt_spool_write(spool, &second), 0);
    assert_int_equal(dt_spool_write(spool, &first), 0);
    assert_int_equal(dt_spool_write(spool, &gone), 0);
    assert_int_equal(dt_spool_remove(spool, gone.id), 0);
    assert_int_equal(dt_spool_remove(spool, gone.id), 0);   /* twice is fine */
    /* A torn file, and a leftover temporary that was never acknowledged. */
    snprintf(path, sizeof(path), "%s/00000009torn0001.job", directory);
    assert_int_equal(write_file(path, "DSPOOL1\n\x10\0\0\0", 12), 0);
    snprintf(path, sizeof(path), "%s/tmp/00000008temp0001", directory);
    assert_int_equal(write_file(path, "partial", 7), 0);

    assert_int_equal(dt_spool_recover(spool, collect, &found), 2);
    assert_int_equal(found.count, 2);
    assert_string_equal(found.ids[0], first.id);   /* oldest id first */
    assert_string_equal(found.ids[1], second.id);
    snprintf(path, sizeof(path), "%s/corrupt/00000009torn0001.job", directory);
    assert_int_equal(stat(path, &info), 0);
    snprintf(path, sizeof(path), "%s/tmp/00000008temp0001", directory);
    assert_int_equal(stat(path, &info), -1);
    dt_spool_close(spool);

    snprintf(path, sizeof(path), "rm -rf '%s'", directory);
    assert_int_equal(system(path), 0);
}

/* Is path (not followed) of this type? */
static int has_type(const char *path, mode_t type)
{
    struct stat info;

    return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == type;
}

/*
 * A fifo, a symlink (to a valid job file elsewhere) and a directory named
 * like job files: none is opened for reading or followed, each is moved
 * to corrupt/ as it is, and the job beside them is recovered.  A fifo
 * used to block the open for ever: the alarm turns a hang into a failure.
 */
static void entries_that_are_not_regular_files_are_moved_aside(void **state)
{
    char directory[] = "/tmp/detach-spool-test-XXXXXX", outside[] = "/tmp/detach-spool-out-XXXXXX";
    char path[512], target[512];
    struct spool *spool, *elsewhere;
    struct found found = { .count = 0 };
    struct spool_record good = sample("00000001cccc0001"), lure = sample("00000006link0001");
    static const struct { const char *name; mode_t type; } odd[] = {
        { "00000005fifo0001.job", S_IFIFO },
        { "00000006link0001.job", S_IFLNK },
        { "00000007dir00001.job", S_IFDIR },
    };

    assert_non_null(mkdtemp(directory));
    assert_non_null(mkdtemp(outside));
    spool = dt_spool_open(directory);
    elsewhere = dt_spool_open(outside);
    assert_non_null(spool);
    assert_non_null(elsewhere);
    assert_int_equal(dt_spool_write(spool, &good), 0);
    assert_int_equal(dt_spool_write(elsewhere, &lure), 0);
    snprintf(path, sizeof(path), "%s/%s", directory, odd[0].name);
    assert_int_equal(mkfifo(path, 0600), 0);
    snprintf(path, sizeof(path), "%s/%s", directory, odd[1].name);
    snprintf(target, sizeof(target), "%s/%s", outside, odd[1].name);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/%s", directory, odd[2].name);
    assert_int_equal(mkdir(path, 0700), 0);

    alarm(10);
    assert_int_equal(dt_spool_recover(spool, collect, &found), 1);
    alarm(0);
    assert_int_equal(found.count, 1);
    assert_string_equal(found.ids[0], good.id);
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", directory, odd[i].name);
        assert_false(has_type(path, odd[i].type));
        snprintf(path, sizeof(path), "%s/corrupt/%s", directory, odd[i].name);
        assert_true(has_type(path, odd[i].type));
    }
    /* The link's target was left alone. */
    assert_true(has_type(target, S_IFREG));
    dt_spool_close(spool);
    dt_spool_close(elsewhere);
    snprintf(path, sizeof(path), "rm -rf '%s' '%s'", directory, outside);
    assert_int_equal(system(path), 0);
}

/* The acceptance time travels with the record: a job recovered after a
 * restart keeps the time it was first accepted. */
static void acceptance_time_round_trips(void **state)
{
    struct spool_record record = sample("00000001aaaa0004"), decoded;
    uint8_t *data;
    size_t length;

    (void)state;
    record.accepted_unix_ms = 1795000000123ull;
    assert_int_equal(dt_spool_encode(&record, &data, &length), 0);
    assert_int_equal(dt_spool_decode(data, length, &decoded), 0);
    assert_true(decoded.accepted_unix_ms == 1795000000123ull);
    dt_spool_record_free(&decoded);
    free(data);
}

static void put_le32(uint8_t *out, size_t *at, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        out[(*at)++] = (uint8_t)(value >> (8 * i));
}

/* A file written before the acceptance time was kept ("DSPOOL1") is still
 * read, its time unknown (0). */
static void a_version_1_file_still_decodes(void **state)
{
    static const char id[] = "00000001aaaa0005", route[] = "/jobs/old", param[] = "A=1";
    uint8_t file[128];
    size_t at = 0;
    uint32_t hash = 2166136261u;
    struct spool_record decoded;

    (void)state;
    memcpy(file, "DSPOOL1\n", 8);
    at = 8;
    put_le32(file, &at, sizeof(id) - 1);
    memcpy(file + at, id, sizeof(id) - 1);
    at += sizeof(id) - 1;
    put_le32(file, &at, sizeof(route) - 1);
    memcpy(file + at, route, sizeof(route) - 1);
    at += sizeof(route) - 1;
    put_le32(file, &at, 1);
    put_le32(file, &at, sizeof(param) - 1);
    memcpy(file + at, param, sizeof(param) - 1);
    at += sizeof(param) - 1;
    put_le32(file, &at, 0);   /* empty body */
    for (size_t i = 0; i < at; i++) {
        hash ^= file[i];
        hash *= 16777619u;
    }
    put_le32(file, &at, hash);
    assert_int_equal(dt_spool_decode(file, at, &decoded), 0);
    assert_string_equal(decoded.id, id);
    assert_string_equal(decoded.route, route);
    assert_string_equal(decoded.params, param);
    assert_true(decoded.accepted_unix_ms == 0);
    dt_spool_record_free(&decoded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(a_param_that_is_not_name_value_is_refused),
        cmocka_unit_test(every_truncation_and_flip_is_refused),
        cmocka_unit_test(write_remove_recover),
        cmocka_unit_test(entries_that_are_not_regular_files_are_moved_aside),
        cmocka_unit_test(acceptance_time_round_trips),
        cmocka_unit_test(a_version_1_file_still_decodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
