/*
 * fuzz_script_env.c - the environment a script job gets from params the
 * client and web server chose (script_env_build, script_env_allowed).
 *
 * Input: one flags byte (bit 0: a rerun; bits 1-6: the attempt - 1; bit 7:
 * detachd has no PATH), then lines cut at '\n' or NUL: the job id, the
 * route, detachd's PATH, and one "NAME=value" param per line after them.
 *
 * Checked: the result is NULL-terminated with at most params + 5 entries;
 * each is "NAME=value" with a name of [A-Z0-9_] and no name twice; detachd's
 * own (DETACH_JOB_ID, DETACH_ROUTE, DETACH_ATTEMPT, PATH, DETACH_RETRY only
 * on a rerun) say what the run is and come from no param; every other
 * entry is a param, unchanged, in the packed buffer and on the allow-list;
 * no name on a deny-list of environment variables that are code ever
 * passes; and every allowed param's name is present with its first value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/script_env.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const denied[] = {
    "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV", "IFS", "HTTP_PROXY",
    "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "NO_PROXY", "SHELLOPTS",
    "PS4", "PERL5OPT", "PYTHONPATH", "NODE_OPTIONS", "GCONV_PATH", "HOME",
};

static size_t name_length(const char *entry)
{
    const char *equals = strchr(entry, '=');

    CHECK(equals);
    return (size_t)(equals - entry);
}

static int has_name(const char *entry, const char *name)
{
    size_t length = strlen(name);

    return strncmp(entry, name, length) == 0 && entry[length] == '=';
}

/* The value of name in the environment, NULL when absent. */
static const char *value_of(char **environment, const char *name, size_t length)
{
    for (char **entry = environment; *entry; entry++)
        if (name_length(*entry) == length && strncmp(*entry, name, length) == 0)
            return *entry + length + 1;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, *lines[3] = { "", "", "" };
    char *packed, *at;
    size_t line_count = 0, param_count = 0, start = 1, count = 0;
    struct script_env_run run;
    char **environment;
    char attempt[16];

    if (size < 1)
        return 0;
    /* The text with every '\n' made a NUL: lines and params alike. */
    text = malloc(size + 1);
    packed = malloc(size + 2);
    CHECK(text && packed);
    memcpy(text, data, size);
    text[size] = '\0';
    at = packed;
    for (size_t i = 1; i <= size; i++) {
        if (i < size && text[i] != '\n' && text[i] != '\0')
            continue;
        text[i] = '\0';
        if (line_count < 3) {
            lines[line_count++] = text + start;
        } else if (i > start) {
            /* A param as the request reader packs it: non-empty. */
            at = stpcpy(at, text + start) + 1;
            param_count++;
        }
        start = i + 1;
    }
    *at = '\0';

    run = (struct script_env_run){
        .job_id = lines[0], .route = lines[1], .attempt = ((data[0] >> 1) & 0x3f) + 1u,
        .retry = data[0] & 1, .path = data[0] & 0x80 ? NULL : lines[2],
    };
    environment = script_env_build(packed, &run, NULL, 0);
    CHECK(environment);

    for (char **entry = environment; *entry; entry++) {
        size_t length = name_length(*entry);
        count++;
        CHECK(length > 0);
        for (size_t i = 0; i < length; i++) {
            char c = (*entry)[i];
            CHECK((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
        }
        for (char **other = entry + 1; *other; other++)
            CHECK(!(name_length(*other) == length && strncmp(*other, *entry, length) == 0));
        for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
            CHECK(!has_name(*entry, denied[i]));
        if (has_name(*entry, "DETACH_JOB_ID") || has_name(*entry, "DETACH_ROUTE") ||
            has_name(*entry, "DETACH_ATTEMPT") || has_name(*entry, "DETACH_RETRY") ||
            has_name(*entry, "PATH")) {
            CHECK(!(*entry >= packed && *entry < at));   /* not from a param */
            continue;
        }
        /* A param, as sent, from the packed buffer, and allowed. */
        CHECK(*entry >= packed && *entry < at);
        CHECK(strncmp(*entry, "DETACH_", 7) != 0);
        CHECK(script_env_allowed(*entry));
    }
    CHECK(count <= param_count + 5);

    CHECK(strcmp(value_of(environment, "DETACH_JOB_ID", 13), run.job_id) == 0);
    CHECK(strcmp(value_of(environment, "DETACH_ROUTE", 12), run.route) == 0);
    snprintf(attempt, sizeof(attempt), "%u", run.attempt);
    CHECK(strcmp(value_of(environment, "DETACH_ATTEMPT", 14), attempt) == 0);
    CHECK(strcmp(value_of(environment, "PATH", 4),
                 run.path && *run.path ? run.path : SCRIPT_ENV_DEFAULT_PATH) == 0);
    if (run.retry)
        CHECK(strcmp(value_of(environment, "DETACH_RETRY", 12), "1") == 0);
    else
        CHECK(!value_of(environment, "DETACH_RETRY", 12));

    /* Nothing allowed is lost, and the first of a repeated name wins. */
    for (const char *param = packed; *param; param += strlen(param) + 1) {
        if (!script_env_allowed(param))
            continue;
        size_t length = strchr(param, '=') - param;
        const char *value = value_of(environment, param, length);
        CHECK(value);
        const char *first = param;
        for (const char *earlier = packed; earlier < param; earlier += strlen(earlier) + 1)
            if (strncmp(earlier, param, length + 1) == 0) {
                first = earlier;
                break;
            }
        CHECK(strcmp(value, first + length + 1) == 0);
    }

    free(environment);
    free(packed);
    free(text);
    return 0;
}
