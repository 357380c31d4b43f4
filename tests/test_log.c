/*
 * test_log.c - unit tests for src/base/log.c: every line is on stderr when
 * dt_log_line() returns, whole, once, and in each thread's order, also from
 * more threads than CPUs (some niced, so preempted mid-line) and in long
 * bursts; the longest line is cut, still one line; levels, logfmt fields
 * and JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/log.h"

#define THREADS 8   /* more than the CPUs: callers are preempted mid-line */
#define LINES_PER_THREAD 5000
#define BURST_LINES 100000
#define MAX_LINE 2047   /* log.c's 2048-byte line, less the '\0' */

/* "ts=2026-11-25T10:00:00.123Z" */
#define TS_LENGTH 27

struct capture {
    char path[64];
    int fd;
    int saved_stderr;
};

/* Points STDERR_FILENO at a fresh temporary file. */
static void capture_begin(struct capture *capture)
{
    snprintf(capture->path, sizeof(capture->path), "/tmp/test_log.XXXXXX");
    capture->fd = mkstemp(capture->path);
    assert_true(capture->fd >= 0);
    unlink(capture->path);
    capture->saved_stderr = dup(STDERR_FILENO);
    assert_true(capture->saved_stderr >= 0);
    assert_int_equal(dup2(capture->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Puts stderr back and returns what was written, '\0'-ended. */
static char *capture_end(struct capture *capture, size_t *length)
{
    off_t size;
    char *text;

    assert_int_equal(dup2(capture->saved_stderr, STDERR_FILENO), STDERR_FILENO);
    close(capture->saved_stderr);
    size = lseek(capture->fd, 0, SEEK_END);
    assert_true(size >= 0);
    text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(capture->fd, text, (size_t)size, 0), size);
    text[size] = '\0';
    close(capture->fd);
    *length = (size_t)size;
    return text;
}

/* Checks the fixed head of a line and returns what follows "event=". */
static const char *check_head(const char *line, size_t length, const char *level)
{
    char head[64];
    size_t head_length = (size_t)snprintf(head, sizeof(head), " level=%s event=", level);

    assert_true(length > TS_LENGTH + head_length);
    assert_memory_equal(line, "ts=", 3);
    assert_int_equal(line[13], 'T');
    assert_int_equal(line[22], '.');
    assert_int_equal(line[TS_LENGTH - 1], 'Z');
    assert_memory_equal(line + TS_LENGTH, head, head_length);
    return line + TS_LENGTH + head_length;
}

/* Calls visit on each line; the text must end with a newline. */
static size_t each_line(char *text, size_t length,
                        void (*visit)(const char *line, size_t length, void *context),
                        void *context)
{
    size_t count = 0;
    char *line = text;

    assert_true(length == 0 || text[length - 1] == '\n');
    while (line < text + length) {
        char *end = memchr(line, '\n', (size_t)(text + length - line));
        assert_non_null(end);
        *end = '\0';
        visit(line, (size_t)(end - line), context);
        line = end + 1;
        count++;
    }
    return count;
}

/* No buffer, no writer thread: the line is in the file as the call returns. */
static void line_is_written_when_log_line_returns(void **state)
{
    struct capture capture;
    char first[128];
    ssize_t n;
    size_t length;
    char *text;

    (void)state;
    capture_begin(&capture);
    dt_log_line(LOG_INFO, "one", "n=1");
    n = pread(capture.fd, first, sizeof(first) - 1, 0);
    assert_true(n > 0);
    first[n] = '\0';
    assert_non_null(strstr(first, " level=info event=one n=1\n"));
    text = capture_end(&capture, &length);
    assert_ptr_equal(strchr(text, '\n'), text + length - 1);
    free(text);
}

/* Lines of different lengths. */
static const char padding[] =
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";

static void *log_from_thread(void *argument)
{
    int thread = (int)(intptr_t)argument;

    /* Half of them niced, as job threads are: preempted, they wait long. */
    if (thread % 2)
        setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    for (int seq = 0; seq < LINES_PER_THREAD; seq++)
        dt_log_line(LOG_INFO, "threaded", "thread=%d seq=%d pad=%.*s", thread, seq,
                 seq % (int)(sizeof(padding) - 1), padding);
    return NULL;
}

struct tally {
    int next[THREADS];
    size_t lines;
};

static void check_threaded_line(const char *line, size_t length, void *context)
{
    struct tally *tally = context;
    const char *rest = check_head(line, length, "info");
    int thread, seq, used = 0;

    assert_int_equal(sscanf(rest, "threaded thread=%d seq=%d pad=%n", &thread, &seq, &used), 2);
    assert_true(used > 0);
    assert_in_range(thread, 0, THREADS - 1);
    /* Once each, in the order the thread logged them. */
    assert_int_equal(seq, tally->next[thread]);
    tally->next[thread]++;
    assert_int_equal(strlen(rest + used), (size_t)(seq % (int)(sizeof(padding) - 1)));
    assert_memory_equal(rest + used, padding, strlen(rest + used));
    tally->lines++;
}

static void threads_keep_lines_whole_once_and_ordered(void **state)
{
    struct capture capture;
    pthread_t threads[THREADS];
    struct tally tally = { { 0 }, 0 };
    size_t length;
    char *text;

    capture_begin(&capture);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, log_from_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    text = capture_end(&capture, &length);
    assert_int_equal(each_line(text, length, check_threaded_line, &tally), THREADS * LINES_PER_THREAD);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(tally.next[i], LINES_PER_THREAD);
    free(text);
}

struct sequence {
    int next;
    size_t long_lines;
};

static void check_mixed_line(const char *line, size_t length, void *context)
{
    struct sequence *sequence = context;
    const char *rest = check_head(line, length, "info");
    int seq, used = 0;

    assert_int_equal(sscanf(rest, "mixed seq=%d%n", &seq, &used), 1);
    assert_int_equal(seq, sequence->next);
    sequence->next++;
    if (seq % 20 == 19) {
        /* Truncated to the longest line, and still one whole line. */
        assert_int_equal(length + 1, MAX_LINE);
        assert_memory_equal(rest + used, " long=", 6);
        for (const char *p = rest + used + 6; p < line + length; p++)
            assert_int_equal(*p, 'x');
        sequence->long_lines++;
    } else {
        assert_string_equal(rest + used, "");
    }
}

static void longest_line_is_kept_whole(void **state)
{
    struct capture capture;
    struct sequence sequence = { 0, 0 };
    static char long_value[3000];
    size_t length;
    char *text;

    memset(long_value, 'x', sizeof(long_value) - 1);
    capture_begin(&capture);
    for (int seq = 0; seq < 2000; seq++) {
        if (seq % 20 == 19)
            dt_log_line(LOG_INFO, "mixed", "seq=%d long=%s", seq, long_value);
        else
            dt_log_line(LOG_INFO, "mixed", "seq=%d", seq);
    }
    text = capture_end(&capture, &length);
    assert_int_equal(each_line(text, length, check_mixed_line, &sequence), 2000);
    assert_int_equal(sequence.long_lines, 100);
    free(text);
}

static void check_burst_line(const char *line, size_t length, void *context)
{
    int *next = context;
    const char *rest = check_head(line, length, "error");
    int seq, used = 0;

    assert_int_equal(sscanf(rest, "burst seq=%d%n", &seq, &used), 1);
    assert_int_equal(seq, *next);
    assert_string_equal(rest + used, "");
    (*next)++;
}

static void long_burst_loses_nothing(void **state)
{
    struct capture capture;
    size_t length;
    int next = 0;
    char *text;

    capture_begin(&capture);
    for (int seq = 0; seq < BURST_LINES; seq++)
        dt_log_line(LOG_ERROR, "burst", "seq=%d", seq);
    text = capture_end(&capture, &length);
    assert_true(length > 2 * 64 * 1024);
    assert_int_equal(each_line(text, length, check_burst_line, &next), BURST_LINES);
    free(text);
}

static void lines_above_the_level_are_dropped(void **state)
{
    struct capture capture;
    size_t length;
    char *text;

    capture_begin(&capture);
    dt_log_line(LOG_DEBUG, "hidden", "n=1");
    dt_log_set_level(LOG_DEBUG);
    dt_log_line(LOG_DEBUG, "shown", "n=2");
    dt_log_set_level(LOG_INFO);
    text = capture_end(&capture, &length);
    assert_null(strstr(text, "hidden"));
    assert_non_null(strstr(text, " level=debug event=shown n=2\n"));
    free(text);
}

/* logfmt pairs read back as written: bare, quoted, escaped, unterminated. */
static void fields_are_read_back(void **state)
{
    const char *cursor = "a=1 msg=\"x y \\\"q\\\" \\\\ z\\nw\" empty= cut=\"open";
    char key[16], value[64];

    (void)state;
    assert_int_equal(dt_log_fields_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    assert_string_equal(key, "a");
    assert_string_equal(value, "1");
    assert_int_equal(dt_log_fields_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    assert_string_equal(key, "msg");
    assert_string_equal(value, "x y \"q\" \\ z\nw");
    assert_int_equal(dt_log_fields_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    assert_string_equal(key, "empty");
    assert_string_equal(value, "");
    assert_int_equal(dt_log_fields_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    assert_string_equal(key, "cut");
    assert_string_equal(value, "open");
    assert_int_equal(dt_log_fields_next(&cursor, key, sizeof(key), value, sizeof(value)), 0);
}

/* log_format = json: the same fields, integers as numbers, the job id a
 * string even when it is all digits, escapes JSON's own. */
static void logfmt_line_becomes_json(void **state)
{
    char out[512];
    size_t length;

    (void)state;
    length = dt_log_line_to_json("ts=2026-11-25T10:00:00.123Z level=info event=ended job=0001 "
                              "elapsed_ms=12 code=-3 zero=0 lead=012 error=\"a \\\"b\\\"\\nc\"",
                              out, sizeof(out));
    assert_string_equal(out, "{\"ts\":\"2026-11-25T10:00:00.123Z\",\"level\":\"info\","
                             "\"event\":\"ended\",\"job\":\"0001\",\"elapsed_ms\":12,"
                             "\"code\":-3,\"zero\":0,\"lead\":\"012\","
                             "\"error\":\"a \\\"b\\\"\\nc\"}");
    assert_int_equal(length, strlen(out));
}

/* A line too long for the output keeps the pairs that fit: still JSON. */
static void json_that_does_not_fit_stays_valid(void **state)
{
    char out[40];

    (void)state;
    dt_log_line_to_json("event=started job=abc route=/a/very/long/route/that/does/not/fit", out,
                     sizeof(out));
    assert_string_equal(out, "{\"event\":\"started\",\"job\":\"abc\"}");
    dt_log_line_to_json("", out, sizeof(out));
    assert_string_equal(out, "{}");
}

/* With log = json, dt_log_line writes one JSON object a line. */
static void log_line_writes_json_when_asked(void **state)
{
    struct capture capture;
    size_t length;
    char *text;

    (void)state;
    capture_begin(&capture);
    dt_log_set_output_format(LOG_JSON);
    dt_log_line(LOG_INFO, "accepted", "job=%s route=%s n=%d", "id1", "/x y", 5);
    dt_log_set_output_format(LOG_LOGFMT);
    text = capture_end(&capture, &length);
    assert_non_null(strstr(text, "\",\"level\":\"info\",\"event\":\"accepted\",\"job\":\"id1\","
                                 "\"route\":\"/x\",\"y\":\"\",\"n\":5}\n"));
    assert_int_equal(strncmp(text, "{\"ts\":\"", 7), 0);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(line_is_written_when_log_line_returns),
        cmocka_unit_test(threads_keep_lines_whole_once_and_ordered),
        cmocka_unit_test(longest_line_is_kept_whole),
        cmocka_unit_test(long_burst_loses_nothing),
        cmocka_unit_test(lines_above_the_level_are_dropped),
        cmocka_unit_test(fields_are_read_back),
        cmocka_unit_test(logfmt_line_becomes_json),
        cmocka_unit_test(json_that_does_not_fit_stays_valid),
        cmocka_unit_test(log_line_writes_json_when_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
