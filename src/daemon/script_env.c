/*
 * script_env.c - the allow-listed environment of a script job
 * (script_env.h says what passes and why).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script_env.h"

/* RFC 3875 4.1, then what nginx's fastcgi_params and Apache's
 * mod_proxy_fcgi send beside it (PHP reads REDIRECT_STATUS). */
static const char *const allowed_names[] = {
    "AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "GATEWAY_INTERFACE", "PATH_INFO",
    "PATH_TRANSLATED", "QUERY_STRING", "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_IDENT",
    "REMOTE_USER", "REQUEST_METHOD", "SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT",
    "SERVER_PROTOCOL", "SERVER_SOFTWARE",
    "REQUEST_URI", "DOCUMENT_URI", "DOCUMENT_ROOT", "SCRIPT_FILENAME", "REMOTE_PORT",
    "SERVER_ADDR", "HTTPS", "REQUEST_SCHEME", "REDIRECT_STATUS", "SERVER_ADMIN",
    "SERVER_SIGNATURE", "CONTEXT_PREFIX", "CONTEXT_DOCUMENT_ROOT",
};

/* A header as a web server names it: HTTP_ and then upper-case letters,
 * digits and underscores.  Anything else did not come from a header. */
static int is_header_name(const char *name, size_t length)
{
    if (length <= 5 || memcmp(name, "HTTP_", 5) != 0)
        return 0;
    for (size_t i = 5; i < length; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    /* httpoxy: a client's "Proxy:" header must not become a proxy. */
    return !(length == 10 && memcmp(name, "HTTP_PROXY", 10) == 0);
}

static int name_allowed(const char *name, size_t length)
{
    for (size_t i = 0; i < sizeof(allowed_names) / sizeof(allowed_names[0]); i++)
        if (strlen(allowed_names[i]) == length && memcmp(allowed_names[i], name, length) == 0)
            return 1;
    return is_header_name(name, length);
}

int script_env_allowed(const char *entry)
{
    const char *equals = strchr(entry, '=');

    return equals && name_allowed(entry, (size_t)(equals - entry));
}

/* Was this entry's name taken by one of the first count entries? */
static int name_taken(char *const *entries, size_t count, const char *entry)
{
    size_t length = (size_t)(strchr(entry, '=') - entry) + 1;   /* with the '=' */

    for (size_t i = 0; i < count; i++)
        if (strncmp(entries[i], entry, length) == 0)
            return 1;
    return 0;
}

char **script_env_build(const char *params, const struct script_env_run *run,
                        char *const *extra, size_t extra_count)
{
    const char *path = run->path && *run->path ? run->path : SCRIPT_ENV_DEFAULT_PATH;
    size_t count = 0, used = 0, ours, slots, text_size;
    char **environment;
    char *text, *end;

    for (const char *entry = params; *entry; entry += strlen(entry) + 1)
        count++;
    /* DETACH_JOB_ID, DETACH_ROUTE, DETACH_ATTEMPT, DETACH_RETRY, PATH, NULL */
    slots = count + extra_count + 6;
    text_size = sizeof("DETACH_JOB_ID=") + strlen(run->job_id) + sizeof("DETACH_ROUTE=") +
                strlen(run->route) + sizeof("DETACH_ATTEMPT=") + 10 + sizeof("PATH=") +
                strlen(path);
    environment = calloc(1, slots * sizeof(char *) + text_size);
    if (!environment)
        return NULL;
    text = (char *)(environment + slots);
    end = text + text_size;
    environment[used++] = text;
    text += snprintf(text, (size_t)(end - text), "DETACH_JOB_ID=%s", run->job_id) + 1;
    environment[used++] = text;
    text += snprintf(text, (size_t)(end - text), "DETACH_ROUTE=%s", run->route) + 1;
    environment[used++] = text;
    text += snprintf(text, (size_t)(end - text), "DETACH_ATTEMPT=%u", run->attempt) + 1;
    environment[used++] = text;
    snprintf(text, (size_t)(end - text), "PATH=%s", path);
    if (run->retry)
        environment[used++] = (char *)"DETACH_RETRY=1";
    ours = used;
    for (const char *entry = params; *entry; entry += strlen(entry) + 1) {
        if (!script_env_allowed(entry) || name_taken(environment + ours, used - ours, entry))
            continue;
        environment[used++] = (char *)entry;   /* execve's type; never written */
    }
    for (size_t i = 0; i < extra_count; i++)
        environment[used++] = extra[i];
    environment[used] = NULL;
    return environment;
}
