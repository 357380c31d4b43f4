/*
 * trigger.h - the client library's internal calls for detach-trigger:
 * fetching a whole answer (--wait-done) and the status URL beside a
 * trigger URL.
 */
#ifndef DETACH_TRIGGER_INTERNAL_H
#define DETACH_TRIGGER_INTERNAL_H

#include <stddef.h>

#include "detach_trigger.h"

/*
 * GETs url and reads the whole answer: an http(s):// URL with libcurl (with
 * like's user, ca_file and insecure), or, when like->fcgi is set and url is
 * a "/path?query", over FastCGI.  At most timeout_ms in all (0: 10 s) and
 * max_body bytes of body.  0 with *status and *body (malloc'd,
 * NUL-terminated, *body_length bytes before the NUL); -1 with errno
 * (ETIMEDOUT for a timeout) and a message in detach_last_error().
 */
int trigger_fetch(const char *url, const detach_trigger_options *like, unsigned timeout_ms,
                  size_t max_body, int *status, char **body, size_t *body_length);

/* trigger_url with its path replaced by path and no query or fragment
 * (scheme, user, host and port kept): malloc'd, or NULL with a message. */
char *trigger_url_with_path(const char *trigger_url, const char *path);

#endif
