/*
 * fd_budget.c - the descriptor budget (fd_budget.h).
 *
 * Descriptors are handed out lowest first to whoever asks, so without a
 * budget a client that holds many idle connections takes the descriptors
 * a job needs to start, and every job fails while the connections sit.
 * The budget keeps max_jobs x job_descriptors for jobs and lets
 * connections have the rest.
 */
#include <dirent.h>
#include <stdio.h>

#include "detach.h"
#include "server/fd_budget.h"

static unsigned long long floor_difference(unsigned long long a, unsigned long long b)
{
    return a > b ? a - b : 0;
}

void dt_fd_budget_compute(struct fd_budget *budget, unsigned long long limit,
                       unsigned long long own_in_use, unsigned workers, unsigned max_jobs,
                       unsigned job_descriptors)
{
    unsigned long long fixed, left, one_job_left;

    if (!job_descriptors)
        job_descriptors = 1;   /* a job holds its stack at least; no division by 0 */
    budget->limit = limit;
    budget->own = (own_in_use ? own_in_use : FD_BUDGET_OWN_ESTIMATE) + FD_BUDGET_SLACK;
    budget->workers = (unsigned long long)workers * FD_BUDGET_PER_WORKER;
    budget->jobs = (unsigned long long)max_jobs * job_descriptors;
    fixed = budget->own + budget->workers;
    budget->needed = fixed + budget->jobs + FD_BUDGET_MIN_CONNECTIONS * FD_BUDGET_PER_CONNECTION;
    left = floor_difference(limit, fixed);
    one_job_left = floor_difference(left, job_descriptors) / FD_BUDGET_PER_CONNECTION;
    budget->jobs_at_once = max_jobs;
    if (limit >= budget->needed) {
        budget->verdict = FD_BUDGET_FITS;
        budget->connections = (left - budget->jobs) / FD_BUDGET_PER_CONNECTION;
    } else if (one_job_left >= 1) {
        unsigned long long all_jobs_left = floor_difference(left, budget->jobs) /
                                           FD_BUDGET_PER_CONNECTION;

        budget->verdict = FD_BUDGET_SHORT;
        budget->connections = one_job_left < FD_BUDGET_MIN_CONNECTIONS ? one_job_left
                                                                       : FD_BUDGET_MIN_CONNECTIONS;
        if (all_jobs_left > budget->connections)
            budget->connections = all_jobs_left;
        budget->jobs_at_once = (unsigned)((left - budget->connections * FD_BUDGET_PER_CONNECTION) /
                                          job_descriptors);
    } else {
        budget->verdict = FD_BUDGET_IMPOSSIBLE;
        budget->connections = 1;
        budget->jobs_at_once = 1;   /* it may fail to start; there is no better */
    }
    if (budget->jobs_at_once > max_jobs)
        budget->jobs_at_once = max_jobs;
    if (budget->jobs_at_once < 1)
        budget->jobs_at_once = 1;
}

void dt_fd_budget_describe(const struct fd_budget *budget, char *buffer, size_t size)
{
    snprintf(buffer, size, "limit=%llu needed=%llu own=%llu workers=%llu jobs=%llu "
             "max_connections=%llu jobs_at_once=%u", budget->limit, budget->needed, budget->own,
             budget->workers, budget->jobs, budget->connections, budget->jobs_at_once);
}

unsigned long long dt_fd_budget_open_now(void)
{
    DIR *directory = opendir("/proc/self/fd");
    unsigned long long count = 0;
    struct dirent *entry;

    if (!directory)
        return 0;
    while ((entry = readdir(directory)))
        if (entry->d_name[0] != '.')
            count++;
    closedir(directory);
    return count > 0 ? count - 1 : 0;   /* not the directory's own */
}

/* The public face (detach.h), for a daemon's configuration check: the
 * same computation the library applies at serve time. */
void detach_descriptor_budget_compute(detach_descriptor_budget *budget,
                                      unsigned long long limit, unsigned workers,
                                      unsigned max_jobs, unsigned job_descriptors)
{
    struct fd_budget figures;

    dt_fd_budget_compute(&figures, limit, 0, workers, max_jobs, job_descriptors);
    budget->verdict = figures.verdict == FD_BUDGET_FITS    ? DETACH_BUDGET_FITS
                      : figures.verdict == FD_BUDGET_SHORT ? DETACH_BUDGET_SHORT
                                                           : DETACH_BUDGET_IMPOSSIBLE;
    budget->limit = figures.limit;
    budget->needed = figures.needed;
    budget->jobs_at_once = figures.jobs_at_once;
    dt_fd_budget_describe(&figures, budget->figures, sizeof(budget->figures));
}
