/*
 * test_log.c - unit tests for src/log.c: the buffered stderr writer keeps
 * every line whole, once, and in each thread's order, also past the
 * buffer's size, and log_flush() writes it all before returning; the
 * fast formatter writes what vsnprintf() would; bursts with pauses
 * between them, which take the writer from idle to gathering and back,
 * never leave a line unwritten or a caller waiting for good.
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

#define THREADS 4
#define LINES_PER_THREAD 5000
#define BURST_LINES 100000
#define PAUSED_THREADS 12   /* more than the CPUs: callers are preempted mid-line */
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

/* Flushes, puts stderr back and returns what was written, '\0'-ended. */
static char *capture_end(struct capture *capture, size_t *length)
{
    off_t size;
    char *text;

    log_flush();
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

static void flush_with_nothing_buffered_returns_at_once(void **state)
{
    struct capture capture;
    struct timespec start, end;
    size_t length;
    char *text;

    capture_begin(&capture);
    clock_gettime(CLOCK_MONOTONIC, &start);
    log_flush();
    log_line(LOG_INFO, "one", "n=1");
    log_flush();
    log_flush();   /* nothing left: returns at once, writes nothing */
    clock_gettime(CLOCK_MONOTONIC, &end);
    assert_true(end.tv_sec - start.tv_sec < 2);
    text = capture_end(&capture, &length);
    assert_non_null(strstr(text, " level=info event=one n=1\n"));
    assert_ptr_equal(strchr(text, '\n'), text + length - 1);
    free(text);
}

/* Lines of different lengths, so buffer ends fall mid-line. */
static const char padding[] =
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";

static void *log_from_thread(void *argument)
{
    int thread = (int)(intptr_t)argument;

    for (int seq = 0; seq < LINES_PER_THREAD; seq++)
        log_line(LOG_INFO, "threaded", "thread=%d seq=%d pad=%.*s", thread, seq,
                 seq % (int)(sizeof(padding) - 1), padding);
    return NULL;
}

struct tally {
    int next[PAUSED_THREADS];   /* at least THREADS */
    size_t lines;
};

static void check_threaded_line(const char *line, size_t length, void *context)
{
    struct tally *tally = context;
    const char *rest = check_head(line, length, "info");
    int thread, seq, used = 0;

    assert_int_equal(sscanf(rest, "threaded thread=%d seq=%d pad=%n", &thread, &seq, &used), 2);
    assert_true(used > 0);
    assert_in_range(thread, 0, PAUSED_THREADS - 1);
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
    /* Short lines between long ones leave the buffer with less room than
     * a long line needs, again and again. */
    for (int seq = 0; seq < 2000; seq++) {
        if (seq % 20 == 19)
            log_line(LOG_INFO, "mixed", "seq=%d long=%s", seq, long_value);
        else
            log_line(LOG_INFO, "mixed", "seq=%d", seq);
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

static void burst_past_the_buffers_loses_nothing(void **state)
{
    struct capture capture;
    size_t length;
    int next = 0;
    char *text;

    capture_begin(&capture);
    for (int seq = 0; seq < BURST_LINES; seq++)
        log_line(LOG_ERROR, "burst", "seq=%d", seq);
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
    log_line(LOG_DEBUG, "hidden", "n=1");
    log_set_level(LOG_DEBUG);
    log_line(LOG_DEBUG, "shown", "n=2");
    log_set_level(LOG_INFO);
    text = capture_end(&capture, &length);
    assert_null(strstr(text, "hidden"));
    assert_non_null(strstr(text, " level=debug event=shown n=2\n"));
    free(text);
}

static int format_both(char *fast, char *slow, size_t size, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* log_format() and vsnprintf() on the same arguments; returns the
 * former's count. */
static int format_both(char *fast, char *slow, size_t size, const char *format, ...)
{
    va_list args;
    int n;

    va_start(args, format);
    n = log_format(fast, size, format, args);
    va_end(args);
    va_start(args, format);
    vsnprintf(slow, size, format, args);
    va_end(args);
    return n;
}

/* The fast formatter writes what vsnprintf would, cut the same way, and
 * hands what it does not know (widths, %x) to vsnprintf. */
static void format_matches_vsnprintf(void **state)
{
    char fast[256], slow[256];
    int n;

    (void)state;
    n = format_both(fast, slow, sizeof(fast), "job=%s route=%s waited_ms=%llu%s", "6b06abc",
                    "/jobs/x", 18446744073709551615ull, " retry=1");
    assert_string_equal(fast, slow);
    assert_int_equal(n, (int)strlen(slow));
    format_both(fast, slow, sizeof(fast), "a=%d b=%d c=%d d=%u e=%zu f=%%", -2147483647 - 1, 0,
                2147483647, 4294967295u, (size_t)12345);
    assert_string_equal(fast, slow);
    format_both(fast, slow, sizeof(fast), "hex=%x width=%5d prec=%.2s", 255u, 42, "abc");
    assert_string_equal(fast, slow);
    assert_string_equal(fast, "hex=ff width=   42 prec=ab");
    /* Cut at the size, '\0' included, and the count says what was kept. */
    n = format_both(fast, slow, 8, "job=%s n=%d", "abcdefgh", 7);
    assert_string_equal(fast, slow);
    assert_int_equal(n, 7);
    n = format_both(fast, slow, 8, "x=%x and more", 10u);
    assert_string_equal(fast, slow);
    assert_int_equal(n, 7);
}

#define PAUSED_ROUNDS 300
#define PAUSED_LINES 120

/* Bursts of lines a little past half a buffer, then a pause of 0-7 ms,
 * across GATHER_MS: the writer sleeps, gathers and is woken in every
 * order, with signals meant for a buffer it has already written. */
static void *log_in_bursts(void *argument)
{
    int thread = (int)(intptr_t)argument;
    unsigned seed = (unsigned)thread * 7919u + 1;
    int seq = 0;

    /* Half of them niced, as job threads are: preempted, they wait long. */
    if (thread % 2)
        setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    for (int round = 0; round < PAUSED_ROUNDS; round++) {
        struct timespec pause = { 0, (long)(rand_r(&seed) % 8) * 1000000L };

        for (int line = 0; line < PAUSED_LINES; line++, seq++)
            log_line(LOG_INFO, "threaded", "thread=%d seq=%d pad=%.*s", thread, seq,
                     seq % (int)(sizeof(padding) - 1), padding);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

/* A lost wake-up would hang the test rather than fail it: joined with a
 * deadline, and past it the process exits (a log_flush() at exit would
 * hang too). */
static void join_or_exit(pthread_t thread, int seconds)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    if (pthread_timedjoin_np(thread, NULL, &deadline) != 0) {
        fprintf(stdout, "a logging thread is stuck: the writer missed a wake-up\n");
        fflush(stdout);
        _exit(1);
    }
}

static void *flush_thread(void *unused)
{
    (void)unused;
    log_flush();
    return NULL;
}

static void bursts_and_pauses_never_stall_the_writer(void **state)
{
    struct capture capture;
    pthread_t threads[PAUSED_THREADS], flusher;
    struct tally tally = { { 0 }, 0 };
    size_t length;
    char *text;

    (void)state;
    capture_begin(&capture);
    for (int i = 0; i < PAUSED_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, log_in_bursts, (void *)(intptr_t)i), 0);
    for (int i = 0; i < PAUSED_THREADS; i++)
        join_or_exit(threads[i], 20);
    assert_int_equal(pthread_create(&flusher, NULL, flush_thread, NULL), 0);
    join_or_exit(flusher, 10);
    text = capture_end(&capture, &length);
    assert_int_equal(each_line(text, length, check_threaded_line, &tally),
                     PAUSED_THREADS * PAUSED_ROUNDS * PAUSED_LINES);
    for (int i = 0; i < PAUSED_THREADS; i++)
        assert_int_equal(tally.next[i], PAUSED_ROUNDS * PAUSED_LINES);
    free(text);
}

/* logfmt pairs read back as written: bare, quoted, escaped, unterminated. */
static void fields_are_read_back(void **state)
{
    const char *cursor = "a=1 msg=\"x y \\\"q\\\" \\\\ z\\nw\" empty= cut=\"open";
    char key[16], value[64];

    (void)state;
    assert_int_equal(log_fields_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    assert_string_equal(key, "a");
    assert_string_equal(value, "1");
    assert_int_equal(log_fields_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    assert_string_equal(key, "msg");
    assert_string_equal(value, "x y \"q\" \\ z\nw");
    assert_int_equal(log_fields_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    assert_string_equal(key, "empty");
    assert_string_equal(value, "");
    assert_int_equal(log_fields_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    assert_string_equal(key, "cut");
    assert_string_equal(value, "open");
    assert_int_equal(log_fields_next(&cursor, key, sizeof(key), value, sizeof(value)), 0);
}

/* log_format = json: the same fields, integers as numbers, the job id a
 * string even when it is all digits, escapes JSON's own. */
static void logfmt_line_becomes_json(void **state)
{
    char out[512];
    size_t length;

    (void)state;
    length = log_line_to_json("ts=2026-11-25T10:00:00.123Z level=info event=ended job=0001 "
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
    log_line_to_json("event=started job=abc route=/a/very/long/route/that/does/not/fit", out,
                     sizeof(out));
    assert_string_equal(out, "{\"event\":\"started\",\"job\":\"abc\"}");
    log_line_to_json("", out, sizeof(out));
    assert_string_equal(out, "{}");
}

/* With log = json, log_line writes one JSON object a line. */
static void log_line_writes_json_when_asked(void **state)
{
    struct capture capture;
    size_t length;
    char *text;

    (void)state;
    capture_begin(&capture);
    log_set_output_format(LOG_JSON);
    log_line(LOG_INFO, "accepted", "job=%s route=%s n=%d", "id1", "/x y", 5);
    log_set_output_format(LOG_LOGFMT);
    text = capture_end(&capture, &length);
    assert_non_null(strstr(text, "\",\"level\":\"info\",\"event\":\"accepted\",\"job\":\"id1\","
                                 "\"route\":\"/x\",\"y\":\"\",\"n\":5}\n"));
    assert_int_equal(strncmp(text, "{\"ts\":\"", 7), 0);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First: log_flush() before the writer thread exists. */
        cmocka_unit_test(flush_with_nothing_buffered_returns_at_once),
        cmocka_unit_test(threads_keep_lines_whole_once_and_ordered),
        cmocka_unit_test(longest_line_is_kept_whole),
        cmocka_unit_test(burst_past_the_buffers_loses_nothing),
        cmocka_unit_test(lines_above_the_level_are_dropped),
        cmocka_unit_test(format_matches_vsnprintf),
        cmocka_unit_test(bursts_and_pauses_never_stall_the_writer),
        cmocka_unit_test(fields_are_read_back),
        cmocka_unit_test(logfmt_line_becomes_json),
        cmocka_unit_test(json_that_does_not_fit_stays_valid),
        cmocka_unit_test(log_line_writes_json_when_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
