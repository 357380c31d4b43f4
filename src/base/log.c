/*
 * log.c - event lines (logfmt or JSON) on stderr, in a file, to syslog or
 * to the systemd journal.
 *
 * One event, one line: lines from job threads, workers and the watcher
 * never interleave, and a reader can grep or parse them.
 *
 * Why a buffer: the server logs about three lines a job at tens of
 * thousands of jobs a second, and a write(2) per line cost the request
 * path a lot of CPU.  So log_line() formats the line as before, then only
 * copies it into the fill half of two 64 KiB buffers.  A writer thread,
 * started on the first line, swaps the halves and writes the full one to
 * stderr while the callers fill the other.  Woken by the first line after
 * a quiet spell, the writer lets lines gather for up to GATHER_MS (or
 * until half a buffer) before it writes: under load an append costs no
 * system call and no wake-up, and a line, LOG_ERROR ones too, is on
 * stderr within a few milliseconds, in order.
 *
 * Why no lock around the copy: the watcher logs every trigger, and the
 * job threads, at nice 10, log their jobs' starts and ends.  Under a
 * mutex, a job thread preempted while it held the lock kept the watcher,
 * and every ack behind it, waiting until the scheduler gave the niced
 * thread a CPU again: by perf trace, 80-110 waits of 0.1-1.7 ms in 3 s
 * of /noop, up to 5 ms with 2-s jobs.  So a caller claims its bytes with
 * one compare-and-swap on the buffer's state word (bytes claimed, copies
 * in flight, sealed) and copies without a lock; the writer seals the
 * buffer it swaps out and waits for the copies still in flight, so a
 * preempted caller delays the writer, never another caller.  Claims are
 * in order, so the lines are.
 *
 * When a line does not fit, its caller waits for the writer to drain the
 * other half rather than grow the buffer or write past the writer: memory
 * stays bounded and the order stays the order of the calls.  That wait,
 * and waking the writer, take the mutex: the rare paths.
 *
 * log_flush() waits until every line appended before it is written; it is
 * registered with atexit(), so a normal exit() loses nothing.  A crash
 * (SIGSEGV, kill -9) loses the lines still buffered: at most one buffer's
 * worth, usually none.  Syslog mode stays one syslog() call per line.
 *
 * The journal: the writer thread, not the caller, turns each buffered
 * logfmt line into one sd_journal_sendv() entry with its fields, so the
 * request path costs the same as with stderr.  JSON lines are made by the
 * caller from the formatted logfmt text (log_line_to_json()), so both
 * formats carry the same fields.  A log file is stderr pointed at it:
 * log_reopen() dup2()s a fresh descriptor over fd 2, which is atomic, so
 * the writer needs no lock for it.
 *
 * fork(): our children exec (or _exit) at once and never log, so there
 * are no atfork handlers; a child has no writer thread, so log_flush()
 * returns at once in a child rather than wait for one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION   /* CODE_FILE= would name log.c, always */
#include <systemd/sd-journal.h>

/* <syslog.h> spells two of its priorities like our levels in log.h: keep
 * its values, then let log.h have the names. */
enum {
    SYSLOG_ERR = LOG_ERR,
    SYSLOG_INFO = LOG_INFO,
    SYSLOG_DEBUG = LOG_DEBUG,
};
#undef LOG_INFO
#undef LOG_DEBUG

#include "base/log.h"
#include "base/thread.h"
#include "detach.h"

static int log_threshold = LOG_INFO;
static int log_to_syslog;
static int log_to_journal;
static int log_output = LOG_LOGFMT;
static char *log_file_path;   /* NULL: stderr is whatever we were given */
static pthread_mutex_t reopen_lock = PTHREAD_MUTEX_INITIALIZER;

/* A line waits at most this long in the buffer before it is written. */
#define GATHER_MS 5

#define BUFFER_SIZE (64 * 1024)

/* A buffer's state word: the bytes claimed, the copies in flight, and
 * whether the writer sealed it (no more claims). */
