/*
 * test_fd_budget.c - the descriptor budget, table-driven: which
 * configurations fit RLIMIT_NOFILE, which fit only partly (a warning),
 * which cannot work at all (a refusal), and the connection cap each gets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "server/fd_budget.h"

struct budget_case {
    unsigned long long limit, own;
    unsigned workers, max_jobs, job_descriptors;
    enum fd_budget_verdict verdict;
    unsigned long long needed, connections;
    unsigned jobs_at_once;
};

/* own + 8 slack; workers x 1; connections x 1.  When short, jobs get
 * what the connections leave, in whole jobs. */
static const struct budget_case cases[] = {
    /* detachd's defaults on a common soft limit: 64 jobs x 8 = 512 */
    { 1024, 20, 4, 64, 8, FD_BUDGET_FITS, 28 + 4 + 512 + 8, 1024 - 32 - 512, 64 },
    /* the hard limit most systems give */
    { 524288, 20, 4, 64, 8, FD_BUDGET_FITS, 552, 524288 - 32 - 512, 64 },
    /* exactly enough: MIN_CONNECTIONS connections */
    { 552, 20, 4, 64, 8, FD_BUDGET_FITS, 552, 8, 64 },
    /* one short: the minimum still goes to connections, the jobs short */
    { 551, 20, 4, 64, 8, FD_BUDGET_SHORT, 552, 8, (551 - 32 - 8) / 8 },
    /* far short: connections get the minimum */
    { 256, 20, 4, 64, 8, FD_BUDGET_SHORT, 552, 8, (256 - 32 - 8) / 8 },
    /* barely one job and one connection */
    { 32 + 8 + 1, 20, 4, 64, 8, FD_BUDGET_SHORT, 552, 1, 1 },
    /* not even that */
    { 32 + 8, 20, 4, 64, 8, FD_BUDGET_IMPOSSIBLE, 552, 1, 1 },
    { 10, 20, 4, 64, 8, FD_BUDGET_IMPOSSIBLE, 552, 1, 1 },
    /* unknown own count: the estimate */
    { 1024, 0, 1, 1, 4, FD_BUDGET_FITS, 24 + 8 + 1 + 4 + 8, 1024 - 33 - 4, 1 },
    /* no limit at all */
    { ~0ULL, 20, 4, 100000, 8, FD_BUDGET_FITS, 800040, ~0ULL - 32 - 800000, 100000 },
};

static void test_budget_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct budget_case *c = &cases[i];
        struct fd_budget budget;

        dt_fd_budget_compute(&budget, c->limit, c->own, c->workers, c->max_jobs,
                          c->job_descriptors);
        if (budget.verdict != c->verdict || budget.needed != c->needed ||
            budget.connections != c->connections || budget.jobs_at_once != c->jobs_at_once)
            fail_msg("case %zu: verdict %d needed %llu connections %llu jobs %u, "
                     "expected %d %llu %llu %u", i, budget.verdict, budget.needed,
                     budget.connections, budget.jobs_at_once, c->verdict, c->needed,
                     c->connections, c->jobs_at_once);
    }
}

static void test_describe_names_every_figure(void **state)
{
    struct fd_budget budget;
    char text[256];

    dt_fd_budget_compute(&budget, 256, 20, 4, 64, 8);
    dt_fd_budget_describe(&budget, text, sizeof(text));
    assert_string_equal(text, "limit=256 needed=552 own=28 workers=4 jobs=512 max_connections=8 jobs_at_once=27");
}

static void test_open_now_counts_descriptors(void **state)
{
    unsigned long long before = dt_fd_budget_open_now();
    int fds[2];

    assert_true(before >= 3);   /* stdio at least */
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(dt_fd_budget_open_now(), before + 2);
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(dt_fd_budget_open_now(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_table),
        cmocka_unit_test(test_describe_names_every_figure),
        cmocka_unit_test(test_open_now_counts_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
