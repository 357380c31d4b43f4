/*
 * request_reader.c - the record-by-record check of one request.
 *
 * Incremental: each call parses the complete records that arrived since the
 * last one, so a large body costs one pass.  A name-value pair may span
 * PARAMS records, so the params stream is gathered (it is bounded) and its
 * pairs decoded once it ends.  Padding (0-255 bytes, as the spec allows on
 * every record) is skipped everywhere; BEGIN_REQUEST's is also cut out of
 * the held bytes (see strip_begin_padding).
 */
#include <stdlib.h>
#include <string.h>

#include "fcgi/fcgi_record.h"
#include "fcgi/request_reader.h"

enum { EXPECT_BEGIN, IN_PARAMS, IN_STDIN, DONE, FAILED };

void dt_request_reader_init(struct request_reader *reader, size_t max_body)
{
    memset(reader, 0, sizeof(*reader));
    reader->max_body = max_body;
    reader->state = EXPECT_BEGIN;
}

void dt_request_reader_free(struct request_reader *reader)
{
    free(reader->data);
    free(reader->params);
    free(reader->body);
    dt_request_reader_init(reader, reader->max_body);
}

void dt_request_reader_reset(struct request_reader *reader)
{
    uint8_t *data = reader->data;
    size_t capacity = reader->capacity, kept = 0;

    /* Bytes read past a complete request are the next one's start (a
     * pipelining client): moved to the front, never dropped. */
    if (reader->state == DONE && reader->trailing_length > 0) {
        kept = reader->trailing_length;
        memmove(data, data + reader->length - kept, kept);
    } else if (capacity > REQUEST_READER_KEPT_BUFFER) {
        dt_request_reader_free(reader);
        return;
    }
    free(reader->params);
    free(reader->body);
    dt_request_reader_init(reader, reader->max_body);
    reader->data = data;
    reader->capacity = capacity;
    reader->length = kept;
}

int dt_request_reader_next_is_request(const struct request_reader *reader)
{
    const uint8_t *next;

    if (reader->state != DONE || reader->trailing_length == 0)
        return 0;
    next = reader->data + reader->length - reader->trailing_length;
    /* As far as the bytes go, a BEGIN_REQUEST record header. */
    return next[0] == FCGI_RECORD_VERSION &&
           (reader->trailing_length < 2 || next[1] == FCGI_TYPE_BEGIN_REQUEST);
}

int dt_request_reader_room(struct request_reader *reader, size_t at_least)
{
    size_t capacity = reader->capacity ? reader->capacity : 4096;
    uint8_t *grown;

    if (reader->capacity - reader->length >= at_least)
        return 0;
    while (capacity - reader->length < at_least)
        capacity *= 2;
    grown = realloc(reader->data, capacity);
    if (!grown)
        return -1;
    reader->data = grown;
    reader->capacity = capacity;
    return 0;
}

static enum request_verdict invalid(struct request_reader *reader, const char *why)
{
    reader->why = why;
    return REQUEST_INVALID;
}

static enum request_verdict check_pairs(struct request_reader *reader)
{
    size_t position = 0, count = 0;

    while (position < reader->params_length) {
        const uint8_t *name, *value;
        size_t consumed, name_length, value_length;

        if (dt_fcgi_param_decode(reader->params + position, reader->params_length - position,
                              &consumed, &name, &name_length, &value, &value_length) < 0)
            return invalid(reader, "a param's lengths run past the params stream");
        if (name_length == 0)
            return invalid(reader, "a param with an empty name");
        if (memchr(name, '\0', name_length) || memchr(name, '=', name_length))
            return invalid(reader, "a param name with '=' or NUL");
        if (memchr(value, '\0', value_length))
            return invalid(reader, "a param value with NUL");
        if (++count > REQUEST_MAX_PARAMS)
            return invalid(reader, "too many params");
        position += consumed;
        reader->params_text_bytes += name_length + value_length + 2;   /* '=' and NUL */
    }
    return REQUEST_NEED_MORE;
}

/* Why a record of this type cannot come now: among the params, or in the body. */
static const char *unexpected(uint8_t type, int params)
{
    switch (type) {
    case FCGI_TYPE_BEGIN_REQUEST:
        return params ? "a second BEGIN_REQUEST before the params ended"
                      : "a second BEGIN_REQUEST before the body ended";
    case FCGI_TYPE_ABORT_REQUEST:
        return params ? "ABORT_REQUEST before the params ended"
                      : "ABORT_REQUEST before the body ended";
    case FCGI_TYPE_DATA:
        return "a DATA record (the filter role is not served)";
    case FCGI_TYPE_STDIN:
        return "a STDIN record before the params ended";
    case FCGI_TYPE_PARAMS:
        return "a PARAMS record after the params ended";
    default:
        return params ? "a record type not allowed among the params"
                      : "a record type not allowed in the body";
    }
}