#define STATE_BYTES 0xffffffffull
#define STATE_COPY (1ull << 32)
#define STATE_COPIES (0x7fffffffull << 32)
#define STATE_SEALED (1ull << 63)

struct buffer {
    _Atomic uint64_t state;
    char data[BUFFER_SIZE];
};

static pthread_mutex_t buffer_lock = PTHREAD_MUTEX_INITIALIZER;   /* the rare paths */
static pthread_cond_t work_ready = PTHREAD_COND_INITIALIZER;   /* to the writer */
static pthread_cond_t drained = PTHREAD_COND_INITIALIZER;      /* from the writer */
static pthread_cond_t gathered = PTHREAD_COND_INITIALIZER;     /* cut a gather short */
static pthread_once_t writer_once = PTHREAD_ONCE_INIT;
static struct buffer buffers[2];
static _Atomic(struct buffer *) fill = &buffers[0];
static int writer_running;
static _Atomic int writer_waiting;     /* nothing to write: an append signals work_ready */
static _Atomic int writer_gathering;   /* waits GATHER_MS for more lines before it writes */
static _Atomic int flush_wanted;       /* log_flush() callers waiting */
static _Atomic int full_waiters;       /* callers waiting for room */
static _Atomic pid_t writer_pid;   /* read by log_flush() before any lock */
/* Buffers swapped out and buffers written, ever (buffer_lock): log_flush()
 * waits for the write of the buffer its lines are in. */
static uint64_t swaps, writes_done;

void log_set_syslog(int on)
{
    if (on && !log_to_syslog)
        openlog("detachd", LOG_PID, LOG_DAEMON);
    else if (!on && log_to_syslog)
        closelog();
    log_to_syslog = on;
}

static int syslog_priority(int level)
{
    switch (level) {
    case LOG_ERROR: return SYSLOG_ERR;
    case LOG_DEBUG: return SYSLOG_DEBUG;
    default:        return SYSLOG_INFO;
    }
}

void log_set_level(int level)
{
    log_threshold = level;
}

static const char *level_name(int level)
{
    switch (level) {
    case LOG_ERROR: return "error";
    case LOG_DEBUG: return "debug";
    default:        return "info";
    }
}

/* "ts=2026-11-25T10:00:00" for this second: formatting a date is the
 * dearest part of a line, and a thread logs many lines a second. */
static size_t timestamp(char *out, time_t second)
{
    static _Thread_local time_t cached_second = -1;
    static _Thread_local char cached[32];
    static _Thread_local size_t cached_length;
    struct tm utc;

    if (second != cached_second) {
        gmtime_r(&second, &utc);
        cached_length = strftime(cached, sizeof(cached), "ts=%Y-%m-%dT%H:%M:%S", &utc);
        cached_second = second;
    }
    memcpy(out, cached, cached_length);
    return cached_length;
}

/* Appends a string without a format pass. */
static size_t put(char *out, size_t room, const char *text)
{
    size_t length = strlen(text);

    if (length > room)
        length = room;
    memcpy(out, text, length);
    return length;
}

/* Decimal digits of value, '\0'-ended, at the end of digits[24] (room
 * for 20 digits and a sign before them); returns the first. */
static char *decimal(char digits[24], unsigned long long value)
{
    char *p = digits + 23;

    *p = '\0';
    do
        *--p = (char)('0' + value % 10);
    while (value /= 10);
    return p;
}

/*
 * Why not vsnprintf(): the three lines a job logs made glibc's printf
 * machinery the top user-space cost of an acknowledgement.  The fields
 * of our lines are plain strings and integers; this walks them once.
 * Returns -1 at the first conversion it does not know, having consumed
 * some of args: the caller passes a copy.
 */
