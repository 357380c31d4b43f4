/*
 * script_env.h - the environment a script job (and its on_shutdown) gets.
 *
 * Built from an allow-list, never from whatever params arrive: FastCGI
 * params are chosen by the web server and, through HTTP_* headers, by the
 * client, and an environment is code for the programs that read it
 * (LD_PRELOAD, BASH_ENV, IFS, http_proxy...).  What passes: the CGI/1.1
 * meta-variables of RFC 3875 4.1, the usual web-server extras (nginx's
 * fastcgi_params, Apache's mod_proxy_fcgi), and every HTTP_* header with a
 * well-formed name except HTTP_PROXY.  Then detachd's own: DETACH_JOB_ID,
 * DETACH_ROUTE, DETACH_ATTEMPT, DETACH_RETRY=1 on a rerun, and PATH, which
 * is detachd's.
 *
 * Pure: no job, no globals, so it is unit-tested and fuzzed directly.
 */
#ifndef DETACH_SCRIPT_ENV_H
#define DETACH_SCRIPT_ENV_H

#include <stddef.h>

#define SCRIPT_ENV_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* What detachd adds about the run. */
struct script_env_run {
    const char *job_id;
    const char *route;
    unsigned attempt;        /* 1 for a first run, 2, ... */
    int retry;               /* 1: this run repeats an earlier one */
    const char *path;        /* detachd's PATH; NULL or "": the default above */
};

/*
 * 1 when a param, "NAME=value", may reach a job; 0 otherwise (a name not
 * on the list, HTTP_PROXY, a malformed name, no '=').
 */
int script_env_allowed(const char *entry);

/*
 * params: packed "NAME=value" strings ending in an empty one (request
 * reader's format).  extra: more "NAME=value" entries added last, as given
 * (on_shutdown's).  Returns a NULL-terminated array for execve(), one
 * malloc'ed block the caller free()s; its entries point into params and
 * extra, which must outlive it.  A name sent twice passes once (the
 * first, as detach_param() reads it).  NULL when out of memory.
 */
char **script_env_build(const char *params, const struct script_env_run *run,
                        char *const *extra, size_t extra_count);

#endif
