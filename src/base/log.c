/*
 * log.c - event lines (logfmt or JSON) on stderr, in a file, to syslog or
 * to the systemd journal.
 *
 * One event, one line: lines from job threads, workers and the watcher
 * never interleave, and a reader can grep or parse them.
 *
 * A line is formatted on the caller's stack (vsnprintf) and written with
 * one write(2) of at most 4 KiB: on a pipe that is below PIPE_BUF, so it
 * is atomic, and on a file the kernel serialises writes to one open file
 * (and O_APPEND puts each at the end).  No lock, no buffer, no thread: a
 * line is on stderr when dt_log_line() returns, so a crash loses none, and a
 * caller preempted mid-line holds up nobody else.  (The lines used to be
 * gathered by a writer thread in a lock-free double buffer with a printf
 * of its own, for the request path's CPU; by hand the plain way costs no
 * ack a user would notice: see docs/architecture.md.)
 *
 * The journal: one sd_journal_sendv() entry per line, its fields made
 * from the formatted logfmt text, as JSON lines are (dt_log_line_to_json()),
 * so every format carries the same fields.  A log file is stderr pointed
 * at it: dt_log_reopen() dup2()s a fresh descriptor over fd 2, which is
 * atomic, so a concurrent write goes to the old file or the new, whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
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
#include "detach.h"

static int log_threshold = LOG_INFO;
static int log_to_syslog;
static int log_to_journal;
static int log_output = LOG_LOGFMT;
static char *log_file_path;   /* NULL: stderr is whatever we were given */
static pthread_mutex_t reopen_lock = PTHREAD_MUTEX_INITIALIZER;

void dt_log_set_syslog(int on)
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

void dt_log_set_level(int level)
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
           dt_log_fields_next(&cursor, key, sizeof(key), value, sizeof(value))) {
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

/* One whole line, '\n'-ended, out: to stderr, or to the journal. */
static void emit(const char *line, size_t length)
{
    if (log_to_journal)
        journal_send_line(line, length - 1);
    else
        write_all(line, length);
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
    n = vsnprintf(line + used, sizeof(line) - used, fields, args);
    if (n > 0)
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
        used = dt_log_line_to_json(line, json, sizeof(json) - 1);
        json[used++] = '\n';
        emit(json, used);
        return;
    }
    line[used++] = '\n';
    emit(line, used);
}

void dt_log_line(int level, const char *event, const char *fields, ...)
{
    va_list args;

    va_start(args, fields);
    log_vline(level, event, fields, args);
    va_end(args);
}

void dt_log_set_output_format(int format)
{
    log_output = format;
}

void dt_log_set_journal(int on)
{
    log_to_journal = on;
}

int dt_log_stderr_is_journal(void)
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

int dt_log_set_file(const char *path)
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

int dt_log_reopen(void)
{
    int rc = 0;

    pthread_mutex_lock(&reopen_lock);
    if (log_file_path)
        rc = point_stderr_at(log_file_path);
    pthread_mutex_unlock(&reopen_lock);
    return rc;
}

int dt_log_fields_next(const char **cursor, char *key, size_t key_size, char *value,
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

size_t dt_log_line_to_json(const char *line, char *out, size_t size)
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
    while (dt_log_fields_next(&cursor, key, sizeof(key), value, sizeof(value))) {
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

const char *dt_log_quote(char *buf, size_t size, const char *s)
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
    return dt_log_quote(buf, size, s);
}

void detach_log_set_json(int on)
{
    dt_log_set_output_format(on ? LOG_JSON : LOG_LOGFMT);
}

void detach_log_set_syslog(int on)
{
    dt_log_set_syslog(on);
}

void detach_log_set_journal(int on)
{
    dt_log_set_journal(on);
}

int detach_log_stderr_is_journal(void)
{
    return dt_log_stderr_is_journal();
}

int detach_log_set_file(const char *path)
{
    return dt_log_set_file(path);
}

int detach_log_reopen(void)
{
    return dt_log_reopen();
}