static int format_fast(char *out, size_t size, const char *format, va_list args)
{
    size_t used = 0, room = size - 1;

    for (const char *p = format; *p; p++) {
        char digits[24];
        const char *text;
        size_t length;

        if (*p != '%') {
            if (used < room)
                out[used++] = *p;
            continue;
        }
        p++;
        if (*p == 's') {
            text = va_arg(args, const char *);
            if (!text)
                text = "(null)";
        } else if (*p == 'd') {
            int value = va_arg(args, int);
            char *number = decimal(digits, value < 0 ? 0ull - (unsigned long long)value
                                                     : (unsigned long long)value);

            if (value < 0)
                *--number = '-';   /* 24 bytes hold 20 digits and the sign */
            text = number;
        } else if (*p == 'u') {
            text = decimal(digits, va_arg(args, unsigned));
        } else if (p[0] == 'z' && p[1] == 'u') {
            text = decimal(digits, va_arg(args, size_t));
            p++;
        } else if (p[0] == 'l' && p[1] == 'l' && p[2] == 'u') {
            text = decimal(digits, va_arg(args, unsigned long long));
            p += 2;
        } else if (*p == '%') {
            text = "%";
        } else {
            return -1;
        }
        length = strlen(text);
        if (length > room - used)
            length = room - used;
        memcpy(out + used, text, length);
        used += length;
    }
    out[used] = '\0';
    return (int)used;
}

int log_format(char *out, size_t size, const char *format, va_list args)
{
    va_list copy;
    int n;

    va_copy(copy, args);
    n = format_fast(out, size, format, copy);
    va_end(copy);
    if (n < 0) {
        n = vsnprintf(out, size, format, args);
        if (n < 0)
            n = 0, out[0] = '\0';
        if ((size_t)n >= size)
            n = (int)size - 1;
    }
    return n;
}

/* A failed log write has nowhere better to be reported: give up quietly. */
static void write_all(const char *data, size_t length)
{
    while (length > 0) {
        ssize_t n = write(STDERR_FILENO, data, length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        length -= (size_t)n;
    }
}

/* Journal field names are upper-case letters, digits and '_'; ours keep
 * their logfmt names but for job= (JOB_ID=, the name the issue asked for). */
static size_t journal_field(char *out, size_t size, const char *key, const char *value)
{
    size_t used = 0;

    if (strcmp(key, "job") == 0)
        key = "job_id";
    for (const char *p = key; *p && used + 2 < size; p++) {
        char c = *p;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            c = '_';
        out[used++] = c;
    }
    out[used++] = '=';
    used += (size_t)snprintf(out + used, size - used, "%s", value);
    return used < size ? used : size - 1;
}

#define JOURNAL_MAX_FIELDS 24

/* One buffered logfmt line (ts= first, no newline) as one journal entry. */
static void journal_send_line(const char *line, size_t length)
{
    char text[2048], message[2100], priority[16], fields[JOURNAL_MAX_FIELDS][512];
    char key[64], value[480];
    struct iovec iov[JOURNAL_MAX_FIELDS + 3];
    const char *cursor, *after_ts;
    int count = 0, level_priority = SYSLOG_INFO;

    if (length >= sizeof(text))
        length = sizeof(text) - 1;
    memcpy(text, line, length);
    text[length] = '\0';
    after_ts = strchr(text, ' ');
    after_ts = after_ts ? after_ts + 1 : text;
    cursor = after_ts;
    while (count < JOURNAL_MAX_FIELDS &&
           log_fields_next(&cursor, key, sizeof(key), value, sizeof(value))) {
        if (strcmp(key, "level") == 0) {
            level_priority = strcmp(value, "error") == 0   ? SYSLOG_ERR
                             : strcmp(value, "debug") == 0 ? SYSLOG_DEBUG
                                                           : SYSLOG_INFO;
            continue;
        }
        iov[count].iov_base = fields[count];
        iov[count].iov_len = journal_field(fields[count], sizeof(fields[count]), key, value);
        count++;
    }
    snprintf(message, sizeof(message), "MESSAGE=%s", after_ts);
    iov[count].iov_base = message;
    iov[count++].iov_len = strlen(message);
    snprintf(priority, sizeof(priority), "PRIORITY=%d", level_priority);
    iov[count].iov_base = priority;
    iov[count++].iov_len = strlen(priority);
    iov[count].iov_base = (char *)"SYSLOG_IDENTIFIER=detachd";
    iov[count++].iov_len = strlen("SYSLOG_IDENTIFIER=detachd");
    /* A failed send has nowhere better to be reported. */
    (void)sd_journal_sendv(iov, count);
}

/* Writes a run of whole lines out: to stderr, or line by line to the
 * journal. */
static void emit(const char *data, size_t length)
{
    if (!log_to_journal) {
        write_all(data, length);
        return;
    }
    while (length > 0) {
        const char *end = memchr(data, '\n', length);
        size_t line = end ? (size_t)(end - data) : length;

        journal_send_line(data, line);
        if (!end)
            return;
        length -= line + 1;
        data = end + 1;
    }
}

/* Monotonic now plus ms: a gather is not stretched by a clock step. */
static struct timespec after_ms(long ms)
{
    struct timespec at;

    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_nsec += ms * 1000000L;
    if (at.tv_nsec >= 1000000000L) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000L;
    }
    return at;
}

