/*
 * run_protocol.h - what detachd tells detach-run, its per-job supervisor.
 *
 * detachd starts detach-run instead of a job's command; detach-run runs the
 * command in its own process group, stops what the command leaves behind,
 * and kills the lot if detachd dies (see detach_run.c).  Everything it
 * needs comes on its command line, so it needs no config and no library:
 *
 *     detach-run GRACE FLAGS N HOOK_0 .. HOOK_N-1 -- COMMAND ARG...
 *
 * GRACE is kill_grace in seconds, FLAGS "-" or "r" (a run cut short by
 * detachd's death runs again: a spool is set), then the N words of the
 * route's on_shutdown (N = 0: none), a "--" slot, then the command.  The
 * count, not the "--", delimits the hook, so either may hold any word.
 *
 * Descriptors: 0-3 the command's (stdin, stdout, stderr, progress),
 * 4 the lifeline (EOF: detachd is gone), 5 the start report (an int errno
 * if the command could not be started; EOF once it runs), 6 the job log
 * for the hook and detach-run's own messages, 7 the spool lock, when any.
 */
#ifndef DETACH_RUN_PROTOCOL_H
#define DETACH_RUN_PROTOCOL_H

#include <stdint.h>

enum {
    RUN_FD_LIFELINE = 4,
    RUN_FD_REPORT = 5,
    RUN_FD_HOOK_LOG = 6,
    RUN_FD_LOCK = 7,
};

struct run_plan {
    unsigned kill_grace;     /* seconds from SIGTERM to SIGKILL for leftovers */
    int will_retry;          /* a cut-short run runs again */
    char **on_shutdown;      /* NULL-terminated, or NULL: no hook */
    char **command;          /* NULL-terminated, at least one word */
};

/*
 * detach-run's argv for one run: one allocation (free() it), pointing at
 * the caller's strings.  on_shutdown may be NULL.  NULL on ENOMEM.
 */
char **run_argv_build(const char *program, unsigned kill_grace, int will_retry,
                      char *const *on_shutdown, char *const *command);

/*
 * Reads run_argv_build()'s layout back; terminates the hook's slice in
 * place (the "--" slot becomes NULL).  0, or -1 for anything malformed.
 */
int run_argv_parse(int argc, char **argv, struct run_plan *plan);

/* How the run ended, for the hook of a run cut short by detachd's death. */
struct run_outcome {
    int exit_code;           /* when exit_signal < 0 */
    int exit_signal;         /* -1: it exited */
    uint64_t elapsed_ms;
    int will_retry;
};

/*
 * The hook's environment: environment (the job's) without any DETACH_
 * outcome variable it may hold, plus DETACH_CONNECTION_STATUS=0,
 * DETACH_EXIT_CODE or DETACH_EXIT_SIGNAL, DETACH_ELAPSED_MS, DETACH_RESULT
 * and DETACH_WILL_RETRY.  One allocation (free() it); NULL on ENOMEM.
 */
char **run_shutdown_environment(char *const *environment, const struct run_outcome *outcome);

#endif
