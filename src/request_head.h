/*
 * request_head.h - the bound we put on a request before libfcgi parses it.
 *
 * libfcgi trusts the lengths in the params stream (CVE-2025-23016 was an
 * overflow there; Debian's fix stops the overflow, not a declared length
 * near 2^31 or a flood of tiny params).  So a worker first peeks at the
 * request's opening records and checks them with this pure function; only
 * a request whose whole params phase is well-formed and within bounds is
 * handed to libfcgi, which then reads exactly the bytes we checked.
 */
#ifndef DETACH_REQUEST_HEAD_H
#define DETACH_REQUEST_HEAD_H

#include <stddef.h>
#include <stdint.h>

#define REQUEST_HEAD_MAX_PARAMS_BYTES (64u * 1024)
#define REQUEST_HEAD_MAX_PARAMS 1024

enum request_head_verdict {
    REQUEST_HEAD_COMPLETE,     /* BEGIN_REQUEST and every PARAMS record, all sound */
    REQUEST_HEAD_INCOMPLETE,   /* sound so far; *needed bytes in all are required */
    REQUEST_HEAD_INVALID       /* drop the connection; *why says why */
};

/*
 * data: the bytes at the start of a request (management records before it
 * are allowed).  max_params_bytes bounds the params stream.
 */
enum request_head_verdict request_head_check(const uint8_t *data, size_t length,
                                             size_t max_params_bytes, size_t *needed,
                                             const char **why);

#endif