static size_t claimed(struct buffer *buffer)
{
    return (size_t)(atomic_load(&buffer->state) & STATE_BYTES);
}

/* The writer: no more claims on `out`, then wait for the copies in
 * flight.  Their callers may be niced threads the scheduler left waiting;
 * only the writer waits for them. */
static size_t seal(struct buffer *out)
{
    const struct timespec pause = { 0, 50 * 1000 };
    uint64_t state = atomic_fetch_or(&out->state, STATE_SEALED);

    for (int tries = 0; state & STATE_COPIES; tries++) {
        if (tries < 16)
            sched_yield();
        else
            nanosleep(&pause, NULL);
        state = atomic_load(&out->state);
    }
    return (size_t)(state & STATE_BYTES);
}

static void *writer_main(void *unused)
{
    (void)unused;
    pthread_setname_np(pthread_self(), "detach-log");   /* for top -H and perf */
    pthread_mutex_lock(&buffer_lock);
    for (;;) {
        struct buffer *out = atomic_load(&fill), *next;
        size_t length;

        /* Announced before each look, so a caller that claims after it
         * sees the flag and signals under the lock we hold until the
         * wait; again after each wake-up, as a signal meant for the
         * buffer before this one may have taken the flag down. */
        for (;;) {
            atomic_store(&writer_waiting, 1);
            if (claimed(out) > 0 || atomic_load(&full_waiters))
                break;
            pthread_cond_wait(&work_ready, &buffer_lock);
        }
        atomic_store(&writer_waiting, 0);
        /* Let the lines of a burst gather for a moment: one write for
         * them all, and no wake-up of ours for each line in between. */
        if (claimed(out) < BUFFER_SIZE / 2 && !atomic_load(&flush_wanted) &&
            !atomic_load(&full_waiters)) {
            struct timespec until = after_ms(GATHER_MS);

            for (;;) {
                atomic_store(&writer_gathering, 1);
                if (claimed(out) >= BUFFER_SIZE / 2 || atomic_load(&flush_wanted) ||
                    atomic_load(&full_waiters) ||
                    pthread_cond_clockwait(&gathered, &buffer_lock, CLOCK_MONOTONIC, &until) != 0)
                    break;
            }
            atomic_store(&writer_gathering, 0);
        }
        /* The other buffer was written before this one filled, and kept
         * sealed since (a caller that looked at it long ago must not put
         * a line there out of turn): opened, it takes the callers at once. */
        next = out == &buffers[0] ? &buffers[1] : &buffers[0];
        atomic_store(&next->state, 0);
        atomic_store(&fill, next);
        swaps++;
        pthread_cond_broadcast(&drained);   /* callers waiting for room: go on */
        pthread_mutex_unlock(&buffer_lock);
        length = seal(out);
        emit(out->data, length);
        atomic_store(&out->state, STATE_SEALED);
        pthread_mutex_lock(&buffer_lock);
        writes_done++;
        pthread_cond_broadcast(&drained);
    }
    return NULL;
}

/* After a claim: signal the writer only when it sleeps with nothing to
 * write, or gathers and the buffer is half full or a flush is wanted; a
 * busy writer sees the line when it comes back for the next buffer.  The
 * lock only for the signal, the rare case. */
