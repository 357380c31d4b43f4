/*
 * registry.c - live jobs, recent jobs, counters.
 *
 * The list of live jobs is intrusive (the entry lives in the job), so
 * admitting a job allocates nothing here.  A job is in the list from
 * admission until dt_registry_ended(), which its job thread calls before it
 * frees the job: while a snapshot is copied under the lock, every listed
 * job is alive.  Jobs are read only through the entry's id and snapshot
 * callback, so this ledger sits below job.c and knows nothing of it.
 */
#include <string.h>

#include "base/timer_heap.h"
#include "sched/registry.h"

const double dt_registry_bucket_bounds[REGISTRY_BUCKETS] = {
    0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1e300,
};

void dt_registry_init(struct registry *registry)
{
    memset(registry, 0, sizeof(*registry));
    pthread_mutex_init(&registry->lock, NULL);
    registry->started_ms = dt_monotonic_ms();
}

void dt_registry_destroy(struct registry *registry)
{
    pthread_mutex_destroy(&registry->lock);
}

void dt_registry_add(struct registry *registry, struct registry_entry *entry, const char *id,
                  void (*snapshot)(const struct registry_entry *, struct dt_job_snapshot *))
{
    pthread_mutex_lock(&registry->lock);
    entry->id = id;
    entry->snapshot = snapshot;
    entry->previous = NULL;
    entry->next = registry->live;
    if (registry->live)
        registry->live->previous = entry;
    registry->live = entry;
    registry->counters.accepted++;
    registry->counters.queued++;
    pthread_mutex_unlock(&registry->lock);
}

static void unlink_locked(struct registry *registry, struct registry_entry *entry)
{
    if (entry->previous)
        entry->previous->next = entry->next;
    else if (registry->live == entry)
        registry->live = entry->next;
    if (entry->next)
        entry->next->previous = entry->previous;
    entry->next = entry->previous = NULL;
    entry->id = NULL;
}

void dt_registry_remove(struct registry *registry, struct registry_entry *entry, int rejected)
{
    pthread_mutex_lock(&registry->lock);
    if (entry->id) {
        unlink_locked(registry, entry);
        registry->counters.queued--;
        if (rejected)
            registry->counters.accepted--;   /* it never was, after all */
    }
    if (rejected)
        registry->counters.rejected++;
    pthread_mutex_unlock(&registry->lock);
}

void dt_registry_rejected(struct registry *registry)
{
    pthread_mutex_lock(&registry->lock);
    registry->counters.rejected++;
    pthread_mutex_unlock(&registry->lock);
}

void dt_registry_started(struct registry *registry)
{
    pthread_mutex_lock(&registry->lock);
    registry->counters.queued--;
    registry->counters.running++;
    pthread_mutex_unlock(&registry->lock);
}

void dt_registry_ended(struct registry *registry, struct registry_entry *entry,
                    const struct dt_job_snapshot *final, double seconds, int failed)
{
    struct registry_counters *counters = &registry->counters;

    pthread_mutex_lock(&registry->lock);
    unlink_locked(registry, entry);
    counters->running--;
    if (failed)
        counters->failed++;
    else
        counters->completed++;
    if (final->connection_status & DETACH_ABORTED)
        counters->aborted++;
    if (final->connection_status & DETACH_TIMEOUT)
        counters->timed_out++;
    for (int i = 0; i < REGISTRY_BUCKETS; i++)
        if (seconds <= dt_registry_bucket_bounds[i])
            counters->duration_buckets[i]++;
    counters->duration_sum_seconds += seconds;
    registry->recent[registry->recent_next] = *final;
    registry->recent_next = (registry->recent_next + 1) % REGISTRY_RECENT;
    if (registry->recent_count < REGISTRY_RECENT)
        registry->recent_count++;
    pthread_mutex_unlock(&registry->lock);
}

void dt_registry_interrupted(struct registry *registry, struct registry_entry *entry)
{
    pthread_mutex_lock(&registry->lock);
    if (entry->id) {
        unlink_locked(registry, entry);
        registry->counters.running--;
    }
    pthread_mutex_unlock(&registry->lock);
}

size_t dt_registry_copy(struct registry *registry, struct registry_counters *counters,
                     struct dt_job_snapshot *snapshots, size_t capacity)
{
    size_t copied = 0;

    pthread_mutex_lock(&registry->lock);
    *counters = registry->counters;
    counters->uptime_seconds = (dt_monotonic_ms() - registry->started_ms) / 1000;
    for (struct registry_entry *entry = registry->live; entry && copied < capacity;
         entry = entry->next)
        entry->snapshot(entry, &snapshots[copied++]);
    for (size_t i = 0; i < registry->recent_count && copied < capacity; i++) {
        size_t slot = (registry->recent_next + REGISTRY_RECENT - 1 - i) % REGISTRY_RECENT;
        snapshots[copied++] = registry->recent[slot];
    }
    pthread_mutex_unlock(&registry->lock);
    return copied;
}

int dt_registry_find(struct registry *registry, const char *id, struct dt_job_snapshot *snapshot)
{
    int found = -1;

    pthread_mutex_lock(&registry->lock);
    for (struct registry_entry *entry = registry->live; entry; entry = entry->next) {
        if (strcmp(entry->id, id) == 0) {
            entry->snapshot(entry, snapshot);
            found = 0;
            goto out;
        }
    }
    for (size_t i = 0; i < registry->recent_count; i++) {
        size_t slot = (registry->recent_next + REGISTRY_RECENT - 1 - i) % REGISTRY_RECENT;
        if (strcmp(registry->recent[slot].id, id) == 0) {
            *snapshot = registry->recent[slot];
            found = 0;
            goto out;
        }
    }
out:
    pthread_mutex_unlock(&registry->lock);
    return found;
}
