/*
 * run_protocol.c - detach-run's command line and its hook's environment:
 * the pure part of the supervisor, shared by detachd (which builds the
 * line) and detach-run (which reads it), and tested directly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_protocol.h"

#define NUMBER_SIZE 24
#define RUN_MAX_GRACE 86400u * 365

static size_t count_words(char *const *words)
{
    size_t count = 0;

    while (words && words[count])
        count++;
    return count;
}

char **run_argv_build(const char *program, unsigned kill_grace, int will_retry,
                      char *const *on_shutdown, char *const *command)
{
    size_t hook_count = count_words(on_shutdown), command_count = count_words(command);
    size_t slots = 4 + hook_count + 1 + command_count + 1, used = 0;
    char **argv = malloc(slots * sizeof(char *) + 2 * NUMBER_SIZE);
    char *grace, *count;

    if (!argv)
        return NULL;
    grace = (char *)(argv + slots);
    count = grace + NUMBER_SIZE;
    snprintf(grace, NUMBER_SIZE, "%u", kill_grace);
    snprintf(count, NUMBER_SIZE, "%zu", hook_count);
    /* execve()'s type: the strings are never written. */
    argv[used++] = (char *)program;
    argv[used++] = grace;
    argv[used++] = (char *)(will_retry ? "r" : "-");
    argv[used++] = count;
    for (size_t i = 0; i < hook_count; i++)
        argv[used++] = on_shutdown[i];
    argv[used++] = (char *)"--";
    for (size_t i = 0; i < command_count; i++)
        argv[used++] = command[i];
    argv[used] = NULL;
    return argv;
}

/* A decimal number up to maximum, digits only: no sign, no space. */
static int parse_number(const char *text, unsigned long maximum, unsigned long *value)
{
    char *end;

    if (!text || *text < '0' || *text > '9')
        return -1;
    errno = 0;
    *value = strtoul(text, &end, 10);
    return errno || *end || *value > maximum ? -1 : 0;
}

int run_argv_parse(int argc, char **argv, struct run_plan *plan)
{
    unsigned long grace, hooks;

    memset(plan, 0, sizeof(*plan));
    if (argc < 6 || parse_number(argv[1], RUN_MAX_GRACE, &grace) < 0 ||
        parse_number(argv[3], (unsigned long)argc, &hooks) < 0)
        return -1;
    if (strcmp(argv[2], "r") != 0 && strcmp(argv[2], "-") != 0)
        return -1;
    /* The slot after the hook, then at least one word of command. */
    if (4 + hooks + 1 >= (unsigned long)argc || strcmp(argv[4 + hooks], "--") != 0)
        return -1;
    plan->kill_grace = (unsigned)grace;
    plan->will_retry = argv[2][0] == 'r';
    argv[4 + hooks] = NULL;
    plan->on_shutdown = hooks ? argv + 4 : NULL;
    plan->command = argv + 4 + hooks + 1;
    return 0;
}

static int is_outcome_variable(const char *entry)
{
    static const char *const names[] = {
        "DETACH_CONNECTION_STATUS=", "DETACH_EXIT_CODE=", "DETACH_EXIT_SIGNAL=",
        "DETACH_ELAPSED_MS=",        "DETACH_RESULT=",    "DETACH_WILL_RETRY=",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(entry, names[i], strlen(names[i])) == 0)
            return 1;
    return 0;
}

char **run_shutdown_environment(char *const *environment, const struct run_outcome *outcome)
{
    enum { ADDED = 5, TEXT = 48 };
    size_t count = count_words(environment), used = 0;
    size_t slots = count + ADDED + 1;
    char **result = malloc(slots * sizeof(char *) + ADDED * TEXT);
    char *text;

    if (!result)
        return NULL;
    text = (char *)(result + slots);
    for (size_t i = 0; i < count; i++)
        if (!is_outcome_variable(environment[i]))
            result[used++] = environment[i];
    /* detachd never saw this run end: nothing of the client is known. */
    result[used++] = strcpy(text, "DETACH_CONNECTION_STATUS=0");
    text += TEXT;
    if (outcome->exit_signal >= 0)
        snprintf(text, TEXT, "DETACH_EXIT_SIGNAL=%d", outcome->exit_signal);
    else
        snprintf(text, TEXT, "DETACH_EXIT_CODE=%d", outcome->exit_code);
    result[used++] = text;
    text += TEXT;
    snprintf(text, TEXT, "DETACH_ELAPSED_MS=%llu", (unsigned long long)outcome->elapsed_ms);
    result[used++] = text;
    text += TEXT;
    /* The run did not end in detachd's books: it is a failed run, and with
     * a spool the next detachd runs the job again. */
    result[used++] = strcpy(text, "DETACH_RESULT=failed");
    text += TEXT;
    result[used++] = strcpy(text, outcome->will_retry ? "DETACH_WILL_RETRY=1"
                                                      : "DETACH_WILL_RETRY=0");
    result[used] = NULL;
    return result;
}