static void wake_writer(size_t claimed_now)
{
    int gathering_done = atomic_load(&writer_gathering) &&
                         (claimed_now >= BUFFER_SIZE / 2 || atomic_load(&flush_wanted));

    if (!atomic_load(&writer_waiting) && !gathering_done)
        return;
    pthread_mutex_lock(&buffer_lock);
    if (atomic_exchange(&writer_waiting, 0))
        pthread_cond_signal(&work_ready);
    else if (gathering_done && atomic_exchange(&writer_gathering, 0))
        pthread_cond_signal(&gathered);
    pthread_mutex_unlock(&buffer_lock);
}

/* Without atexit() or a thread, lines stay synchronous rather than risk
 * being lost at exit or never written. */
static void start_writer(void)
{
    pthread_t thread;

    if (atexit(log_flush) != 0)
        return;
    if (thread_start(&thread, writer_main, NULL) != 0)
        return;
    pthread_detach(thread);   /* cannot fail for a thread just created */
    writer_running = 1;
    atomic_store(&writer_pid, getpid());
}

/* Claims `length` bytes of the fill buffer: their offset, or -1 when the
 * line does not fit (or the writer sealed the buffer as we looked). */
static long claim(struct buffer *buffer, size_t length)
{
    uint64_t state = atomic_load(&buffer->state);

    do {
        if ((state & STATE_SEALED) || (state & STATE_BYTES) + length > BUFFER_SIZE)
            return -1;
    } while (!atomic_compare_exchange_weak(&buffer->state, &state, state + STATE_COPY + length));
    return (long)(state & STATE_BYTES);
}

/* The writer, from a rare path: both its waits look at full_waiters and
 * flush_wanted under the lock, so a signal under it cannot be lost. */
static void wake_writer_locked(void)
{
    pthread_cond_signal(&work_ready);
    pthread_cond_signal(&gathered);
}

/* No room: wait, under the lock, for the writer to swap the buffers. */
static void wait_for_room(struct buffer *full)
{
    pthread_mutex_lock(&buffer_lock);
    atomic_fetch_add(&full_waiters, 1);
    wake_writer_locked();
    while (atomic_load(&fill) == full)
        pthread_cond_wait(&drained, &buffer_lock);
    atomic_fetch_sub(&full_waiters, 1);
    pthread_mutex_unlock(&buffer_lock);
}

static void append(const char *line, size_t length)
{
    pthread_once(&writer_once, start_writer);
    if (!writer_running) {
        pthread_mutex_lock(&buffer_lock);
        emit(line, length);   /* under the lock: lines never interleave */
        pthread_mutex_unlock(&buffer_lock);
        return;
    }
    for (;;) {
        struct buffer *buffer = atomic_load(&fill);
        long offset = claim(buffer, length);

        if (offset < 0) {
            if (atomic_load(&buffer->state) & STATE_SEALED)
                continue;   /* swapped as we looked: the other one */
            wait_for_room(buffer);
            continue;
        }
        memcpy(buffer->data + offset, line, length);
        atomic_fetch_sub(&buffer->state, STATE_COPY);   /* release: the copy is done */
        wake_writer((size_t)offset + length);
        return;
    }
}

void log_flush(void)
{
    uint64_t target;

    /* No writer yet means nothing buffered.  A forked child has no writer
     * to wait for (and may have inherited the lock held). */
    if (getpid() != atomic_load(&writer_pid))
        return;
    atomic_fetch_add(&flush_wanted, 1);
    pthread_mutex_lock(&buffer_lock);
    /* Swaps happen under the lock: every line claimed before this call is
     * in a buffer swapped out already, or in the fill one if it holds any. */
    target = swaps + (claimed(atomic_load(&fill)) > 0);
    while (writes_done < target) {
        wake_writer_locked();
        pthread_cond_wait(&drained, &buffer_lock);
    }
    pthread_mutex_unlock(&buffer_lock);
    atomic_fetch_sub(&flush_wanted, 1);
}