static int append(uint8_t **buffer, size_t *length, const uint8_t *data, size_t size, int text)
{
    uint8_t *grown = realloc(*buffer, *length + size + (text ? 1 : 0));

    if (!grown)
        return -1;
    memcpy(grown + *length, data, size);
    *length += size;
    if (text)
        grown[*length] = '\0';
    *buffer = grown;
    return 0;
}

/* One complete record; NEED_MORE means "fine, go on". */
static enum request_verdict take_record(struct request_reader *reader,
                                        const struct fcgi_header *header, const uint8_t *content,
                                        size_t record_end)
{
    uint16_t role;
    uint8_t flags;

    if (header->request_id == FCGI_RECORD_MANAGEMENT_ID)
        return invalid(reader, "a management record (nginx and Apache send none)");
    if (reader->state != IN_STDIN && record_end > REQUEST_MAX_HEAD_BYTES)
        return invalid(reader, "the request head is larger than allowed");
    switch (reader->state) {
    case EXPECT_BEGIN:
        if (header->type == FCGI_TYPE_ABORT_REQUEST)
            return invalid(reader, "ABORT_REQUEST for no open request");
        if (header->type != FCGI_TYPE_BEGIN_REQUEST)
            return invalid(reader, "a request opened with a record other than BEGIN_REQUEST");
        /* Padding is fine (parse() cuts it out); a body of another size
         * is not what the spec defines, and libfcgi refuses it too. */
        if (header->content_length != FCGI_RECORD_BEGIN_BODY_SIZE ||
            dt_fcgi_begin_request_decode(content, header->content_length, &role, &flags) < 0)
            return invalid(reader, "a BEGIN_REQUEST body other than 8 bytes");
        if (role != FCGI_ROLE_RESPONDER)
            return invalid(reader, "only the responder role is served");
        reader->request_id = header->request_id;
        reader->keep_connection = (flags & FCGI_RECORD_FLAG_KEEP_CONN) != 0;
        reader->state = IN_PARAMS;
        return REQUEST_NEED_MORE;
    case IN_PARAMS:
        if (header->request_id != reader->request_id)
            return invalid(reader, "a second request id on one connection (multiplexing)");
        if (header->type != FCGI_TYPE_PARAMS)
            return invalid(reader, unexpected(header->type, 1));
        if (header->content_length == 0) {
            /* Nothing of the head was dropped but BEGIN_REQUEST's padding:
             * the head is at the front of data, this long. */
            reader->head_length = record_end - reader->dropped;
            reader->state = IN_STDIN;
            return check_pairs(reader);
        }
        if (reader->params_length + header->content_length > REQUEST_MAX_PARAMS_BYTES)
            return invalid(reader, "the params are larger than allowed");
        if (append(&reader->params, &reader->params_length, content, header->content_length, 0) < 0)
            return invalid(reader, "out of memory");
        return REQUEST_NEED_MORE;
    case IN_STDIN:
        if (header->request_id != reader->request_id)
            return invalid(reader, "a second request id on one connection (multiplexing)");
        if (header->type != FCGI_TYPE_STDIN)
            return invalid(reader, unexpected(header->type, 0));
        if (header->content_length == 0) {
            reader->request_length = record_end;
            reader->state = DONE;
            if (!reader->body && append((uint8_t **)&reader->body, &reader->body_length,
                                        (const uint8_t *)"", 0, 1) < 0)
                return invalid(reader, "out of memory");
            return REQUEST_COMPLETE;
        }
        if (reader->body_length + header->content_length > reader->max_body)
            return REQUEST_TOO_LARGE;
        if (append((uint8_t **)&reader->body, &reader->body_length, content,
                   header->content_length, 1) < 0)
            return invalid(reader, "out of memory");
        return REQUEST_NEED_MORE;
    default:
        return REQUEST_COMPLETE;
    }
}

/*
 * The BEGIN_REQUEST record just parsed, at index 0 of data, had padding:
 * cut it out, so the held head opens with a plain 16-byte BEGIN_REQUEST,
 * the form every reader parses alike (given a padded one, libfcgi 2.4.2,
 * the fuzz target's reference, marks its input stream failed: fuzz
 * regression begin_request_with_padding).
 * The bytes count as dropped, as parsed body records do.
 */
