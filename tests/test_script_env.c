/*
 * test_script_env.c - the environment a script job gets: which params
 * pass the allow-list, and what detachd adds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/script_env.h"

/* ---- the allow-list, one param at a time ---- */

static const struct {
    const char *entry;
    int allowed;
} cases[] = {
    /* RFC 3875 4.1 */
    { "AUTH_TYPE=Basic", 1 },
    { "CONTENT_LENGTH=12", 1 },
    { "CONTENT_TYPE=application/x-www-form-urlencoded", 1 },
    { "GATEWAY_INTERFACE=CGI/1.1", 1 },
    { "PATH_INFO=/x", 1 },
    { "PATH_TRANSLATED=/srv/x", 1 },
    { "QUERY_STRING=a=1&b=2", 1 },
    { "QUERY_STRING=", 1 },
    { "REMOTE_ADDR=127.0.0.1", 1 },
    { "REMOTE_HOST=localhost", 1 },
    { "REMOTE_IDENT=x", 1 },
    { "REMOTE_USER=alice", 1 },
    { "REQUEST_METHOD=POST", 1 },
    { "SCRIPT_NAME=/jobs/report", 1 },
    { "SERVER_NAME=example.org", 1 },
    { "SERVER_PORT=443", 1 },
    { "SERVER_PROTOCOL=HTTP/1.1", 1 },
    { "SERVER_SOFTWARE=nginx/1.22.1", 1 },
    /* web-server extras */
    { "REQUEST_URI=/jobs/report?a=1", 1 },
    { "DOCUMENT_URI=/jobs/report", 1 },
    { "DOCUMENT_ROOT=/srv/www", 1 },
    { "SCRIPT_FILENAME=/srv/www/report", 1 },
    { "REMOTE_PORT=51234", 1 },
    { "SERVER_ADDR=127.0.0.1", 1 },
    { "HTTPS=on", 1 },
    { "REQUEST_SCHEME=https", 1 },
    { "REDIRECT_STATUS=200", 1 },
    /* headers */
    { "HTTP_HOST=example.org", 1 },
    { "HTTP_X_SOMETHING=yes", 1 },
    { "HTTP_COOKIE=a=b; c=d", 1 },
    { "HTTP_IDEMPOTENCY_KEY=k1", 1 },
    { "HTTP_X_2=two", 1 },
    { "HTTP_PROXY=http://evil.example:8080", 0 },   /* httpoxy */
    { "HTTP_PROXY_AUTHORIZATION=x", 1 },              /* a header, not a proxy */
    { "HTTP_=x", 0 },
    { "HTTP_x_lower=x", 0 },
    { "HTTP_X-DASH=x", 0 },
    { "HTTP_X SPACE=x", 0 },
    { "http_proxy=http://evil.example:8080", 0 },
    /* code for the programs that read the environment */
    { "LD_PRELOAD=/tmp/evil.so", 0 },
    { "LD_LIBRARY_PATH=/tmp", 0 },
    { "PATH=/tmp/evil", 0 },
    { "BASH_ENV=/tmp/evil.sh", 0 },
    { "ENV=/tmp/evil.sh", 0 },
    { "IFS=x", 0 },
    { "HTTPS_PROXY=http://evil.example:8080", 0 },
    { "https_proxy=http://evil.example:8080", 0 },
    { "ALL_PROXY=socks5://evil", 0 },
    { "NO_PROXY=*", 0 },
    { "PERL5OPT=-Mevil", 0 },
    { "PYTHONPATH=/tmp", 0 },
    { "HOME=/tmp", 0 },
    /* detachd's own names cannot be posed */
    { "DETACH_JOB_ID=00000000ffffffff", 0 },
    { "DETACH_RETRY=1", 0 },
    /* near misses of allowed names */
    { "QUERY_STRINGX=1", 0 },
    { "QUERY_STRIN=1", 0 },
    { "query_string=1", 0 },
    { "REQUEST_URI", 0 },          /* no '=' */
    { "=value", 0 },
    { "", 0 },
};

