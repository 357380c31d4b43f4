/*
 * test_registry.c - the jobs' ledger on one thread, with fake entries in
 * place of jobs: counters follow a job's life (accepted, queued, running,
 * ended, failed, rejected, withdrawn, interrupted), copies list live jobs
 * before ended ones (newest first), the ended ring keeps only the last
 * REGISTRY_RECENT, and a job is found by id while live and after it ended.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "detach.h"
#include "sched/registry.h"

#define container_of(pointer, type, member) \
    ((type *)(void *)((char *)(pointer) - offsetof(type, member)))

struct fake_job {
    struct registry_entry entry;
    char id[64];
    enum job_state state;
    int snapshots;                /* how often the registry read it */
};

static void fake_snapshot(const struct registry_entry *entry, struct dt_job_snapshot *out)
{
    struct fake_job *job = container_of(entry, struct fake_job, entry);

    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", job->id);
    out->state = job->state;
    out->exit_code = out->exit_signal = out->progress = -1;
    job->snapshots++;
}

static void add(struct registry *registry, struct fake_job *job, const char *id)
{
    memset(job, 0, sizeof *job);
    snprintf(job->id, sizeof job->id, "%s", id);
    job->state = JOB_QUEUED;
    dt_registry_add(registry, &job->entry, job->id, fake_snapshot);
}

static void end(struct registry *registry, struct fake_job *job, double seconds, int failed,
                int connection_status)
{
    struct dt_job_snapshot final;

    fake_snapshot(&job->entry, &final);
    final.state = JOB_ENDED;
    final.connection_status = connection_status;
    dt_registry_ended(registry, &job->entry, &final, seconds, failed);
}

static struct registry_counters counters_of(struct registry *registry)
{
    struct registry_counters counters;
    struct dt_job_snapshot none[1];

    dt_registry_copy(registry, &counters, none, 0);
    return counters;
}

static void counters_follow_each_life(void **state)
{
    (void)state;
    struct registry registry;
    struct fake_job done, failed, withdrawn, refused, cut;
    struct registry_counters counters;

    dt_registry_init(&registry);
    add(&registry, &done, "done");
    add(&registry, &failed, "failed");
    add(&registry, &withdrawn, "withdrawn");
    add(&registry, &refused, "refused");
    add(&registry, &cut, "cut");
    counters = counters_of(&registry);
    assert_int_equal(counters.accepted, 5);
    assert_int_equal(counters.queued, 5);
    assert_int_equal(counters.running, 0);

    dt_registry_remove(&registry, &refused.entry, 1);   /* a 503 after all */
    dt_registry_remove(&registry, &withdrawn.entry, 0); /* queued, stopping */
    dt_registry_rejected(&registry);                     /* never admitted */
    counters = counters_of(&registry);
    assert_int_equal(counters.accepted, 4);
    assert_int_equal(counters.rejected, 2);
    assert_int_equal(counters.queued, 3);

    dt_registry_started(&registry);
    dt_registry_started(&registry);
    dt_registry_started(&registry);
    counters = counters_of(&registry);
    assert_int_equal(counters.queued, 0);
    assert_int_equal(counters.running, 3);

    end(&registry, &done, 0.03, 0, DETACH_ABORTED);
    end(&registry, &failed, 2.0, 1, DETACH_TIMEOUT);
    dt_registry_interrupted(&registry, &cut.entry);
    counters = counters_of(&registry);
    assert_int_equal(counters.running, 0);
    assert_int_equal(counters.completed, 1);
    assert_int_equal(counters.failed, 1);
    assert_int_equal(counters.aborted, 1);
    assert_int_equal(counters.timed_out, 1);
    /* Cumulative buckets: 0.03 s is under 0.05 and above; 2 s under 2. */
    assert_int_equal(counters.duration_buckets[0], 0);     /* <= 0.01 */
    assert_int_equal(counters.duration_buckets[1], 1);     /* <= 0.05 */
    assert_int_equal(counters.duration_buckets[4], 1);     /* <= 1 */
    assert_int_equal(counters.duration_buckets[5], 2);     /* <= 2 */
    assert_int_equal(counters.duration_buckets[REGISTRY_BUCKETS - 1], 2);
    assert_true(counters.duration_sum_seconds > 2.02 && counters.duration_sum_seconds < 2.04);

    /* Interrupted is neither completed nor failed and leaves no trace. */
    struct dt_job_snapshot found;
    assert_int_equal(dt_registry_find(&registry, "cut", &found), -1);
    assert_int_equal(dt_registry_find(&registry, "withdrawn", &found), -1);
    /* A second remove/interrupt of an unlisted entry changes nothing. */
    dt_registry_interrupted(&registry, &cut.entry);
    dt_registry_remove(&registry, &withdrawn.entry, 0);
    counters = counters_of(&registry);
    assert_int_equal(counters.running, 0);
    assert_int_equal(counters.queued, 0);
    dt_registry_destroy(&registry);
}