static void strip_begin_padding(struct request_reader *reader, size_t index, uint8_t padding)
{
    size_t content_end = index + FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_BEGIN_BODY_SIZE;

    memmove(reader->data + content_end, reader->data + content_end + padding,
            reader->length - content_end - padding);
    reader->data[index + 6] = 0;   /* the header's paddingLength */
    reader->length -= padding;
    reader->dropped += padding;
}

/* Drops the body records parsed so far, keeping the head at the front. */
static void drop_parsed_body(struct request_reader *reader)
{
    size_t parsed = reader->position - reader->dropped;   /* an index into data */

    if (reader->state != IN_STDIN || parsed <= reader->head_length)
        return;
    memmove(reader->data + reader->head_length, reader->data + parsed, reader->length - parsed);
    reader->length -= parsed - reader->head_length;
    reader->dropped += parsed - reader->head_length;
}

enum request_verdict dt_request_reader_parse(struct request_reader *reader)
{
    enum request_verdict verdict;

    if (reader->state == DONE) {
        /* Read since: more of what comes after the request. */
        reader->trailing_length = reader->length - (reader->position - reader->dropped);
        return REQUEST_COMPLETE;
    }
    if (reader->state == FAILED)
        return reader->why ? REQUEST_INVALID : REQUEST_TOO_LARGE;
    for (;;) {
        struct fcgi_header header;
        size_t index = reader->position - reader->dropped;   /* into data */
        size_t available = reader->length - index, record_length;
        const uint8_t *record;

        if (available < FCGI_RECORD_HEADER_SIZE) {
            verdict = REQUEST_NEED_MORE;
            break;
        }
        record = reader->data + index;   /* data is not NULL: bytes are there */
        if (dt_fcgi_header_decode(record, available, &header) < 0) {
            verdict = invalid(reader, "not a FastCGI version 1 record");
            break;
        }
        record_length = FCGI_RECORD_HEADER_SIZE + header.content_length + header.padding_length;
        /* Too large is known from the header: the client may be waiting
         * for our answer before it sends the rest of this record. */
        if (reader->state == IN_STDIN && header.type == FCGI_TYPE_STDIN &&
            header.request_id == reader->request_id &&
            reader->body_length + header.content_length > reader->max_body) {
            verdict = REQUEST_TOO_LARGE;
            break;
        }
        if (available < record_length) {
            verdict = REQUEST_NEED_MORE;
            break;
        }
        int opening = reader->state == EXPECT_BEGIN;
        verdict = take_record(reader, &header, record + FCGI_RECORD_HEADER_SIZE,
                              reader->position + record_length);
        reader->position += record_length;
        if (verdict != REQUEST_NEED_MORE)
            break;
        if (opening && header.padding_length > 0)
            strip_begin_padding(reader, index, header.padding_length);
    }
    if (verdict == REQUEST_COMPLETE)
        reader->trailing_length = reader->length - (reader->position - reader->dropped);
    else if (verdict != REQUEST_NEED_MORE)
        reader->state = FAILED;   /* a verdict is final */
    drop_parsed_body(reader);
    return verdict;
}

/* "NAME=value" strings in one block, sized when the pairs were checked
 * (so decoding cannot fail here): one pass. */
char *dt_request_reader_params(const struct request_reader *reader)
{
    size_t position, consumed, name_length, value_length;
    const uint8_t *name, *value;
    char *params = malloc(reader->params_text_bytes + 1), *text = params;

    if (!params)
        return NULL;
    for (position = 0; position < reader->params_length; position += consumed) {
        dt_fcgi_param_decode(reader->params + position, reader->params_length - position, &consumed,
                          &name, &name_length, &value, &value_length);
        /* httpoxy: a client's "Proxy:" header must never steer a job's
         * outgoing requests. */
        if (name_length == 10 && memcmp(name, "HTTP_PROXY", 10) == 0)
            continue;
        memcpy(text, name, name_length);
        text += name_length;
        *text++ = '=';
        memcpy(text, value, value_length);
        text += value_length;
        *text++ = '\0';
    }
    *text = '\0';
    return params;
}

const char *dt_request_param(const char *params, const char *name)
{
    size_t length = strlen(name);

    for (const char *entry = params; *entry; entry += strlen(entry) + 1)
        if (strncmp(entry, name, length) == 0 && entry[length] == '=')
            return entry + length + 1;
    return NULL;
}

size_t dt_request_params_size(const char *params)
{
    const char *entry = params;

    while (*entry)
        entry += strlen(entry) + 1;
    return (size_t)(entry - params) + 1;
}

char *dt_request_reader_take_body(struct request_reader *reader, size_t *length)
{
    char *body = reader->body;

    *length = reader->body_length;
    reader->body = NULL;
    reader->body_length = 0;
    return body;
}