static void allow_list_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (script_env_allowed(cases[i].entry) != cases[i].allowed)
            fail_msg("\"%s\": expected %s", cases[i].entry,
                     cases[i].allowed ? "allowed" : "refused");
    }
}

/* ---- the whole environment ---- */

/* Packs entries as the request reader does: each NUL-terminated, then an
 * empty one. */
static char *pack(const char *const *entries, size_t count)
{
    size_t size = 1;
    char *packed, *at;

    for (size_t i = 0; i < count; i++)
        size += strlen(entries[i]) + 1;
    packed = malloc(size);
    assert_non_null(packed);
    at = packed;
    for (size_t i = 0; i < count; i++)
        at = stpcpy(at, entries[i]) + 1;
    *at = '\0';
    return packed;
}

static size_t env_count(char **environment)
{
    size_t count = 0;

    while (environment[count])
        count++;
    return count;
}

/* The entry for name, NULL when absent; fails when it is there twice. */
static const char *env_get(char **environment, const char *name)
{
    size_t length = strlen(name);
    const char *found = NULL;

    for (char **entry = environment; *entry; entry++) {
        if (strncmp(*entry, name, length) == 0 && (*entry)[length] == '=') {
            if (found)
                fail_msg("%s appears twice", name);
            found = *entry + length + 1;
        }
    }
    return found;
}

static void builds_from_allowed_params_and_ours(void **state)
{
    static const char *const params[] = {
        "QUERY_STRING=a=1", "REQUEST_URI=/job?a=1", "HTTP_X_SOMETHING=yes",
        "LD_PRELOAD=/tmp/evil.so", "PATH=/tmp/evil", "BASH_ENV=/tmp/evil.sh", "IFS=x",
        "HTTPS_PROXY=http://evil", "http_proxy=http://evil", "HTTP_PROXY=http://evil",
        "DETACH_JOB_ID=forged", "DETACH_RETRY=1", "DETACH_ATTEMPT=9",
    };
    const struct script_env_run run = {
        .job_id = "6553f1000000002a", .route = "/job", .attempt = 1, .retry = 0,
        .path = "/opt/detach/bin:/usr/bin",
    };
    char *packed = pack(params, sizeof(params) / sizeof(params[0]));
    char **environment = script_env_build(packed, &run, NULL, 0);

    assert_non_null(environment);
    assert_string_equal(env_get(environment, "QUERY_STRING"), "a=1");
    assert_string_equal(env_get(environment, "REQUEST_URI"), "/job?a=1");
    assert_string_equal(env_get(environment, "HTTP_X_SOMETHING"), "yes");
    assert_string_equal(env_get(environment, "DETACH_JOB_ID"), "6553f1000000002a");
    assert_string_equal(env_get(environment, "DETACH_ROUTE"), "/job");
    assert_string_equal(env_get(environment, "DETACH_ATTEMPT"), "1");
    assert_string_equal(env_get(environment, "PATH"), "/opt/detach/bin:/usr/bin");
    assert_null(env_get(environment, "DETACH_RETRY"));
    assert_null(env_get(environment, "LD_PRELOAD"));
    assert_null(env_get(environment, "BASH_ENV"));
    assert_null(env_get(environment, "IFS"));
    assert_null(env_get(environment, "HTTPS_PROXY"));
    assert_null(env_get(environment, "http_proxy"));
    assert_null(env_get(environment, "HTTP_PROXY"));
    /* 3 params + job id, route, attempt, PATH */
    assert_int_equal(env_count(environment), 7);
    free(environment);
    free(packed);
}

