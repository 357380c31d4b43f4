/*
 * url.h - the text side of the trigger client: URLs and addresses, form
 * bodies, the heads of HTTP and CGI responses, chunked bodies, and the
 * status page's job JSON (for detach-trigger --wait-done).
 *
 * Pure parsing with no I/O, so the parsers can be unit tested and fuzzed
 * on their own.  Every parser takes an explicit length and never reads
 * past it.  The one exception, trigger_fetch(), is declared at the end and
 * lives in trigger.c beside the rest of the client's I/O.
 */
#ifndef DETACH_URL_H
#define DETACH_URL_H

#include <stddef.h>
#include <stdint.h>

/* A DNS name is at most 253 characters; the rest is room for the NUL. */
#define URL_HOST_SIZE 256
/* A response head longer than this is treated as malformed. */
#define HTTP_HEAD_MAX 65536
/* Matches detach_trigger_result.job_id. */
#define HTTP_JOB_ID_SIZE 64

struct url {
    char host[URL_HOST_SIZE];  /* name or address; an IPv6 literal without its brackets */
    uint16_t port;
    int host_is_ipv6;          /* given as [literal]: a Host header needs the brackets back */
    const char *target;        /* "/path?query" inside the parsed string, or a static "/" */
    size_t target_length;      /* ends before any "#fragment" */
    size_t path_length;        /* the bytes of target before '?' */
};

/*
 * "http://host[:port][/path][?query][#fragment]", host a name, an IPv4
 * address or an [IPv6] literal; port 80 and path "/" when absent.  The
 * target points into url, which must outlive out.  -1 with a message for
 * another scheme, userinfo, a bad port, or spaces and control characters.
 */
int url_parse(const char *url, struct url *out);

/* Only a "/path?query" target, as the FastCGI mode takes it; host "", port 0. */
int url_parse_target(const char *target, struct url *out);

/* "host:port" or "[v6]:port", as in --fcgi; the port is required. */
int url_parse_address(const char *address, struct url *out);

/*
 * application/x-www-form-urlencoded body of "name=value" fields (a field
 * with no '=' is a name with an empty value), joined with '&'.  Returns a
 * malloc'd string ("" for no fields), or NULL with a message.
 */
char *url_form_encode(const char *const *fields, size_t count);

struct http_response {
    int status;                       /* 100..599 */
    char job_id[HTTP_JOB_ID_SIZE];    /* X-Detach-Job, "" when absent */
    long long content_length;         /* Content-Length; -1 when absent */
    int chunked;                      /* Transfer-Encoding: chunked */
};

/*
 * Parses an HTTP/1.x response head at the start of buf.  Returns the
 * length of the head, blank line included, once it is all there; 0 when
 * more bytes are needed; -1 when it is malformed or longer than
 * HTTP_HEAD_MAX.  Interim 1xx heads are skipped (and counted in the
 * length).  Lines may end in CRLF or, leniently, a bare LF.
 */
int http_response_parse(const char *buf, size_t len, struct http_response *out);

/*
 * The same for the CGI head a FastCGI app writes on stdout: the status
 * comes from a "Status: 503 Reason" line; without one it is 302 when a
 * Location header is present and 200 otherwise, as web servers do.
 */
int cgi_response_parse(const char *buf, size_t len, struct http_response *out);

/*
 * Decodes a chunked HTTP body (RFC 9112 7.1) from buf into out, which has
 * room for len bytes (decoding never grows).  Returns 1 once the last
 * chunk is in (trailers are not needed and not read), with *out_len the
 * body's length; 0 when more bytes are needed; -1 when it is malformed.
 */
int http_chunked_decode(const char *buf, size_t len, char *out, size_t *out_len);

/* What detach-trigger --wait-done needs of GET <status_path>/jobs/<id>. */
#define JOB_STATUS_MESSAGE_SIZE 160

struct job_status {
    char state[16];                   /* "queued", "running", "ended" */
    int connection_status;            /* 0..3; -1 when absent */
    int progress;                     /* 0..100; -1 when none reported */
    char message[JOB_STATUS_MESSAGE_SIZE];   /* progress message, UTF-8 */
    int exit_code, exit_signal;       /* -1: none (a C job, or not ended) */
};

/*
 * A tiny purpose-built JSON reader for the status page's job object: it
 * checks the whole text is one well-formed JSON object (nesting at most 16
 * deep) and picks out state, connection_status, progress.percent,
 * progress.message and exit.code / exit.signal; other keys are skipped.
 * Strings are unescaped (a \\u escape becomes UTF-8) and cut to fit.  0 on success;
 * -1 when the text is not such an object or has no "state".
 */
int job_status_parse(const char *json, size_t length, struct job_status *out);

/*
 * GETs url and reads the whole answer: an "http://..." URL over HTTP/1.1,
 * or with fcgi (unix:/path or host:port) a "/path?query" over FastCGI.
 * At most timeout_ms in all (0: 10 s) and max_body bytes of body.  0 with
 * *status and *body (malloc'd, NUL-terminated, *body_length bytes before
 * the NUL); -1 with errno and a message in detach_last_error().
 */
int trigger_fetch(const char *url, const char *fcgi, unsigned timeout_ms, size_t max_body,
                  int *status, char **body, size_t *body_length);

#endif