static void log_vline(int level, const char *event, const char *fields, va_list args)
{
    char line[2048];
    struct timespec now;
    unsigned milliseconds;
    size_t used;
    int n;

    if (level > log_threshold)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    used = timestamp(line, now.tv_sec);
    milliseconds = (unsigned)(now.tv_nsec / 1000000);
    line[used++] = '.';
    line[used++] = (char)('0' + milliseconds / 100);
    line[used++] = (char)('0' + milliseconds / 10 % 10);
    line[used++] = (char)('0' + milliseconds % 10);
    used += put(line + used, 64, "Z level=");
    used += put(line + used, 16, level_name(level));
    used += put(line + used, 16, " event=");
    used += put(line + used, 256, event);
    line[used++] = ' ';
    n = log_format(line + used, sizeof(line) - used, fields, args);
    used += (size_t)n;
    if (used > sizeof(line) - 2)
        used = sizeof(line) - 2;   /* truncated: still one whole line */
    if (log_to_syslog) {
        /* Past the "ts=... " field: syslog puts its own time on the line. */
        const char *text = strchr(line, ' ');
        line[used] = '\0';
        syslog(syslog_priority(level), "%s", text ? text + 1 : line);
        return;
    }
    if (log_output == LOG_JSON && !log_to_journal) {
        char json[4096];

        line[used] = '\0';
        used = log_line_to_json(line, json, sizeof(json) - 1);
        json[used++] = '\n';
        append(json, used);
        return;
    }
    line[used++] = '\n';
    append(line, used);
}

void log_line(int level, const char *event, const char *fields, ...)
{
    va_list args;

    va_start(args, fields);
    log_vline(level, event, fields, args);
    va_end(args);
}

void log_set_output_format(int format)
{
    log_output = format;
}

void log_set_journal(int on)
{
    log_to_journal = on;
}

int log_stderr_is_journal(void)
{
    const char *stream = getenv("JOURNAL_STREAM");
    unsigned long long device, inode;
    struct stat status;

    if (!stream || sscanf(stream, "%llu:%llu", &device, &inode) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &status) < 0)
        return 0;
    return (unsigned long long)status.st_dev == device && (unsigned long long)status.st_ino == inode;
}

/* Opens path and puts it on fd 2 in one step. */
static int point_stderr_at(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0)
        return -1;
    if (dup2(fd, STDERR_FILENO) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    close(fd);
    return 0;
}

int log_set_file(const char *path)
{
    char *copy = strdup(path);

    if (!copy)
        return -1;
    if (point_stderr_at(path) < 0) {
        int saved = errno;
        free(copy);
        errno = saved;
        return -1;
    }
    pthread_mutex_lock(&reopen_lock);
    free(log_file_path);
    log_file_path = copy;
    pthread_mutex_unlock(&reopen_lock);
    return 0;
}

int log_reopen(void)
{
    int rc = 0;

    /* The lines logged before the rotation go to the old file. */
    log_flush();
    pthread_mutex_lock(&reopen_lock);
    if (log_file_path)
        rc = point_stderr_at(log_file_path);
    pthread_mutex_unlock(&reopen_lock);
    return rc;
}

int log_fields_next(const char **cursor, char *key, size_t key_size, char *value,
                    size_t value_size)
{
    const char *p = *cursor;
    size_t k = 0, v = 0;

    while (*p == ' ')
        p++;
    if (*p == '\0' || key_size == 0 || value_size == 0)
        return 0;
    while (*p && *p != '=' && *p != ' ') {
        if (k + 1 < key_size)
            key[k++] = *p;
        p++;
    }
    key[k] = '\0';
    if (*p == '=')
        p++;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            char c = *p;
            if (c == '\\' && p[1]) {
                p++;
                c = *p == 'n' ? '\n' : *p;
            }
            if (v + 1 < value_size)
                value[v++] = c;
        }
        if (*p == '"')
            p++;
    } else {
        for (; *p && *p != ' '; p++)
            if (v + 1 < value_size)
                value[v++] = *p;
    }
    value[v] = '\0';
    *cursor = p;
    return 1;
}

