/*
 * fd_budget.h - the descriptor budget: how many descriptors a server's
 * configuration needs, against RLIMIT_NOFILE, and how many connections
 * may be open at once so that idle connections never take the
 * descriptors the running jobs need.
 *
 * A pure computation (dt_fd_budget_compute), tested directly, used at serve
 * time by the library (the connection cap, a warning in the log) and by
 * detachd --check-config and its start (the warning or the refusal, with
 * the figures).
 */
#ifndef DETACH_FD_BUDGET_H
#define DETACH_FD_BUDGET_H

#include <stddef.h>

/* The server's own when they cannot be counted (--check-config): stdio,
 * the listener, epoll, eventfds and the timerfd, the stop pipe, the spool
 * directory, the log. */
#define FD_BUDGET_OWN_ESTIMATE 24
/* Kept free beyond what is counted: a descriptor the count missed, a
 * syslog reconnect, a status page that reads a file. */
#define FD_BUDGET_SLACK 8
/* A worker holds a spool file being written. */
#define FD_BUDGET_PER_WORKER 1
/* A connection: its socket, and nothing else (answers are written on it). */
#define FD_BUDGET_PER_CONNECTION 1
/* A web server needs a few connections, whatever jobs take. */
#define FD_BUDGET_MIN_CONNECTIONS 8

enum fd_budget_verdict {
    FD_BUDGET_FITS,        /* max_jobs jobs and MIN_CONNECTIONS connections fit */
    FD_BUDGET_SHORT,       /* at least one job and one connection fit, not all */
    FD_BUDGET_IMPOSSIBLE   /* not even one job beside one connection */
};

struct fd_budget {
    unsigned long long limit;        /* RLIMIT_NOFILE's soft limit */
    unsigned long long own;          /* the server's own, slack included */
    unsigned long long workers;      /* workers x PER_WORKER */
    unsigned long long jobs;         /* max_jobs x job_descriptors: kept for jobs */
    unsigned long long needed;       /* own + workers + jobs + MIN_CONNECTIONS' */
    unsigned long long connections;  /* open connections allowed at once, >= 1 */
    unsigned jobs_at_once;           /* jobs that may run at once: max_jobs when it
                                        fits, else what the descriptors left allow */
    enum fd_budget_verdict verdict;
};

/*
 * limit: RLIMIT_NOFILE (RLIM_INFINITY is fine); own_in_use: descriptors
 * open now that stay open (0: unknown, FD_BUDGET_OWN_ESTIMATE is taken).
 * When all does not fit, connections still get MIN_CONNECTIONS (or what
 * is left after one job) and the jobs the rest: jobs_at_once says how
 * many can run at once, and the others wait in the queue rather than
 * start without descriptors and fail.
 */
void dt_fd_budget_compute(struct fd_budget *budget, unsigned long long limit,
                       unsigned long long own_in_use, unsigned workers, unsigned max_jobs,
                       unsigned job_descriptors);

/* "limit=N needed=N own=N workers=N jobs=N max_connections=N", for logs
 * and messages. */
void dt_fd_budget_describe(const struct fd_budget *budget, char *buffer, size_t size);

/* Descriptors open in this process now (/proc/self/fd); 0 when unknown. */
unsigned long long dt_fd_budget_open_now(void);

#endif
