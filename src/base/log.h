/*
 * log.h - one line per event (logfmt, or JSON) on stderr, in a file, to
 * syslog or to the systemd journal.
 *
 * Lines look like "ts=2026-11-25T10:00:00.123Z level=info event=started
 * job=... route=/x".  Each line is written whole with one write(2) when
 * dt_log_line() returns: lines from several threads never interleave.  With syslog the same text goes to syslog(3),
 * one call per line, without the ts= field (syslog stamps its own), at
 * LOG_ERR, LOG_INFO or LOG_DEBUG.
 */
#ifndef DETACH_LOG_H
#define DETACH_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_ERROR = -1, LOG_INFO = 0, LOG_DEBUG = 1 };

/* Lines above this level are dropped; set once at start. */
void dt_log_set_level(int level);

/* on: openlog("detachd", LOG_PID, LOG_DAEMON) and every later line goes
 * to syslog instead of stderr; off: back to stderr.  Set once at start,
 * before any thread logs. */
void dt_log_set_syslog(int on);

enum log_output_format { LOG_LOGFMT, LOG_JSON };

/* LOG_JSON: each line is one JSON object, {"ts":"...","level":"info",
 * "event":"started","job":"...",...}, the same fields as logfmt.  Set once
 * at start, before any thread logs. */
void dt_log_set_output_format(int format);

/* on: every later line goes to the systemd journal (sd_journal_send), one
 * entry per line with MESSAGE= (the logfmt line less ts=), PRIORITY=,
 * SYSLOG_IDENTIFIER=detachd, and each field as its own upper-case field:
 * EVENT=, JOB_ID= (job=), ROUTE=, RESULT=, ERROR=...  Set once at start. */
void dt_log_set_journal(int on);

/* 1 when stderr is the journal stream systemd gave us (JOURNAL_STREAM
 * names its device and inode): the service runs under systemd. */
int dt_log_stderr_is_journal(void);

/* Points stderr at path (appended, created 0640 when missing): the event
 * lines, and whatever else detachd prints, go there.  dt_log_reopen() opens
 * the path again -- after logrotate moved the file away -- and swaps it in
 * atomically (dup2), so no line is lost or split.  0, or -1 with errno;
 * dt_log_reopen() without a file is 0 and does nothing. */
int dt_log_set_file(const char *path);
int dt_log_reopen(void);

/*
 * The logfmt reader JSON and journal output share: the next key=value
 * pair at *cursor (bare value, or quoted with \" \\ \n escapes; an
 * unterminated quote runs to the end).  1 with key and value filled (cut
 * to their sizes, '\0'-ended) and *cursor moved past the pair, 0 at the end.
 */
int dt_log_fields_next(const char **cursor, char *key, size_t key_size, char *value,
                    size_t value_size);

/* One logfmt line (no newline) as a JSON object, '\0'-ended in out.  Whole
 * integers are numbers, other values strings (the job id always a string).
 * A pair that does not fit is left out, so the object stays valid JSON.
 * Returns its length. */
size_t dt_log_line_to_json(const char *line, char *out, size_t size);

/* fields: printf-style "key=value key2=value2"; the caller quotes values
 * that may hold spaces with dt_log_quote(). */
void dt_log_line(int level, const char *event, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies s into buf as a logfmt value: bare when safe, else quoted. */
const char *dt_log_quote(char *buf, size_t size, const char *s);

#endif
