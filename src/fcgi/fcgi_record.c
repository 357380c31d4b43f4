/*
 * fcgi_record.c - FastCGI wire format encoders and decoders.
 *
 * Everything here works on caller-given bytes, with no I/O, so the daemon,
 * the trigger client, the unit tests and the fuzzers share one careful
 * implementation.  All multi-byte fields are big-endian on the wire.
 */
#include "fcgi/fcgi_record.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Past 127 a length needs the 4-byte form, flagged by its top bit. */
#define SHORT_LENGTH_MAX 127u
#define LONG_LENGTH_FLAG 0x80u

static void put_uint16(uint8_t *out, uint16_t value)
{
    out[0] = (uint8_t)(value >> 8);
    out[1] = (uint8_t)value;
}

static uint16_t get_uint16(const uint8_t *in)
{
    return (uint16_t)((in[0] << 8) | in[1]);
}

static void put_uint32(uint8_t *out, uint32_t value)
{
    out[0] = (uint8_t)(value >> 24);
    out[1] = (uint8_t)(value >> 16);
    out[2] = (uint8_t)(value >> 8);
    out[3] = (uint8_t)value;
}

static uint32_t get_uint32(const uint8_t *in)
{
    return ((uint32_t)in[0] << 24) | ((uint32_t)in[1] << 16) | ((uint32_t)in[2] << 8) | in[3];
}

void dt_fcgi_header_encode(uint8_t out[FCGI_RECORD_HEADER_SIZE], uint8_t type, uint16_t request_id,
                        uint16_t content_length, uint8_t padding_length)
{
    out[0] = FCGI_RECORD_VERSION;
    out[1] = type;
    put_uint16(out + 2, request_id);
    put_uint16(out + 4, content_length);
    out[6] = padding_length;
    out[7] = 0;
}

int dt_fcgi_header_decode(const uint8_t *in, size_t len, struct fcgi_header *out)
{
    if (len < FCGI_RECORD_HEADER_SIZE || in[0] != FCGI_RECORD_VERSION)
        return -1;
    out->version = in[0];
    out->type = in[1];
    out->request_id = get_uint16(in + 2);
    out->content_length = get_uint16(in + 4);
    out->padding_length = in[6];
    return 0;
}

uint8_t dt_fcgi_padding_for(size_t content_length)
{
    return (uint8_t)((8 - content_length % 8) % 8);
}

static size_t length_size(size_t length)
{
    return length <= SHORT_LENGTH_MAX ? 1 : 4;
}

static uint8_t *put_length(uint8_t *out, size_t length)
{
    if (length <= SHORT_LENGTH_MAX) {
        *out = (uint8_t)length;
        return out + 1;
    }
    put_uint32(out, (uint32_t)length | ((uint32_t)LONG_LENGTH_FLAG << 24));
    return out + 4;
}

size_t dt_fcgi_param_encode(uint8_t *out, size_t capacity, const char *name, size_t name_len,
                         const char *value, size_t value_len)
{
    if (name_len > FCGI_RECORD_MAX_PARAM_LENGTH || value_len > FCGI_RECORD_MAX_PARAM_LENGTH)
        return 0;
    /* Both lengths are below 2^31, so on 64-bit the sum cannot wrap;
     * on 32-bit it can, and then the pair is unencodable in memory. */
    size_t prefix = length_size(name_len) + length_size(value_len);
    if (name_len > SIZE_MAX - prefix || value_len > SIZE_MAX - prefix - name_len)
        return 0;
    size_t needed = prefix + name_len + value_len;
    if (out == NULL || needed > capacity)
        return needed;

    uint8_t *cursor = put_length(out, name_len);
    cursor = put_length(cursor, value_len);
    if (name_len > 0)
        memcpy(cursor, name, name_len);
    if (value_len > 0)
        memcpy(cursor + name_len, value, value_len);
    return needed;
}

/* Reads one length at in[*offset], advancing *offset; -1 if truncated. */
static int get_length(const uint8_t *in, size_t len, size_t *offset, size_t *length)
{
    if (*offset >= len)
        return -1;
    if ((in[*offset] & LONG_LENGTH_FLAG) == 0) {
        *length = in[*offset];
        *offset += 1;
        return 0;
    }
    if (len - *offset < 4)
        return -1;
    /* Masking the flag bit leaves at most 2^31-1, the protocol's ceiling. */
    *length = get_uint32(in + *offset) & FCGI_RECORD_MAX_PARAM_LENGTH;
    *offset += 4;
    return 0;
}

