/*
 * detach_trigger.h - the trigger client, libdetach-trigger: the C
 * counterpart of PHP's old triggerRequest($url, $post_data, $cookie).
 *
 * Its own library (pkg-config detach-trigger, -ldetach-trigger) because
 * its HTTP side is libcurl's: a FastCGI application linking libdetach
 * does not load libcurl, OpenSSL and the rest for a client it never calls.
 * It does not need libdetach; both may be linked into one program.
 */
#ifndef DETACH_TRIGGER_H
#define DETACH_TRIGGER_H

#include <stddef.h>

#include "detach.h"   /* DETACH_API, detach_last_error() */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Options of one call.  Start from detach_trigger_options_init(), which
 * zeroes them (every default) and sets `size`, then set what you need;
 * NULL means all defaults.
 *
 * The struct can grow: fields are only ever added at its end, and `size`
 * (sizeof(detach_trigger_options) as the caller was compiled) tells the
 * library how many the caller knows; the ones past it take their
 * defaults, so a program built against an older header keeps working.
 * A size of 0 (the struct was not initialised so) is refused with
 * EINVAL.  The strings and arrays are borrowed for the call only: the
 * library keeps no pointer into them once it returns.
 */
typedef struct detach_trigger_options {
    size_t size;                  /* set by detach_trigger_options_init() */
    const char *method;           /* NULL: GET, or POST when fields given */
    const char *const *fields;    /* "name=value" form fields, url-encoded */
    size_t field_count;
    const char *const *cookies;   /* "name=value" */
    size_t cookie_count;
    const char *const *headers;   /* "Name: value" */
    size_t header_count;
    const char *fcgi;             /* NULL: HTTP(S); else "unix:/path" or host:port */
    int no_wait;                  /* return once the request is sent */
    unsigned timeout_ms;          /* connect + answer; 0: 10000 */
    /* HTTP(S) only.  Proxies come from the environment (http_proxy,
     * https_proxy, no_proxy), as for curl; redirects are followed. */
    const char *user;             /* "name:password", HTTP basic auth; NULL: none,
                                   * or the URL's own user:password@ */
    const char *ca_file;          /* PEM certificates to trust; NULL: the system's */
    int insecure;                 /* 1: do not verify the server's certificate */
} detach_trigger_options;

/* Zeroes the first `size` bytes and sets options->size; call it as
 * detach_trigger_options_init(&options), which passes the caller's sizeof. */
DETACH_API void detach_trigger_options_init_sized(detach_trigger_options *options, size_t size);
#define detach_trigger_options_init(options) \
    detach_trigger_options_init_sized((options), sizeof *(options))

/*
 * Ownership: opts and everything it points to are borrowed for the call
 * only; result and job are the caller's, filled before the call returns;
 * detach_trigger_url_with_path() returns a malloc'd string the caller
 * frees; a failure's message is in detach_last_error() (thread-local, see
 * detach.h, "Ownership and lifetimes").
 */
typedef struct detach_trigger_result {
    int status;          /* HTTP status; 0 with no_wait */
    char job_id[64];     /* X-Detach-Job, "" when absent */
} detach_trigger_result;

/*
 * url: "http://host[:port]/path?query" or "https://..." in HTTP mode,
 * "/path?query" with opts->fcgi.  Returns 0 once the answer's status was
 * read (or the request was sent, with no_wait), -1 on a usage or
 * connection error, with errno and a message in detach_last_error().
 */
DETACH_API int detach_trigger(const char *url, const detach_trigger_options *opts,
                              detach_trigger_result *result);

/*
 * A URL on the same server as trigger_url: its scheme, user, host and
 * port, with path (which starts with '/') and no query or fragment.
 * "https://u@h:8443/jobs/x?a=1" and "/detach-status/jobs/ab12" give
 * "https://u@h:8443/detach-status/jobs/ab12".  malloc'd: the caller frees
 * it; NULL with a message in detach_last_error().
 */
DETACH_API char *detach_trigger_url_with_path(const char *trigger_url, const char *path);

#define DETACH_JOB_STATUS_MESSAGE_SIZE 160

/* One job as the status page's JSON (GET <status_path>/jobs/<id>) shows it. */
typedef struct detach_job_status {
    char state[16];                   /* "queued", "running", "ended" */
    int connection_status;            /* 0..3; -1 when absent */
    int progress;                     /* 0..100; -1 when none reported */
    char message[DETACH_JOB_STATUS_MESSAGE_SIZE];   /* progress message, UTF-8, cut to fit */
    int exit_code, exit_signal;       /* -1: none (a C job, or not ended) */
} detach_job_status;

/*
 * GETs a job's status object at url (an http(s):// URL, or with
 * opts->fcgi a "/path" asked over FastCGI; opts as for detach_trigger(),
 * fields and method unused) within timeout_ms (0: 10 s).  0 with the
 * answer's HTTP status in *http_status, and *job filled when it is 200;
 * -1 when nothing usable came back -- errno ETIMEDOUT for a timeout, EPROTO
 * for an answer that is not a job's JSON -- with a message in
 * detach_last_error().
 */
DETACH_API int detach_trigger_job_status(const char *url, const detach_trigger_options *opts,
                                         unsigned timeout_ms, int *http_status,
                                         detach_job_status *job);

#ifdef __cplusplus
}
#endif

#endif /* DETACH_TRIGGER_H */