static void a_rerun_says_so(void **state)
{
    char packed[] = "QUERY_STRING=x\0";
    const struct script_env_run run = {
        .job_id = "id", .route = "/r", .attempt = 2, .retry = 1, .path = "/bin",
    };
    char **environment = script_env_build(packed, &run, NULL, 0);

    assert_non_null(environment);
    assert_string_equal(env_get(environment, "DETACH_RETRY"), "1");
    assert_string_equal(env_get(environment, "DETACH_ATTEMPT"), "2");
    free(environment);
}

static void path_defaults_when_detachd_has_none(void **state)
{
    char packed[] = "\0";
    const char *paths[] = { NULL, "" };

    for (size_t i = 0; i < 2; i++) {
        const struct script_env_run run = { .job_id = "id", .route = "/r", .attempt = 1,
                                            .path = paths[i] };
        char **environment = script_env_build(packed, &run, NULL, 0);

        assert_non_null(environment);
        assert_string_equal(env_get(environment, "PATH"), SCRIPT_ENV_DEFAULT_PATH);
        assert_int_equal(env_count(environment), 4);
        free(environment);
    }
}

/* A name sent twice passes once, with the first value (detach_param's). */
static void first_of_a_repeated_name_wins(void **state)
{
    static const char *const params[] = {
        "QUERY_STRING=first", "HTTP_X_A=1", "QUERY_STRING=second", "HTTP_X_A=2", "HTTP_X_AB=3",
    };
    const struct script_env_run run = { .job_id = "id", .route = "/r", .attempt = 1 };
    char *packed = pack(params, sizeof(params) / sizeof(params[0]));
    char **environment = script_env_build(packed, &run, NULL, 0);

    assert_non_null(environment);
    assert_string_equal(env_get(environment, "QUERY_STRING"), "first");
    assert_string_equal(env_get(environment, "HTTP_X_A"), "1");
    assert_string_equal(env_get(environment, "HTTP_X_AB"), "3");
    assert_int_equal(env_count(environment), 4 + 3);
    free(environment);
    free(packed);
}

/* on_shutdown's extra entries come last, as given. */
static void extra_entries_are_appended(void **state)
{
    char packed[] = "REQUEST_METHOD=GET\0";
    char result[] = "DETACH_RESULT=failed", will_retry[] = "DETACH_WILL_RETRY=1";
    char *extra[] = { result, will_retry };
    const struct script_env_run run = { .job_id = "id", .route = "/r", .attempt = 1 };
    char **environment = script_env_build(packed, &run, extra, 2);
    size_t count;

    assert_non_null(environment);
    count = env_count(environment);
    assert_int_equal(count, 4 + 1 + 2);
    assert_ptr_equal(environment[count - 2], result);
    assert_ptr_equal(environment[count - 1], will_retry);
    assert_string_equal(env_get(environment, "REQUEST_METHOD"), "GET");
    free(environment);
}

/* Long job ids, routes and PATHs fit: the text is sized, not guessed. */
static void long_values_fit(void **state)
{
    char route[4096], path[8192];
    char packed[] = "\0";

    memset(route, 'r', sizeof(route) - 1);
    route[0] = '/';
    route[sizeof(route) - 1] = '\0';
    memset(path, 'p', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    const struct script_env_run run = { .job_id = "ffffffffffffffff", .route = route,
                                        .attempt = 4294967295u, .retry = 1, .path = path };
    char **environment = script_env_build(packed, &run, NULL, 0);

    assert_non_null(environment);
    assert_string_equal(env_get(environment, "DETACH_ROUTE"), route);
    assert_string_equal(env_get(environment, "PATH"), path);
    assert_string_equal(env_get(environment, "DETACH_ATTEMPT"), "4294967295");
    free(environment);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allow_list_table),
        cmocka_unit_test(builds_from_allowed_params_and_ours),
        cmocka_unit_test(a_rerun_says_so),
        cmocka_unit_test(path_defaults_when_detachd_has_none),
        cmocka_unit_test(first_of_a_repeated_name_wins),
        cmocka_unit_test(extra_entries_are_appended),
        cmocka_unit_test(long_values_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
