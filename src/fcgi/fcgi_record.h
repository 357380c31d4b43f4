/*
 * fcgi_record.h - FastCGI wire format: record headers, name-value pairs,
 * request bodies, built and taken apart without any I/O.
 *
 * Kept pure so the unit tests and fuzzers can drive every byte of it
 * directly.  Only the fcgi_buffer functions allocate.  The names avoid
 * libfcgi's FCGI_BEGIN_REQUEST etc. because some files include both.
 * Decoders never trust a length: each is checked against the bytes at
 * hand before anything is read.
 */
#ifndef DETACH_FCGI_RECORD_H
#define DETACH_FCGI_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define FCGI_RECORD_VERSION 1
#define FCGI_RECORD_HEADER_SIZE 8
#define FCGI_RECORD_MAX_CONTENT 65535
#define FCGI_RECORD_FLAG_KEEP_CONN 1
/* Management records (GET_VALUES...) carry request id 0. */
#define FCGI_RECORD_MANAGEMENT_ID 0
/* The longest name or value a 4-byte length can announce. */
#define FCGI_RECORD_MAX_PARAM_LENGTH 0x7fffffffu
/* BEGIN_REQUEST and END_REQUEST bodies are both 8 bytes. */
#define FCGI_RECORD_BEGIN_BODY_SIZE 8
#define FCGI_RECORD_END_BODY_SIZE 8

enum fcgi_type {
    FCGI_TYPE_BEGIN_REQUEST = 1,
    FCGI_TYPE_ABORT_REQUEST = 2,
    FCGI_TYPE_END_REQUEST = 3,
    FCGI_TYPE_PARAMS = 4,
    FCGI_TYPE_STDIN = 5,
    FCGI_TYPE_STDOUT = 6,
    FCGI_TYPE_STDERR = 7,
    FCGI_TYPE_DATA = 8,
    FCGI_TYPE_GET_VALUES = 9,
    FCGI_TYPE_GET_VALUES_RESULT = 10,
    FCGI_TYPE_UNKNOWN_TYPE = 11
};

enum fcgi_role {
    FCGI_ROLE_RESPONDER = 1,
    FCGI_ROLE_AUTHORIZER = 2,
    FCGI_ROLE_FILTER = 3
};

/* protocolStatus of END_REQUEST. */
enum fcgi_protocol_status {
    FCGI_PROTOCOL_STATUS_REQUEST_COMPLETE = 0,
    FCGI_PROTOCOL_STATUS_CANT_MPX_CONN = 1,
    FCGI_PROTOCOL_STATUS_OVERLOADED = 2,
    FCGI_PROTOCOL_STATUS_UNKNOWN_ROLE = 3
};

struct fcgi_header {
    uint8_t version;
    uint8_t type;
    uint16_t request_id;
    uint16_t content_length;
    uint8_t padding_length;
};

void dt_fcgi_header_encode(uint8_t out[FCGI_RECORD_HEADER_SIZE], uint8_t type, uint16_t request_id,
                        uint16_t content_length, uint8_t padding_length);

/* 0, or -1 when fewer than 8 bytes are given or the version is not 1. */
int dt_fcgi_header_decode(const uint8_t *in, size_t len, struct fcgi_header *out);

/* Padding that rounds content_length up to a multiple of 8. */
uint8_t dt_fcgi_padding_for(size_t content_length);

/*
 * Encodes one name-value pair into out when it fits in capacity, and
 * returns the bytes it needs either way (snprintf-like), so a caller can
 * size a buffer with a NULL, 0 first call.  Returns 0 when a length is
 * beyond FCGI_RECORD_MAX_PARAM_LENGTH and cannot be encoded at all.
 */
size_t dt_fcgi_param_encode(uint8_t *out, size_t capacity, const char *name, size_t name_len,
                         const char *value, size_t value_len);

/*
 * Decodes the pair at the start of in: name and value point into in.
 * 0, or -1 when the lengths or the bytes they announce are truncated.
 */
int dt_fcgi_param_decode(const uint8_t *in, size_t len, size_t *consumed, const uint8_t **name,
                      size_t *name_len, const uint8_t **value, size_t *value_len);

/* A whole BEGIN_REQUEST record: header and body. */
void dt_fcgi_begin_request_encode(uint8_t out[FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_BEGIN_BODY_SIZE],
                               uint16_t request_id, uint16_t role, uint8_t flags);
int dt_fcgi_begin_request_decode(const uint8_t *body, size_t len, uint16_t *role, uint8_t *flags);

/* A whole END_REQUEST record: header and body. */
void dt_fcgi_end_request_encode(uint8_t out[FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_END_BODY_SIZE],
                             uint16_t request_id, uint32_t app_status, uint8_t protocol_status);
/*
 * A whole short response: content (the CGI-style head and any body) as
 * one STDOUT record, the empty STDOUT that ends the stream, and
 * END_REQUEST (complete, app status 0) -- what a trigger's acknowledgement
 * is on the wire, built at once so it costs one send().  Returns
 * the bytes it needs; writes them only when they fit in capacity.
 */
size_t dt_fcgi_short_response_encode(uint8_t *out, size_t capacity, uint16_t request_id,
                                  const void *content, uint16_t length);

/* 0, or -1 when the body is shorter than 8 bytes. */
int dt_fcgi_end_request_decode(const uint8_t *body, size_t len, uint32_t *app_status,
                            uint8_t *protocol_status);

/*
 * A growable byte buffer.  A zeroed struct is an empty buffer; failures
 * leave its contents as they were and return -1 with errno ENOMEM.
 */
struct fcgi_buffer {
    uint8_t *data;
    size_t length, capacity;
};

int dt_fcgi_buffer_reserve(struct fcgi_buffer *buffer, size_t extra);
int dt_fcgi_buffer_append(struct fcgi_buffer *buffer, const void *data, size_t length);
/* Drops the first length bytes, as a reader does with what it has consumed. */
void dt_fcgi_buffer_consume(struct fcgi_buffer *buffer, size_t length);
void dt_fcgi_buffer_free(struct fcgi_buffer *buffer);

/*
 * Appends content as records of the given type, each at most 65535 bytes
 * and padded to 8.  A length of 0 appends the one empty record that ends
 * a stream.
 */
int dt_fcgi_record_append(struct fcgi_buffer *buffer, uint8_t type, uint16_t request_id,
                       const void *content, size_t length);

/*
 * Appends a whole responder request: BEGIN_REQUEST, the params ("NAME=value";
 * no '=' means an empty value) as PARAMS records, an empty PARAMS, the body
 * as STDIN records and an empty STDIN.  -1 with errno EINVAL when a param
 * is too long to encode, ENOMEM when memory runs out; the buffer then holds
 * what it held before.
 */
int dt_fcgi_request_build(struct fcgi_buffer *out, uint16_t request_id, uint8_t flags,
                       const char *const *params, size_t param_count, const void *body,
                       size_t body_length);

#endif
