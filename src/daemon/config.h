/*
 * config.h - detachd's INI configuration file: one [detachd] section and
 * one [route PATH] section per route.
 *
 * Every error is one line, "FILE:LINE: message" (or "FILE: message" when
 * the file cannot be read at all), ready to print as it is, so a user can
 * go straight to the line at fault.
 *
 * Values end at an inline "; comment", which inih recognises only after
 * whitespace: "a;b" is one value, "a ;b" is "a".  A command therefore cannot
 * hold " ;", even inside quotes.
 */
#ifndef DETACH_CONFIG_H
#define DETACH_CONFIG_H

#include <stddef.h>
#include "detach.h"

/* Longest line accepted, newline excluded; longer ones are errors. */
#define CONFIG_MAX_LINE 4095

struct config_route {
    char *path;              /* "/jobs/report"; ending in "/" "*": a prefix */
    char **argv;             /* NULL-terminated; argv[0] is absolute */
    char **on_shutdown_argv; /* NULL when unset; else like argv */
    detach_mode mode;        /* DETACH_TRIGGER unless configured */
    int ignore_user_abort;   /* 0/1; defaults from mode once loaded */
    unsigned time_limit;     /* seconds, 0 = none */
    unsigned kill_grace;     /* seconds between SIGTERM and SIGKILL */
    char *user;              /* NULL when unset; existed when loaded */
    int line;                /* of the [route ...] header, for messages */
};

enum config_log_target { CONFIG_LOG_STDERR, CONFIG_LOG_SYSLOG, CONFIG_LOG_JOURNAL };
enum config_log_format { CONFIG_LOG_LOGFMT, CONFIG_LOG_JSON };

/*
 * The [detachd] keys, beside the ones the product page lists:
 *
 *   status_allow = 127.0.0.1 ::1 10.0.0.0/8   who may read status_path: the
 *                  REMOTE_ADDRs (addresses and CIDR ranges, separated by
 *                  spaces) allowed; others get 403.  Unset: 127.0.0.1 ::1.
 *   job_log_max  = 10M    the most a trigger job writes to its log in
 *                  log_dir (K, M or G suffix); past it the rest is dropped
 *                  after one "[detach: log truncated at N bytes]" line.
 *                  0: no limit, the job writes the file itself.
 *   log          = stderr | syslog | journal   where detachd's event lines
 *                  go; syslog: ident "detachd", facility daemon, same text;
 *                  journal: one entry a line with its fields (JOB_ID=...).
 *                  stderr that is systemd's journal stream means journal.
 *   log_file     = /var/log/detach/detachd.log   with log = stderr: the
 *                  lines go to this file instead; SIGUSR1 reopens it.
 *   log_format   = logfmt | json   how a line looks (stderr, log_file).
 *   job_log_keep = 604800   seconds a job log in log_dir is kept after
 *                  its last write; older ones are removed in the
 *                  background.  0: kept for ever.
 *   queue_bytes  = 64M    the params and bodies of queued jobs, in all;
 *                  a trigger that would take the queue past it gets 503
 *                  with Retry-After, as a full queue does.  A job always
 *                  fits an empty queue, so one body larger than the
 *                  budget is not refused for that alone.
 */
struct config {
    char *path;              /* the file it came from; NULL for defaults */
    char *listen;            /* NULL: inherited socket */
    unsigned workers;
    unsigned max_jobs;
    unsigned queue;          /* 0 is valid: no waiting, 503 at once */
    size_t max_body;         /* bytes */
    unsigned drain_timeout;  /* seconds, 0 = stop jobs at once */
    unsigned socket_mode;    /* permissions of a unix socket */
    char *spool;             /* NULL when unset */
    char *socket_owner;      /* "user" or "user:group" of a unix socket; NULL */
    char *status_path;       /* NULL when unset; starts with '/' */
    char *log_dir;           /* NULL when unset; jobs log to <id>.log there */
    unsigned read_timeout;   /* seconds */
    unsigned job_nice;       /* niceness of jobs, 0..19 (default 10) */
    char *status_allow;      /* NULL when unset: the library's default */
    size_t job_log_max;      /* bytes; 0: unlimited */
    size_t queue_bytes;      /* params + body of the queued jobs, at most */
    enum config_log_target log_target;
    /* Where a key was set, for messages about it: 0 when not set in the
     * file; CONFIG_LINE_FLAG when a command-line flag gave the value. */
    int spool_line, status_path_line, max_jobs_line, log_file_line;
    int daemon_line;         /* of the [detachd] header; 0: none */
    int last_line;           /* the file's last line: for what is missing */
    char *log_file;          /* NULL when unset */
    enum config_log_format log_format;
    unsigned job_log_keep;   /* seconds; 0: job logs are never pruned */
    struct config_route *routes;
    size_t route_count;
};

/* Fills in every default; owns nothing yet, so config_free is optional. */
void config_init_defaults(struct config *config);

/*
 * Reads path into *config, starting from the defaults.  0 on success: the
 * previous contents of *config are overwritten, not freed.  -1 on error with
 * the message in errbuf; *config is then untouched, so a reload (SIGHUP)
 * can keep running on the old one.
 *
 * Not thread-safe: it sets inih's global options.
 */
int config_load(struct config *config, const char *path, char *errbuf, size_t errbuf_size);

/*
 * Checks that every route's command and on_shutdown program is an
 * executable regular file (config_load does not, so that a config can be
 * read on another host).  -1 with "FILE:LINE: ..." naming the route's line.
 */
int config_check_commands(const struct config *config, char *errbuf, size_t errbuf_size);

/* A line number meaning "the value came from a command-line flag". */
#define CONFIG_LINE_FLAG (-1)

/*
 * What detachd would refuse at start beyond the file's syntax, so that
 * --check-config and the start agree: no [route] section at all; a
 * status_path that hides a route whole (equal to an exact route, or a
 * route under <status_path>/jobs/, which the status page answers).  -1
 * with "FILE:LINE: ..." in errbuf.
 *
 * A status_path inside a prefix route ("/x/" "*" and "/x/status") is not
 * an error: that route still serves every other path below it, and a
 * catch-all route beside a status page is a fair configuration.  Such an
 * overlap is described in notebuf (empty when none), for a warning.
 */
int config_check_serving(const struct config *config, char *errbuf, size_t errbuf_size,
                         char *notebuf, size_t notebuf_size);

/*
 * Can the spool directory be used: a directory (or one mkdir() can make:
 * its parent is a writable directory) where files and tmp/ and corrupt/
 * can be created?  Nothing is created.  -1 with "FILE:LINE: spool ...:
 * why" (the spool key's line), or "--spool DIR: why" when the flag gave it.
 * 0 when no spool is set.
 */
int config_check_spool(const struct config *config, char *errbuf, size_t errbuf_size);
/* A log_file the start could not open for appending (a missing directory,
 * no write permission, not a file): an error at its line.  Creates
 * nothing. */
int config_check_log_file(const struct config *config, char *errbuf, size_t errbuf_size);

/* Frees everything and leaves the defaults, so freeing twice is harmless. */
void config_free(struct config *config);

#endif
