/*
 * log.h - one logfmt line per event on stderr, or to syslog.
 *
 * Lines look like "ts=2026-11-25T10:00:00.123Z level=info event=started
 * job=... route=/x".  Lines are buffered and a writer thread writes
 * them to stderr, whole and in the order of the calls: lines from several
 * threads never interleave.  With syslog the same text goes to syslog(3),
 * one call per line, without the ts= field (syslog stamps its own), at
 * LOG_ERR, LOG_INFO or LOG_DEBUG.
 */
#ifndef DETACH_LOG_H
#define DETACH_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_ERROR = -1, LOG_INFO = 0, LOG_DEBUG = 1 };

/* Lines above this level are dropped; set once at start. */
void log_set_level(int level);

/* on: openlog("detachd", LOG_PID, LOG_DAEMON) and every later line goes
 * to syslog instead of stderr; off: back to stderr.  Set once at start,
 * before any thread logs. */
void log_set_syslog(int on);

/* fields: printf-style "key=value key2=value2"; the caller quotes values
 * that may hold spaces with log_quote(). */
void log_line(int level, const char *event, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns once every line logged before the call is written to stderr.
 * Any thread may call it; it is registered with atexit() on the first
 * line, so a normal exit() loses nothing.  A crash (SIGSEGV, kill -9) may
 * lose the lines still buffered: at most one buffer's worth, usually none. */
void log_flush(void);

/*
 * vsnprintf() for the conversions log lines use (%s %d %u %zu %llu %%),
 * a few times faster; anything else (a width, another conversion) goes to
 * vsnprintf() itself.  Writes at most size - 1 bytes and a '\0' (size > 0);
 * returns the bytes written, so a long value is cut, not overrun.
 */
int log_format(char *out, size_t size, const char *format, va_list args);

/* Copies s into buf as a logfmt value: bare when safe, else quoted. */
const char *log_quote(char *buf, size_t size, const char *s);

#endif