int dt_fcgi_param_decode(const uint8_t *in, size_t len, size_t *consumed, const uint8_t **name,
                      size_t *name_len, const uint8_t **value, size_t *value_len)
{
    size_t offset = 0, announced_name, announced_value;

    if (in == NULL)
        return -1;
    if (get_length(in, len, &offset, &announced_name) < 0 ||
        get_length(in, len, &offset, &announced_value) < 0)
        return -1;
    /* Compare against what remains, never add the announced lengths. */
    size_t remaining = len - offset;
    if (announced_name > remaining || announced_value > remaining - announced_name)
        return -1;

    *name = in + offset;
    *name_len = announced_name;
    *value = in + offset + announced_name;
    *value_len = announced_value;
    *consumed = offset + announced_name + announced_value;
    return 0;
}

void dt_fcgi_begin_request_encode(uint8_t out[FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_BEGIN_BODY_SIZE],
                               uint16_t request_id, uint16_t role, uint8_t flags)
{
    dt_fcgi_header_encode(out, FCGI_TYPE_BEGIN_REQUEST, request_id, FCGI_RECORD_BEGIN_BODY_SIZE, 0);
    uint8_t *body = out + FCGI_RECORD_HEADER_SIZE;
    put_uint16(body, role);
    body[2] = flags;
    memset(body + 3, 0, 5);
}

int dt_fcgi_begin_request_decode(const uint8_t *body, size_t len, uint16_t *role, uint8_t *flags)
{
    if (body == NULL || len < FCGI_RECORD_BEGIN_BODY_SIZE)
        return -1;
    *role = get_uint16(body);
    *flags = body[2];
    return 0;
}

void dt_fcgi_end_request_encode(uint8_t out[FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_END_BODY_SIZE],
                             uint16_t request_id, uint32_t app_status, uint8_t protocol_status)
{
    dt_fcgi_header_encode(out, FCGI_TYPE_END_REQUEST, request_id, FCGI_RECORD_END_BODY_SIZE, 0);
    uint8_t *body = out + FCGI_RECORD_HEADER_SIZE;
    put_uint32(body, app_status);
    body[4] = protocol_status;
    memset(body + 5, 0, 3);
}

size_t dt_fcgi_short_response_encode(uint8_t *out, size_t capacity, uint16_t request_id,
                                  const void *content, uint16_t length)
{
    uint8_t padding = dt_fcgi_padding_for(length);
    size_t needed = FCGI_RECORD_HEADER_SIZE + length + padding + FCGI_RECORD_HEADER_SIZE +
                    FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_END_BODY_SIZE;
    uint8_t *cursor = out;

    if (needed > capacity)
        return needed;
    dt_fcgi_header_encode(cursor, FCGI_TYPE_STDOUT, request_id, length, padding);
    cursor += FCGI_RECORD_HEADER_SIZE;
    if (length)
        memcpy(cursor, content, length);
    memset(cursor + length, 0, padding);
    cursor += length + padding;
    dt_fcgi_header_encode(cursor, FCGI_TYPE_STDOUT, request_id, 0, 0);
    cursor += FCGI_RECORD_HEADER_SIZE;
    dt_fcgi_end_request_encode(cursor, request_id, 0, FCGI_PROTOCOL_STATUS_REQUEST_COMPLETE);
    return needed;
}

int dt_fcgi_end_request_decode(const uint8_t *body, size_t len, uint32_t *app_status,
                            uint8_t *protocol_status)
{
    if (body == NULL || len < FCGI_RECORD_END_BODY_SIZE)
        return -1;
    *app_status = get_uint32(body);
    *protocol_status = body[4];
    return 0;
}

int dt_fcgi_buffer_reserve(struct fcgi_buffer *buffer, size_t extra)
{
    if (extra <= buffer->capacity - buffer->length)
        return 0;
    /* No object may exceed PTRDIFF_MAX, so larger requests fail up front
     * rather than by asking the allocator for the impossible. */
    if (extra > PTRDIFF_MAX - buffer->length) {
        errno = ENOMEM;
        return -1;
    }
    size_t wanted = buffer->length + extra;
    /* Doubling keeps a long series of small appends linear overall. */
    size_t capacity = buffer->capacity > 0 ? buffer->capacity : 256;
    while (capacity < wanted)
        capacity = capacity > PTRDIFF_MAX / 2 ? wanted : capacity * 2;

    uint8_t *grown = realloc(buffer->data, capacity);
    if (grown == NULL) {
        errno = ENOMEM;
        return -1;
    }
    buffer->data = grown;
    buffer->capacity = capacity;
    return 0;
}

int dt_fcgi_buffer_append(struct fcgi_buffer *buffer, const void *data, size_t length)
{
    if (length == 0)
        return 0;
    if (dt_fcgi_buffer_reserve(buffer, length) < 0)
        return -1;
    memcpy(buffer->data + buffer->length, data, length);
    buffer->length += length;
    return 0;
}