static void copies_list_live_jobs_then_ended_newest_first(void **state)
{
    (void)state;
    struct registry registry;
    struct fake_job first, second, live_a, live_b;
    struct registry_counters counters;
    struct dt_job_snapshot snapshots[8];

    dt_registry_init(&registry);
    add(&registry, &first, "first");
    add(&registry, &second, "second");
    add(&registry, &live_a, "live-a");
    dt_registry_started(&registry);
    dt_registry_started(&registry);
    end(&registry, &first, 0.1, 0, 0);
    end(&registry, &second, 0.1, 0, 0);
    add(&registry, &live_b, "live-b");
    live_a.state = JOB_RUNNING;

    size_t copied = dt_registry_copy(&registry, &counters, snapshots, 8);
    assert_int_equal(copied, 4);
    /* Live ones first (read through their callback), then ended ones. */
    assert_true(snapshots[0].state != JOB_ENDED && snapshots[1].state != JOB_ENDED);
    assert_true((strcmp(snapshots[0].id, "live-a") == 0 && strcmp(snapshots[1].id, "live-b") == 0) ||
                (strcmp(snapshots[0].id, "live-b") == 0 && strcmp(snapshots[1].id, "live-a") == 0));
    assert_string_equal(snapshots[2].id, "second");
    assert_string_equal(snapshots[3].id, "first");
    assert_int_equal(snapshots[2].state, JOB_ENDED);

    /* The capacity bounds the copy; live jobs come first still. */
    copied = dt_registry_copy(&registry, &counters, snapshots, 3);
    assert_int_equal(copied, 3);
    assert_string_equal(snapshots[2].id, "second");

    /* Found by id while live (a fresh snapshot) and once ended. */
    struct dt_job_snapshot found;
    int before = live_a.snapshots;
    assert_int_equal(dt_registry_find(&registry, "live-a", &found), 0);
    assert_int_equal(found.state, JOB_RUNNING);
    assert_int_equal(live_a.snapshots, before + 1);
    assert_int_equal(dt_registry_find(&registry, "first", &found), 0);
    assert_int_equal(found.state, JOB_ENDED);
    assert_int_equal(dt_registry_find(&registry, "nobody", &found), -1);

    dt_registry_started(&registry);
    end(&registry, &live_a, 0.1, 0, 0);
    dt_registry_remove(&registry, &live_b.entry, 0);
    dt_registry_destroy(&registry);
}

static void the_ended_list_keeps_the_most_recent(void **state)
{
    (void)state;
    struct registry registry;
    static struct fake_job jobs[REGISTRY_RECENT + 10];
    static struct dt_job_snapshot snapshots[REGISTRY_RECENT + 10];
    struct registry_counters counters;
    char id[64];

    dt_registry_init(&registry);
    for (int i = 0; i < REGISTRY_RECENT + 10; i++) {
        snprintf(id, sizeof id, "job-%d", i);
        add(&registry, &jobs[i], id);
        dt_registry_started(&registry);
        end(&registry, &jobs[i], 0.001, 0, 0);
    }
    size_t copied = dt_registry_copy(&registry, &counters, snapshots, REGISTRY_RECENT + 10);
    assert_int_equal(copied, REGISTRY_RECENT);
    assert_int_equal(counters.completed, REGISTRY_RECENT + 10);
    snprintf(id, sizeof id, "job-%d", REGISTRY_RECENT + 9);
    assert_string_equal(snapshots[0].id, id);
    assert_string_equal(snapshots[REGISTRY_RECENT - 1].id, "job-10");

    struct dt_job_snapshot found;
    assert_int_equal(dt_registry_find(&registry, "job-9", &found), -1);     /* pushed out */
    assert_int_equal(dt_registry_find(&registry, "job-10", &found), 0);
    dt_registry_destroy(&registry);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_follow_each_life),
        cmocka_unit_test(copies_list_live_jobs_then_ended_newest_first),
        cmocka_unit_test(the_ended_list_keeps_the_most_recent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
