/*
 * registry.h - what runs, what waits, what ended: the status page's source.
 *
 * Live jobs (queued and running) are listed by pointer; ended ones leave a
 * snapshot in a ring of the most recent.  Counters and a histogram of job
 * durations are kept here too.  One mutex, held only to copy: rendering a
 * page never blocks a job.
 */
#ifndef DETACH_REGISTRY_H
#define DETACH_REGISTRY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "detach.h"

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_ENDED };

struct dt_job_snapshot {
    char id[64];
    char route[256];
    detach_mode mode;
    enum job_state state;
    int connection_status;
    int exit_code, exit_signal;      /* -1: none (C job, or not ended) */
    int progress;                    /* -1: none reported */
    char message[160];
    uint64_t accepted_unix_ms, started_unix_ms, ended_unix_ms;   /* 0: not yet */
    int retry;
    char error[160];                 /* why the run failed (a start that
                                        failed...); "" when none */
};

#define REGISTRY_RECENT 64
#define REGISTRY_BUCKETS 12

struct registry_counters {
    uint64_t accepted, rejected, completed, failed, aborted, timed_out;
    uint64_t queued, running;
    uint64_t duration_buckets[REGISTRY_BUCKETS];   /* cumulative counts per bound */
    double duration_sum_seconds;
    uint64_t uptime_seconds;
};

/* Upper bounds of the histogram buckets, in seconds; the last is +Inf. */
extern const double dt_registry_bucket_bounds[REGISTRY_BUCKETS];

/*
 * A live job's place in the registry, embedded in the job (no allocation
 * on admission).  The registry knows no job: it reads one through id and
 * snapshot(), which the owner sets at dt_registry_add() and which must stay
 * valid until the entry leaves the list (dt_registry_remove/ended/
 * interrupted).  snapshot() runs under the registry lock, from any
 * thread: it may take a lock of the job's own that is never held while
 * calling into the registry, nothing else.
 */
struct registry_entry {
    const char *id;                  /* NULL: not listed */
    void (*snapshot)(const struct registry_entry *entry, struct dt_job_snapshot *out);
    struct registry_entry *next, *previous;
};

struct registry {
    pthread_mutex_t lock;
    struct registry_entry *live;
    struct dt_job_snapshot recent[REGISTRY_RECENT];
    size_t recent_next, recent_count;
    struct registry_counters counters;
    uint64_t started_ms;
};

void dt_registry_init(struct registry *registry);
void dt_registry_destroy(struct registry *registry);

/* A job was admitted (queued); entry lives in the job, id and snapshot as
 * struct registry_entry says. */
void dt_registry_add(struct registry *registry, struct registry_entry *entry, const char *id,
                  void (*snapshot)(const struct registry_entry *, struct dt_job_snapshot *));
/* rejected: never admitted after all (503).  Otherwise: a queued job that
 * will not run here (stopping; kept in the spool or dropped). */
void dt_registry_remove(struct registry *registry, struct registry_entry *entry, int rejected);
void dt_registry_rejected(struct registry *registry);
void dt_registry_started(struct registry *registry);
/* The job ended: snapshot taken, counters and histogram updated. */
void dt_registry_ended(struct registry *registry, struct registry_entry *entry,
                    const struct dt_job_snapshot *final, double seconds, int failed);

/* A running job the drain cut short, kept in the spool for the next start:
 * it leaves the live list, counted neither completed nor failed. */
void dt_registry_interrupted(struct registry *registry, struct registry_entry *entry);

/*
 * Copies the state out: counters, and up to *count snapshots (live jobs
 * first, then recent ones, newest first).  Returns the number copied.
 */
size_t dt_registry_copy(struct registry *registry, struct registry_counters *counters,
                     struct dt_job_snapshot *snapshots, size_t capacity);
/* One job by id, live or recent: 0 when found. */
int dt_registry_find(struct registry *registry, const char *id, struct dt_job_snapshot *snapshot);

#endif