/* A whole decimal integer that JSON reads as the same number. */
static int is_json_integer(const char *s)
{
    const char *digits = *s == '-' ? s + 1 : s;
    size_t n = strlen(digits);

    if (n == 0 || n > 15 || (digits[0] == '0' && n > 1))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (digits[i] < '0' || digits[i] > '9')
            return 0;
    return 1;
}

/* Appends s as a JSON string; the length written, or 0 when it does not fit. */
static size_t json_string(char *out, size_t room, const char *s)
{
    size_t used = 0;

    if (room < 2)
        return 0;
    out[used++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char escaped[8];
        size_t n;

        if (*p == '"' || *p == '\\')
            n = (size_t)snprintf(escaped, sizeof(escaped), "\\%c", *p);
        else if (*p == '\n')
            n = (size_t)snprintf(escaped, sizeof(escaped), "\\n");
        else if (*p < 0x20)
            n = (size_t)snprintf(escaped, sizeof(escaped), "\\u%04x", *p);
        else
            n = (size_t)snprintf(escaped, sizeof(escaped), "%c", *p);
        if (used + n + 1 > room)
            return 0;
        memcpy(out + used, escaped, n);
        used += n;
    }
    if (used + 1 > room)
        return 0;
    out[used++] = '"';
    return used;
}

size_t log_line_to_json(const char *line, char *out, size_t size)
{
    char key[128], value[2048], member[4400];
    const char *cursor = line;
    size_t used = 0;
    int first = 1;

    if (size < 3) {
        if (size)
            out[0] = '\0';
        return 0;
    }
    out[used++] = '{';
    while (log_fields_next(&cursor, key, sizeof(key), value, sizeof(value))) {
        size_t n = 0, part;

        if (!first)
            member[n++] = ',';
        part = json_string(member + n, sizeof(member) - n, key);
        if (part == 0)
            continue;
        n += part;
        member[n++] = ':';
        if (strcmp(key, "job") != 0 && is_json_integer(value)) {
            part = (size_t)snprintf(member + n, sizeof(member) - n, "%s", value);
        } else {
            part = json_string(member + n, sizeof(member) - n, value);
            if (part == 0)
                continue;
        }
        n += part;
        if (used + n + 2 > size)   /* room for '}' and '\0' */
            continue;
        memcpy(out + used, member, n);
        used += n;
        first = 0;
    }
    out[used++] = '}';
    out[used] = '\0';
    return used;
}

const char *log_quote(char *buf, size_t size, const char *s)
{
    size_t out = 0;
    int needs_quotes = (*s == '\0');

    for (const char *p = s; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
            needs_quotes = 1;
    if (!needs_quotes) {
        snprintf(buf, size, "%s", s);
        return buf;
    }
    if (size < 3)
        return "\"\"";
    buf[out++] = '"';
    for (const char *p = s; *p && out + 3 < size; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            buf[out++] = '\\';
            buf[out++] = (char)c;
        } else if (c == '\n') {
            buf[out++] = '\\';
            buf[out++] = 'n';
        } else if (c < 0x20) {
            buf[out++] = '?';
        } else {
            buf[out++] = (char)c;
        }
    }
    buf[out++] = '"';
    buf[out] = '\0';
    return buf;
}

/* ---- the public face (detach.h): the same log, for programs built on
 * libdetach (detachd), so their lines join the library's in one stream ---- */

void detach_log(int level, const char *event, const char *fields, ...)
{
    va_list args;

    va_start(args, fields);
    log_vline(level, event, fields, args);
    va_end(args);
}

const char *detach_log_quote(char *buf, size_t size, const char *s)
{
    return log_quote(buf, size, s);
}

void detach_log_set_json(int on)
{
    log_set_output_format(on ? LOG_JSON : LOG_LOGFMT);
}

void detach_log_set_syslog(int on)
{
    log_set_syslog(on);
}

void detach_log_set_journal(int on)
{
    log_set_journal(on);
}

int detach_log_stderr_is_journal(void)
{
    return log_stderr_is_journal();
}

int detach_log_set_file(const char *path)
{
    return log_set_file(path);
}

int detach_log_reopen(void)
{
    return log_reopen();
}