void dt_fcgi_buffer_consume(struct fcgi_buffer *buffer, size_t length)
{
    if (length >= buffer->length) {
        buffer->length = 0;
        return;
    }
    memmove(buffer->data, buffer->data + length, buffer->length - length);
    buffer->length -= length;
}

void dt_fcgi_buffer_free(struct fcgi_buffer *buffer)
{
    free(buffer->data);
    buffer->data = NULL;
    buffer->length = 0;
    buffer->capacity = 0;
}

/* Records needed to carry length bytes, counting the empty one for 0. */
static size_t record_count(size_t length)
{
    if (length == 0)
        return 1;
    return length / FCGI_RECORD_MAX_CONTENT + (length % FCGI_RECORD_MAX_CONTENT != 0);
}

int dt_fcgi_record_append(struct fcgi_buffer *buffer, uint8_t type, uint16_t request_id,
                       const void *content, size_t length)
{
    static const uint8_t zeros[8];
    const uint8_t *cursor = content;

    /* Each record costs at most a header and 7 bytes of padding; reserving
     * it all first means a failure appends nothing. */
    size_t records = record_count(length);
    size_t overhead_per_record = FCGI_RECORD_HEADER_SIZE + 7;
    if (records > SIZE_MAX / overhead_per_record ||
        length > SIZE_MAX - records * overhead_per_record) {
        errno = ENOMEM;
        return -1;
    }
    if (dt_fcgi_buffer_reserve(buffer, length + records * overhead_per_record) < 0)
        return -1;

    do {
        size_t chunk = length < FCGI_RECORD_MAX_CONTENT ? length : FCGI_RECORD_MAX_CONTENT;
        uint8_t padding = dt_fcgi_padding_for(chunk);
        uint8_t header[FCGI_RECORD_HEADER_SIZE];

        dt_fcgi_header_encode(header, type, request_id, (uint16_t)chunk, padding);
        /* Cannot fail: the space was reserved above. */
        dt_fcgi_buffer_append(buffer, header, sizeof header);
        dt_fcgi_buffer_append(buffer, cursor, chunk);
        dt_fcgi_buffer_append(buffer, zeros, padding);
        if (chunk) /* an empty closing record may come with no content at all */
            cursor += chunk;
        length -= chunk;
    } while (length > 0);
    return 0;
}

/* Appends the encoded name-value pair of one "NAME=value" string. */
static int append_param(struct fcgi_buffer *stream, const char *param)
{
    const char *equals = strchr(param, '=');
    size_t name_len = equals != NULL ? (size_t)(equals - param) : strlen(param);
    const char *value = equals != NULL ? equals + 1 : "";
    size_t value_len = strlen(value);

    size_t needed = dt_fcgi_param_encode(NULL, 0, param, name_len, value, value_len);
    if (needed == 0) {
        errno = EINVAL;
        return -1;
    }
    if (dt_fcgi_buffer_reserve(stream, needed) < 0)
        return -1;
    dt_fcgi_param_encode(stream->data + stream->length, needed, param, name_len, value, value_len);
    stream->length += needed;
    return 0;
}

int dt_fcgi_request_build(struct fcgi_buffer *out, uint16_t request_id, uint8_t flags,
                       const char *const *params, size_t param_count, const void *body,
                       size_t body_length)
{
    struct fcgi_buffer stream = {0};
    size_t original_length = out->length;
    uint8_t begin[FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_BEGIN_BODY_SIZE];

    /* The params form one byte stream that may be cut anywhere between
     * records, so encode it whole first and split it afterwards. */
    for (size_t i = 0; i < param_count; i++)
        if (append_param(&stream, params[i]) < 0)
            goto fail;

    dt_fcgi_begin_request_encode(begin, request_id, FCGI_ROLE_RESPONDER, flags);
    if (dt_fcgi_buffer_append(out, begin, sizeof begin) < 0)
        goto fail;
    if (stream.length > 0 &&
        dt_fcgi_record_append(out, FCGI_TYPE_PARAMS, request_id, stream.data, stream.length) < 0)
        goto fail;
    if (dt_fcgi_record_append(out, FCGI_TYPE_PARAMS, request_id, NULL, 0) < 0)
        goto fail;
    if (body_length > 0 &&
        dt_fcgi_record_append(out, FCGI_TYPE_STDIN, request_id, body, body_length) < 0)
        goto fail;
    if (dt_fcgi_record_append(out, FCGI_TYPE_STDIN, request_id, NULL, 0) < 0)
        goto fail;

    dt_fcgi_buffer_free(&stream);
    return 0;

fail:
    {
        int saved_errno = errno;
        dt_fcgi_buffer_free(&stream);
        out->length = original_length;
        errno = saved_errno;
    }
    return -1;
}
