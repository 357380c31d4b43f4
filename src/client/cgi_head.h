/*
 * cgi_head.h - the text the FastCGI side of the trigger client parses
 * itself: FastCGI addresses ("host:port", "[v6]:port") and the CGI head a
 * FastCGI app writes on stdout.
 *
 * Pure parsing with no I/O, so the parsers can be unit tested and fuzzed
 * on their own.  Every parser takes an explicit length and never reads
 * past it.
 */
#ifndef DETACH_CGI_HEAD_H
#define DETACH_CGI_HEAD_H

#include <stddef.h>

/* A DNS name is at most 253 characters; the rest is room for the NUL. */
#define FCGI_HOST_SIZE 256
/* A response head longer than this is treated as malformed. */
#define CGI_HEAD_MAX 65536
/* Matches detach_trigger_result.job_id. */
#define CGI_JOB_ID_SIZE 64

struct fcgi_address {
    char host[FCGI_HOST_SIZE];   /* a name or an address; IPv6 without brackets */
    unsigned port;               /* 1..65535 */
    int is_ipv6;                 /* was given as [literal] */
};

/* "host:port" or "[v6]:port", as in --fcgi; the port is required.  -1
 * with a message (EINVAL) for anything else. */
int dt_fcgi_address_parse(const char *address, struct fcgi_address *out);

struct cgi_head {
    int status;                       /* 100..599 */
    char job_id[CGI_JOB_ID_SIZE];     /* X-Detach-Job, "" when absent */
};

/*
 * Parses the CGI head at the start of buf: the status comes from a
 * "Status: 503 Reason" line; without one it is 302 when a Location header
 * is present and 200 otherwise, as web servers do.  Returns the length of
 * the head, blank line included, once it is all there; 0 when more bytes
 * are needed; -1 when it is malformed or longer than CGI_HEAD_MAX.  Lines
 * may end in CRLF or, leniently, a bare LF.
 */
int dt_cgi_response_parse(const char *buf, size_t len, struct cgi_head *out);

#endif
