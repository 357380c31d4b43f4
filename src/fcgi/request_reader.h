/*
 * request_reader.h - reading one FastCGI request off the socket, checked
 * record by record.
 *
 * The watcher reads the whole request itself -- BEGIN_REQUEST, the params,
 * the body up to the empty STDIN record -- and this pure, fuzzed parser
 * checks every record:
 * version 1, one request id, the responder role, no management or abort
 * records, every name-value length inside the params stream, bounded
 * params and body.  Padding is accepted on every record, as the spec
 * allows.  It reads no more than libfcgi reads of the same head:
 * tests/fuzz/fuzz_fcgi_libfcgi.c checks every approved head against it.
 */
#ifndef DETACH_REQUEST_READER_H
#define DETACH_REQUEST_READER_H

#include <stddef.h>
#include <stdint.h>

#define REQUEST_MAX_PARAMS_BYTES (64u * 1024)
#define REQUEST_MAX_PARAMS 1024
/* The head as sent, record headers and padding included: params in tiny
 * padded records would otherwise cost 264 bytes for each byte of params. */
#define REQUEST_MAX_HEAD_BYTES (256u * 1024)

enum request_verdict {
    REQUEST_NEED_MORE,   /* sound so far; read more */
    REQUEST_COMPLETE,    /* the whole request, through the empty STDIN */
    REQUEST_TOO_LARGE,   /* the head is complete and sound, the body too big */
    REQUEST_INVALID      /* drop the connection; why says why */
};

struct request_reader {
    /*
     * The bytes read and not yet dropped; the caller appends to it
     * (dt_request_reader_room).  The head stays at the front;
     * body records are dropped once parsed (their content is in body), so
     * a body in tiny padded records cannot make us hold more than one
     * record beyond max_body.
     */
    uint8_t *data;
    size_t length, capacity;
    size_t dropped;           /* bytes read and dropped from data */
    size_t max_body;

    /* Parsing state: everything below is the parser's.  Positions count
     * bytes since the request began, dropped ones included. */
    size_t position;          /* start of the first record not yet parsed */
    int state;
    uint16_t request_id;
    uint8_t *params;          /* the params stream, gathered to check pairs */
    size_t params_length;
    size_t params_text_bytes; /* their "NAME=value\0" strings, once the params ended */

    /* Results. */
    int keep_connection;      /* BEGIN_REQUEST's FCGI_KEEP_CONN flag */
    size_t head_length;       /* BEGIN_REQUEST through the empty PARAMS, as held at
                               * the front of data: BEGIN's padding cut out */
    size_t request_length;    /* through the empty STDIN, as sent */
    size_t trailing_length;   /* read past the request, at the end of data: the
                               * client did not wait (pipelining, or an abort) */
    char *body;               /* the STDIN content, NUL-terminated */
    size_t body_length;
    const char *why;          /* for REQUEST_INVALID */
};

/* A read buffer up to this size is kept from one request to the next. */
#define REQUEST_READER_KEPT_BUFFER (16u * 1024)

void dt_request_reader_init(struct request_reader *reader, size_t max_body);
void dt_request_reader_free(struct request_reader *reader);
/*
 * Ready for the connection's next request; keeps a small read buffer, and
 * the bytes read past a complete request (trailing_length of them), which
 * begin the next one: they are parsed at the next dt_request_reader_parse().
 */
void dt_request_reader_reset(struct request_reader *reader);
/*
 * 1 when the bytes read past a complete request begin another request --
 * as far as they go, a version-1 BEGIN_REQUEST header: a pipelining client
 * -- rather than anything else (ABORT_REQUEST for this one, garbage).
 */
int dt_request_reader_next_is_request(const struct request_reader *reader);
/* Makes room to read at least `at_least` more bytes; -1 when out of memory. */
int dt_request_reader_room(struct request_reader *reader, size_t at_least);
/* Parses what arrived since the last call. */
enum request_verdict dt_request_reader_parse(struct request_reader *reader);
/*
 * The params of a head that parsed whole, packed: "NAME=value\0" after
 * "NAME=value\0", then an empty string (the reader lets no pair have an
 * empty name, nor a NUL inside).  One block the caller frees with free();
 * no pointer per pair, as a long queue holds every queued job's params.
 * HTTP_PROXY is left out (httpoxy).  NULL when out of memory.
 */
char *dt_request_reader_params(const struct request_reader *reader);
/* The value of name in packed params, or NULL.  Walking them:
 *     for (const char *entry = params; *entry; entry += strlen(entry) + 1) */
const char *dt_request_param(const char *params, const char *name);
/* Bytes in packed params, the empty string after the last included. */
size_t dt_request_params_size(const char *params);

/* The body, now the caller's (freed by it); the reader forgets it. */
char *dt_request_reader_take_body(struct request_reader *reader, size_t *length);

#endif
