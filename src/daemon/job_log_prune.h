/*
 * job_log_prune.h - removes old job logs from log_dir (job_log_keep).
 *
 * Every trigger job writes <job id>.log into log_dir and nothing else ever
 * removes them: a busy server filled the directory by the thousand.  A
 * background thread of detachd removes, every little while, the job logs
 * whose last write is older than the retention.
 */
#ifndef DETACH_JOB_LOG_PRUNE_H
#define DETACH_JOB_LOG_PRUNE_H

#include <time.h>

/*
 * Removes from directory every regular file named "*.log" last modified
 * more than keep seconds before now.  Other files are left alone.  Returns
 * how many it removed, or -1 when the directory cannot be read (errno).
 */
int job_logs_prune(const char *directory, time_t now, unsigned keep);

struct job_log_pruner;

/* Starts the thread: a pass at once, then one every keep/4 seconds (at
 * least 1, at most 300).  NULL with errno when it cannot start. */
struct job_log_pruner *job_log_pruner_start(const char *directory, unsigned keep);
/* Stops the thread and frees; NULL is fine. */
void job_log_pruner_stop(struct job_log_pruner *pruner);

#endif
