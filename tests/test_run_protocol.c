/*
 * test_run_protocol.c - detach-run's command line, built by detachd and
 * read back by detach-run, and the environment of the on_shutdown it runs
 * for a run cut short by detachd's death.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/run_protocol.h"

static int count(char **words)
{
    int n = 0;

    while (words[n])
        n++;
    return n;
}

static void round_trip_with_a_hook(void **state)
{
    char *hook[] = { "/bin/notify", "--", "x y", NULL };
    char *command[] = { "/bin/job", "3", "--", NULL };
    char **argv = run_argv_build("/usr/libexec/detach/detach-run", 7, 1, hook, command);
    struct run_plan plan;

    assert_non_null(argv);
    assert_int_equal(run_argv_parse(count(argv), argv, &plan), 0);
    assert_int_equal(plan.kill_grace, 7);
    assert_int_equal(plan.will_retry, 1);
    assert_non_null(plan.on_shutdown);
    assert_int_equal(count(plan.on_shutdown), 3);
    assert_string_equal(plan.on_shutdown[1], "--");   /* counted, not searched for */
    assert_string_equal(plan.on_shutdown[2], "x y");
    assert_int_equal(count(plan.command), 3);
    assert_string_equal(plan.command[0], "/bin/job");
    assert_string_equal(plan.command[2], "--");
    free(argv);
}

static void round_trip_without_a_hook(void **state)
{
    char *command[] = { "/bin/true", NULL };
    char **argv = run_argv_build("detach-run", 0, 0, NULL, command);
    struct run_plan plan;

    assert_non_null(argv);
    assert_int_equal(count(argv), 6);
    assert_int_equal(run_argv_parse(count(argv), argv, &plan), 0);
    assert_int_equal(plan.kill_grace, 0);
    assert_int_equal(plan.will_retry, 0);
    assert_null(plan.on_shutdown);
    assert_int_equal(count(plan.command), 1);
    assert_string_equal(plan.command[0], "/bin/true");
    free(argv);
}

static int parses(char **argv)
{
    struct run_plan plan;

    return run_argv_parse(count(argv), argv, &plan);
}

static void malformed_lines_are_refused(void **state)
{
    char *no_command[] = { "r", "5", "-", "0", "--", NULL };
    char *bad_grace[] = { "r", "-5", "-", "0", "--", "/bin/true", NULL };
    char *grace_with_junk[] = { "r", "5s", "-", "0", "--", "/bin/true", NULL };
    char *bad_flags[] = { "r", "5", "x", "0", "--", "/bin/true", NULL };
    char *hook_overruns[] = { "r", "5", "-", "9", "--", "/bin/true", NULL };
    char *slot_missing[] = { "r", "5", "-", "1", "/bin/hook", "/bin/true", "x", NULL };
    char *count_not_number[] = { "r", "5", "-", "one", "--", "/bin/true", NULL };
    char *too_few[] = { "r", NULL };
    char *fine[] = { "r", "5", "-", "1", "/bin/hook", "--", "/bin/true", NULL };

    assert_int_equal(parses(no_command), -1);
    assert_int_equal(parses(bad_grace), -1);
    assert_int_equal(parses(grace_with_junk), -1);
    assert_int_equal(parses(bad_flags), -1);
    assert_int_equal(parses(hook_overruns), -1);
    assert_int_equal(parses(slot_missing), -1);
    assert_int_equal(parses(count_not_number), -1);
    assert_int_equal(parses(too_few), -1);
    assert_int_equal(parses(fine), 0);
}

static const char *find(char **environment, const char *name)
{
    size_t length = strlen(name);

    for (int i = 0; environment[i]; i++)
        if (strncmp(environment[i], name, length) == 0 && environment[i][length] == '=')
            return environment[i] + length + 1;
    return NULL;
}

static void hook_environment_says_the_run_was_cut_short(void **state)
{
    char *job[] = { "DETACH_JOB_ID=abc", "DETACH_RESULT=ok", "PATH=/bin",
                    "DETACH_EXIT_CODE=0", "DETACH_RETRY=1", NULL };
    struct run_outcome killed = { .exit_code = -1, .exit_signal = 9, .elapsed_ms = 1234,
                                  .will_retry = 1 };
    struct run_outcome exited = { .exit_code = 3, .exit_signal = -1, .elapsed_ms = 5,
                                  .will_retry = 0 };
    char **environment = run_shutdown_environment(job, &killed);
    int results = 0;

    assert_non_null(environment);
    assert_string_equal(find(environment, "DETACH_JOB_ID"), "abc");
    assert_string_equal(find(environment, "DETACH_RETRY"), "1");
    assert_string_equal(find(environment, "PATH"), "/bin");
    /* The job's own DETACH_RESULT is dropped. */
    assert_string_equal(find(environment, "DETACH_RESULT"), "failed");
    for (int i = 0; environment[i]; i++)
        results += strncmp(environment[i], "DETACH_RESULT=", 14) == 0;
    assert_int_equal(results, 1);
    assert_null(find(environment, "DETACH_EXIT_CODE"));
    assert_string_equal(find(environment, "DETACH_EXIT_SIGNAL"), "9");
    assert_string_equal(find(environment, "DETACH_CONNECTION_STATUS"), "0");
    assert_string_equal(find(environment, "DETACH_ELAPSED_MS"), "1234");
    assert_string_equal(find(environment, "DETACH_WILL_RETRY"), "1");
    free(environment);

    environment = run_shutdown_environment(job, &exited);
    assert_non_null(environment);
    assert_string_equal(find(environment, "DETACH_EXIT_CODE"), "3");
    assert_null(find(environment, "DETACH_EXIT_SIGNAL"));
    assert_string_equal(find(environment, "DETACH_WILL_RETRY"), "0");
    free(environment);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_with_a_hook),
        cmocka_unit_test(round_trip_without_a_hook),
        cmocka_unit_test(malformed_lines_are_refused),
        cmocka_unit_test(hook_environment_says_the_run_was_cut_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
