/*
 * log.c - logfmt event lines on stderr or to syslog.
 *
 * One event, one line, one write(2) (or one syslog() call): lines from job
 * threads, workers and the watcher never interleave, and a reader can grep
 * or parse them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* <syslog.h> spells two of its priorities like our levels in log.h: keep
 * its values, then let log.h have the names. */
enum {
    SYSLOG_ERR = LOG_ERR,
    SYSLOG_INFO = LOG_INFO,
    SYSLOG_DEBUG = LOG_DEBUG,
};
#undef LOG_INFO
#undef LOG_DEBUG

#include "log.h"

static int log_threshold = LOG_INFO;
static int log_to_syslog;

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

void log_line(int level, const char *event, const char *fields, ...)
{
    char line[2048];
    struct timespec now;
    unsigned milliseconds;
    size_t used;
    va_list args;
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
    va_start(args, fields);
    n = vsnprintf(line + used, sizeof(line) - used, fields, args);
    va_end(args);
    if (n < 0)
        n = 0;
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
    line[used++] = '\n';
    /* A failed log write has nowhere better to be reported. */
    if (write(STDERR_FILENO, line, used) < 0)
        return;
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
