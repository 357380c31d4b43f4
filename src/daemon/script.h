/*
 * script.h - detachd's handler: a configured command run as a job.
 *
 * The command is spawned without a shell in its own process group (under
 * detach-run, which leads the group: see detach_run.c), with an
 * allow-listed environment (script_env.h), the body on stdin,
 * progress lines on fd 3, and its output in the job log (trigger) or as
 * the response (attached).  With job_log_max a trigger job's output comes
 * through a pipe that the job thread copies into the log, up to the cap.  Stopping it signals the whole group.
 */
#ifndef DETACH_SCRIPT_H
#define DETACH_SCRIPT_H

#include <sys/types.h>
#include "detach.h"

/*
 * detach-run, the per-job supervisor (detach_run.c), and what detachd
 * hands every one it starts.  Owned by detachd for its whole life.
 */
struct script_supervisor {
    const char *program;     /* detach-run's path */
    int lifeline_fd;         /* read end of a pipe only detachd writes to */
    int lock_fd;             /* the spool's lock, -1: none */
    int will_retry;          /* a run cut short runs again (a spool is set) */
};

struct script_route {
    char *const *argv;
    char *const *on_shutdown_argv;   /* NULL: none */
    int ignore_user_abort;
    unsigned time_limit;             /* seconds, 0: none */
    unsigned kill_grace;             /* seconds from SIGTERM to SIGKILL */
    const char *log_dir;             /* NULL: detachd's own stderr */
    size_t job_log_max;              /* bytes of a trigger job's log file in
                                        log_dir; 0: no limit (the child
                                        writes the file itself) */
    const char *user;                /* NULL: run as detachd runs */
    uid_t uid;
    gid_t gid;
    const struct script_supervisor *supervisor;   /* NULL: the command leads
                                                     its group itself */
};

/* The detach_handler for script routes; arg is a struct script_route. */
void script_run_job(detach_job *job, void *arg);

/*
 * Splits a script's first output into a CGI head and the body: 1 when
 * bytes [0, *body_start) are header lines ending in an empty line, 0 when
 * the output has no head, -1 when more bytes are needed to tell.
 */
int script_output_head(const char *data, size_t length, size_t *body_start);

/* "PERCENT [message]" from fd 3: 0 with percent clamped to 0..100, or -1. */
int script_progress_parse(const char *line, int *percent, const char **message);

#endif
