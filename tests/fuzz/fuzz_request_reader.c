/*
 * fuzz_request_reader.c - the FastCGI bytes we parse ourselves, before
 * libfcgi sees anything: request_reader.c, which checks a whole request
 * (BEGIN_REQUEST through the empty STDIN record) as a worker reads it, and
 * the record codecs of fcgi_record.h.
 *
 * The input is what a client sends.  It is fed to the reader in one piece,
 * in pieces whose sizes are drawn from the input (1 byte to 70 KB), and,
 * when short, a byte at a time; each with detachd's max_body and with a
 * small one.  Besides "no crash" it checks what the worker relies on:
 *  - the verdict, its reason, the head and request lengths and the body
 *    never depend on how the bytes were split;
 *  - a verdict is reached exactly when the record that decides it is in:
 *    NEED_MORE before, never after (so a connection is dropped as soon as a
 *    bad record has arrived, and never waits on one);
 *  - the verdict is the one an independent model of the rules gives:
 *    COMPLETE means BEGIN_REQUEST (responder, id not 0; padding on any
 *    record is fine), PARAMS of that id
 *    within 64 KiB and 1024 well-formed pairs, an empty PARAMS, STDIN of
 *    that id within max_body and an empty STDIN; take_body() returns the
 *    STDIN content exactly; TOO_LARGE only when the STDIN content passes
 *    max_body, with a sound head; anything else is INVALID with a reason;
 *  - what the reader holds is the input with BEGIN_REQUEST's padding cut
 *    out (the head libfcgi gets opens with a plain 16-byte record);
 *  - after a complete request, the reset keeps exactly the bytes read past
 *    it, and they parse as the model says they would alone (pipelining);
 *  - what our own dt_fcgi_request_build() emits is COMPLETE with the same
 *    params and body (and TOO_LARGE one byte under its body);
 * and that what the decoders take apart, the encoders put back together.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/fcgi_record.h"
#include "fcgi/request_reader.h"

#include "fuzz_check.h"

/* detachd's default max_body, and one the fuzzer meets. */
#define BIG_BODY (1024u * 1024)
#define SMALL_BODY 100u
/* Inputs up to this long are also fed a byte at a time. */
#define BYTEWISE_MAX 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- an independent model of the rules ---- */

/* A name-value pair's lengths, decoded here rather than with fcgi_record.c. */
static int model_length(const uint8_t *in, size_t available, size_t *used, size_t *length)
{
    if (available < 1)
        return -1;
    if (!(in[0] & 0x80)) {
        *used = 1;
        *length = in[0];
        return 0;
    }
    if (available < 4)
        return -1;
    *used = 4;
    *length = ((size_t)(in[0] & 0x7f) << 24) | ((size_t)in[1] << 16) | ((size_t)in[2] << 8) | in[3];
    return 0;
}

/* 0 when the params stream is 0..1024 sound pairs, else -1. */
static int model_pairs(const uint8_t *stream, size_t length, size_t *count)
{
    size_t position = 0;

    *count = 0;
    while (position < length) {
        size_t used_name, used_value, name_length, value_length;
        const uint8_t *name, *value;

        if (model_length(stream + position, length - position, &used_name, &name_length) < 0)
            return -1;
        position += used_name;
        if (model_length(stream + position, length - position, &used_value, &value_length) < 0)
            return -1;
        position += used_value;
        if (name_length > length - position || value_length > length - position - name_length)
            return -1;
        name = stream + position;
        value = name + name_length;
        position += name_length + value_length;
        if (name_length == 0 || memchr(name, '=', name_length) || memchr(name, '\0', name_length) ||
            memchr(value, '\0', value_length))
            return -1;
        if (++*count > REQUEST_MAX_PARAMS)
            return -1;
    }
    return 0;
}

struct model {
    enum request_verdict verdict;
    size_t decided_at;          /* the shortest prefix that decides it */
    size_t head_length, request_length;   /* as sent */
    uint8_t begin_padding;      /* the reader cuts it out of the head it holds */
    uint8_t *params, *body;     /* the streams' content */
    size_t params_length, body_length, pair_count;
    uint16_t request_id;
};

static void model_append(uint8_t **buffer, size_t *length, const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    *buffer = realloc(*buffer, *length + size);
    CHECK(*buffer);
    memcpy(*buffer + *length, data, size);
    *length += size;
}

static void model_run(const uint8_t *data, size_t size, size_t max_body, struct model *m)
{
    enum { BEGIN, PARAMS, BODY } state = BEGIN;
    size_t position = 0;

    memset(m, 0, sizeof(*m));
    m->verdict = REQUEST_NEED_MORE;
    for (;;) {
        if (size - position < 8)
            return;
        const uint8_t *h = data + position;
        if (h[0] != 1) {
            m->verdict = REQUEST_INVALID;
            m->decided_at = position + 8;
            return;
        }
        uint8_t type = h[1];
        uint16_t id = (uint16_t)(h[2] << 8 | h[3]);
        size_t content_length = (size_t)h[4] << 8 | h[5];
        size_t record_end = position + 8 + content_length + h[6];
        const uint8_t *content = h + 8;

        /* A body record over the bound is decided by its header alone. */
        if (state == BODY && type == FCGI_TYPE_STDIN && id == m->request_id && id != 0 &&
            m->body_length + content_length > max_body) {
            m->verdict = REQUEST_TOO_LARGE;
            m->decided_at = position + 8;
            return;
        }
        if (record_end > size)
            return;
        position = record_end;
        m->decided_at = record_end;
        m->verdict = REQUEST_INVALID;
        if (id == 0)
            return;   /* management records never pass */
        switch (state) {
        case BEGIN:
            if (record_end > REQUEST_MAX_HEAD_BYTES)
                return;
            if (type != FCGI_TYPE_BEGIN_REQUEST || content_length != 8 ||
                (content[0] << 8 | content[1]) != FCGI_ROLE_RESPONDER)
                return;
            m->request_id = id;
            m->begin_padding = h[6];
            state = PARAMS;
            break;
        case PARAMS:
            if (record_end > REQUEST_MAX_HEAD_BYTES)
                return;
            if (id != m->request_id || type != FCGI_TYPE_PARAMS)
                return;
            if (content_length == 0) {
                m->head_length = record_end;
                if (model_pairs(m->params, m->params_length, &m->pair_count) < 0)
                    return;
                state = BODY;
                break;
            }
            if (m->params_length + content_length > REQUEST_MAX_PARAMS_BYTES)
                return;
            model_append(&m->params, &m->params_length, content, content_length);
            break;
        case BODY:
            if (id != m->request_id || type != FCGI_TYPE_STDIN)
                return;
            if (content_length == 0) {
                m->verdict = REQUEST_COMPLETE;
                m->request_length = record_end;
                return;
            }
            if (m->body_length + content_length > max_body) {
                m->verdict = REQUEST_TOO_LARGE;
                return;
            }
            model_append(&m->body, &m->body_length, content, content_length);
            break;
        }
        m->verdict = REQUEST_NEED_MORE;
        m->decided_at = 0;
    }
}

static void model_free(struct model *m)
{
    free(m->params);
    free(m->body);
}

/* ---- the reader, fed as a worker feeds it ---- */

struct outcome {
    enum request_verdict verdict;
    const char *why;
    size_t head_length, request_length;
    char *body;
    size_t body_length;
    size_t fed;          /* bytes given when the verdict came */
    size_t fed_before;   /* ... and before the last piece */
};

static uint64_t next_random(uint64_t *state)
{
    /* xorshift64* */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ull;
}

enum split { ONE_PIECE, RANDOM_PIECES, BYTEWISE };

static size_t next_piece(enum split split, uint64_t *state, size_t remaining)
{
    size_t piece;

    if (split == ONE_PIECE)
        return remaining;
    if (split == BYTEWISE)
        return 1;
    uint64_t r = next_random(state);
    switch (r & 3) {
    case 0:  piece = 1 + (r >> 8) % 8; break;
    case 1:  piece = 1 + (r >> 8) % 64; break;
    case 2:  piece = 1 + (r >> 8) % 4096; break;
    default: piece = 1 + (r >> 8) % 70000; break;
    }
    return piece < remaining ? piece : remaining;
}

/* The input byte the reader holds at index i before any body record is
 * dropped: BEGIN_REQUEST's `strip` bytes of padding cut out, and its
 * header's padding length zeroed. */
static uint8_t held_byte(const uint8_t *data, size_t strip, size_t i)
{
    if (i >= FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_BEGIN_BODY_SIZE)
        return data[i + strip];
    return i == 6 && strip ? 0 : data[i];
}

/* Feeds pieces until a verdict other than NEED_MORE, or the end (as read_request()). */

/* The params a job gets: one "NAME=value" per checked pair (HTTP_PROXY
 * left out), each with a non-empty name, packed. */
static void check_params(const struct request_reader *reader)
{
    char *params = dt_request_reader_params(reader);
    size_t count = 0;

    CHECK(params != NULL);
    for (const char *p = params; *p; p += strlen(p) + 1, count++) {
        const char *equals = strchr(p, '=');
        CHECK(equals != NULL && equals != p);
        CHECK(strncmp(p, "HTTP_PROXY=", 11) != 0);
        /* Its name finds a value: its own, or an earlier pair's. */
        char name[256];
        size_t name_length = (size_t)(equals - p);
        if (name_length < sizeof(name)) {
            memcpy(name, p, name_length);
            name[name_length] = '\0';
            CHECK(dt_request_param(params, name) != NULL);
        }
    }
    CHECK(count <= REQUEST_MAX_PARAMS);
    free(params);
}

static void run_reader(const uint8_t *data, size_t size, size_t max_body, enum split split,
                       uint64_t seed, struct outcome *out)
{
    struct request_reader reader;
    size_t offset = 0;
    uint64_t state = seed ? seed : 1;

    memset(out, 0, sizeof(*out));
    dt_request_reader_init(&reader, max_body);
    for (;;) {
        out->verdict = dt_request_reader_parse(&reader);
        if (out->verdict != REQUEST_NEED_MORE || offset == size)
            break;
        size_t piece = next_piece(split, &state, size - offset);
        CHECK(dt_request_reader_room(&reader, piece) == 0);
        CHECK(reader.capacity - reader.length >= piece);
        memcpy(reader.data + reader.length, data + offset, piece);
        reader.length += piece;
        out->fed_before = offset;
        offset += piece;
    }
    out->fed = offset;
    /* BEGIN_REQUEST's padding is cut out once it is accepted (its id is
     * then set); parsed body records are dropped; the rest is kept. */
    size_t strip = reader.request_id ? data[6] : 0;
    CHECK(reader.length + reader.dropped == offset);
    CHECK(reader.dropped >= strip);
    for (size_t i = 0; i < reader.head_length; i++)
        CHECK(reader.data[i] == held_byte(data, strip, i));
    if (reader.dropped == strip) {
        for (size_t i = 0; i < reader.length; i++)
            CHECK(reader.data[i] == held_byte(data, strip, i));
    } else {
        CHECK(memcmp(reader.data + reader.head_length, data + reader.head_length + reader.dropped,
                     reader.length - reader.head_length) == 0);
    }
    /* Fed piecewise, never more held than the head, one record and a read:
     * a body in tiny padded records cannot pile up. */
    if (split != ONE_PIECE)
        CHECK(reader.length <= REQUEST_MAX_HEAD_BYTES + FCGI_RECORD_HEADER_SIZE + 65535 + 255 + 70000);
    out->why = reader.why;
    out->head_length = reader.head_length;
    out->request_length = reader.request_length;

    switch (out->verdict) {
    case REQUEST_NEED_MORE:
        CHECK(offset == size);
        CHECK(reader.why == NULL);
        break;
    case REQUEST_COMPLETE:
        CHECK(reader.why == NULL);
        CHECK(reader.head_length >= 2 * FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_BEGIN_BODY_SIZE);
        CHECK(reader.head_length + FCGI_RECORD_HEADER_SIZE <= reader.request_length);
        CHECK(reader.request_length <= reader.length + reader.dropped);
        CHECK(reader.trailing_length == reader.length + reader.dropped - reader.request_length);
        /* Asked again, it says the same. */
        CHECK(dt_request_reader_parse(&reader) == REQUEST_COMPLETE);
        check_params(&reader);
        break;
    case REQUEST_TOO_LARGE:
        CHECK(reader.why == NULL);
        CHECK(reader.head_length >= 2 * FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_BEGIN_BODY_SIZE);
        CHECK(reader.head_length < reader.length + reader.dropped);
        break;
    case REQUEST_INVALID:
        CHECK(reader.why != NULL && reader.why[0] != '\0');
        break;
    default:
        CHECK(!"unknown verdict");
    }
    out->body = dt_request_reader_take_body(&reader, &out->body_length);
    CHECK(out->body_length <= max_body);
    if (out->verdict == REQUEST_COMPLETE)
        CHECK(out->body != NULL);
    if (out->body)
        CHECK(out->body[out->body_length] == '\0');
    else
        CHECK(out->body_length == 0);
    /* Taken: the reader forgets it. */
    size_t again_length = 1;
    CHECK(dt_request_reader_take_body(&reader, &again_length) == NULL && again_length == 0);
    /* Reset for a kept-alive connection's next request: a clean start,
     * but for the bytes read past a complete request, which are the next
     * one's (pipelining) and parse as they would alone. */
    size_t trailing = out->verdict == REQUEST_COMPLETE ? reader.trailing_length : 0;
    struct model next;
    model_run(data + offset - trailing, trailing, max_body, &next);
    if (next.verdict == REQUEST_COMPLETE || next.verdict == REQUEST_TOO_LARGE)
        CHECK(dt_request_reader_next_is_request(&reader));
    if (trailing == 0)
        CHECK(!dt_request_reader_next_is_request(&reader));
    dt_request_reader_reset(&reader);
    CHECK(reader.length == trailing && reader.position == 0 && reader.params_length == 0);
    CHECK(trailing == 0 || memcmp(reader.data, data + offset - trailing, trailing) == 0);
    CHECK(dt_request_reader_parse(&reader) == next.verdict);
    model_free(&next);
    dt_request_reader_free(&reader);
}

static void same_outcome(const struct outcome *a, const struct outcome *b)
{
    CHECK(a->verdict == b->verdict);
    CHECK((a->why == NULL) == (b->why == NULL));
    CHECK(a->why == NULL || strcmp(a->why, b->why) == 0);
    if (a->verdict == REQUEST_COMPLETE || a->verdict == REQUEST_TOO_LARGE) {
        CHECK(a->head_length == b->head_length);
        CHECK(a->request_length == b->request_length);
        CHECK(a->body_length == b->body_length);
        CHECK(a->body_length == 0 || memcmp(a->body, b->body, a->body_length) == 0);
    }
}

/* The reader agrees with the model, and decided at the model's record. */
static void agrees_with_model(const struct outcome *o, const struct model *m, enum split split)
{
    CHECK(o->verdict == m->verdict);
    if (m->verdict != REQUEST_NEED_MORE) {
        /* Decided by the piece that brought the deciding record in, not before. */
        CHECK(o->fed >= m->decided_at);
        CHECK(o->fed_before < m->decided_at);
        if (split == BYTEWISE)
            CHECK(o->fed == m->decided_at);
    }
    switch (m->verdict) {
    case REQUEST_COMPLETE:
        CHECK(o->head_length + m->begin_padding == m->head_length);
        CHECK(o->request_length == m->request_length);
        CHECK(o->body_length == m->body_length);
        CHECK(m->body_length == 0 || memcmp(o->body, m->body, m->body_length) == 0);
        break;
    case REQUEST_TOO_LARGE:
        /* A sound head, and the body read before the record that overflowed. */
        CHECK(o->head_length + m->begin_padding == m->head_length);
        CHECK(o->body_length == m->body_length);
        CHECK(m->body_length == 0 || memcmp(o->body, m->body, m->body_length) == 0);
        break;
    default:
        break;
    }
}

static uint64_t input_hash(const uint8_t *data, size_t size)
{
    uint64_t hash = 1469598103934665603ull;

    for (size_t i = 0; i < size; i++)
        hash = (hash ^ data[i]) * 1099511628211ull;
    return hash;
}

/* Every way of feeding the input, against the model, with one max_body. */
static void check_reader(const uint8_t *data, size_t size, size_t max_body)
{
    struct model m;
    struct outcome whole, pieces, bytewise;

    model_run(data, size, max_body, &m);
    run_reader(data, size, max_body, ONE_PIECE, 0, &whole);
    agrees_with_model(&whole, &m, ONE_PIECE);
    run_reader(data, size, max_body, RANDOM_PIECES, input_hash(data, size) ^ max_body, &pieces);
    same_outcome(&whole, &pieces);
    agrees_with_model(&pieces, &m, RANDOM_PIECES);
    if (size <= BYTEWISE_MAX) {
        run_reader(data, size, max_body, BYTEWISE, 0, &bytewise);
        same_outcome(&whole, &bytewise);
        agrees_with_model(&bytewise, &m, BYTEWISE);
        free(bytewise.body);
    }
    /* A prefix cut just before the decision is undecided; the whole input
     * cut right at it is decided the same. */
    if (m.verdict != REQUEST_NEED_MORE) {
        struct outcome before, at;
        run_reader(data, m.decided_at - 1, max_body, ONE_PIECE, 0, &before);
        CHECK(before.verdict == REQUEST_NEED_MORE);
        run_reader(data, m.decided_at, max_body, ONE_PIECE, 0, &at);
        same_outcome(&whole, &at);
        free(before.body);
        free(at.body);
    }
    /* A larger bound never refuses what a smaller one accepts. */
    if (m.verdict == REQUEST_COMPLETE && max_body == SMALL_BODY) {
        struct model big;
        model_run(data, size, BIG_BODY, &big);
        CHECK(big.verdict == REQUEST_COMPLETE);
        model_free(&big);
    }
    free(whole.body);
    free(pieces.body);
    model_free(&m);
}

/* ---- the codecs ---- */

/* Every pair in a params stream decodes, and round trips through the encoder. */
static void check_pairs_round_trip(const uint8_t *stream, size_t length)
{
    size_t position = 0;

    while (position < length) {
        const uint8_t *name, *value;
        size_t consumed, name_length, value_length;

        if (dt_fcgi_param_decode(stream + position, length - position, &consumed, &name,
                              &name_length, &value, &value_length) < 0)
            return;
        CHECK(consumed >= 2 && consumed <= length - position);
        CHECK(name == stream + position + consumed - name_length - value_length);
        CHECK(value == name + name_length);

        /* Re-encode; a length may have been sent in the long form, so the
         * canonical encoding can be shorter, never longer. */
        size_t needed = dt_fcgi_param_encode(NULL, 0, (const char *)name, name_length,
                                          (const char *)value, value_length);
        CHECK(needed > 0 && needed <= consumed);
        uint8_t *again = malloc(needed);
        CHECK(again);
        CHECK(dt_fcgi_param_encode(again, needed, (const char *)name, name_length,
                                (const char *)value, value_length) == needed);
        const uint8_t *name2, *value2;
        size_t consumed2, name_length2, value_length2;
        CHECK(dt_fcgi_param_decode(again, needed, &consumed2, &name2, &name_length2, &value2,
                                &value_length2) == 0);
        CHECK(consumed2 == needed && name_length2 == name_length && value_length2 == value_length);
        CHECK(memcmp(name2, name, name_length) == 0 && memcmp(value2, value, value_length) == 0);
        free(again);
        position += consumed;
    }
}

/* Walks the input as records with the decoders, exercising each on what it meets. */
static void walk_records(const uint8_t *data, size_t size)
{
    size_t position = 0;

    while (size - position >= FCGI_RECORD_HEADER_SIZE) {
        struct fcgi_header header;
        uint8_t encoded[FCGI_RECORD_HEADER_SIZE];

        if (dt_fcgi_header_decode(data + position, size - position, &header) < 0) {
            CHECK(data[position] != FCGI_RECORD_VERSION);
            return;
        }
        dt_fcgi_header_encode(encoded, header.type, header.request_id, header.content_length,
                           header.padding_length);
        CHECK(memcmp(encoded, data + position, 7) == 0);

        size_t available = size - position - FCGI_RECORD_HEADER_SIZE;
        const uint8_t *content = data + position + FCGI_RECORD_HEADER_SIZE;
        size_t content_length = header.content_length < available ? header.content_length : available;

        switch (header.type) {
        case FCGI_TYPE_BEGIN_REQUEST: {
            uint16_t role;
            uint8_t flags;
            if (dt_fcgi_begin_request_decode(content, content_length, &role, &flags) == 0) {
                uint8_t record[FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_BEGIN_BODY_SIZE];
                CHECK(content_length >= FCGI_RECORD_BEGIN_BODY_SIZE);
                dt_fcgi_begin_request_encode(record, header.request_id, role, flags);
                CHECK(memcmp(record + FCGI_RECORD_HEADER_SIZE, content, 3) == 0);
            } else {
                CHECK(content_length < FCGI_RECORD_BEGIN_BODY_SIZE);
            }
            break;
        }
        case FCGI_TYPE_END_REQUEST: {
            uint32_t app_status;
            uint8_t protocol_status;
            if (dt_fcgi_end_request_decode(content, content_length, &app_status,
                                        &protocol_status) == 0) {
                uint8_t record[FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_END_BODY_SIZE];
                CHECK(content_length >= FCGI_RECORD_END_BODY_SIZE);
                dt_fcgi_end_request_encode(record, header.request_id, app_status, protocol_status);
                CHECK(memcmp(record + FCGI_RECORD_HEADER_SIZE, content, 5) == 0);
            } else {
                CHECK(content_length < FCGI_RECORD_END_BODY_SIZE);
            }
            break;
        }
        case FCGI_TYPE_PARAMS:
        case FCGI_TYPE_GET_VALUES:
        case FCGI_TYPE_GET_VALUES_RESULT:
            check_pairs_round_trip(content, content_length);
            break;
        default:
            break;
        }
        if (header.content_length + header.padding_length > available)
            return;
        position += FCGI_RECORD_HEADER_SIZE + header.content_length + header.padding_length;
    }
}

/* ---- our own encoder's output passes ---- */

/*
 * The "NAME=value" params a C caller can give dt_fcgi_request_build(): the
 * pairs of the input's first PARAMS record that such a string can carry.
 * The body is the whole input.
 */
static void builder_passes(const uint8_t *data, size_t size)
{
    struct fcgi_header header;
    const uint8_t *content = NULL;
    size_t position = 0, count = 0, content_length = 0;
    char *params[64];

    while (dt_fcgi_header_decode(data + position, size - position, &header) == 0) {
        size_t record_length =
            FCGI_RECORD_HEADER_SIZE + (size_t)header.content_length + header.padding_length;
        if (record_length > size - position)
            break;
        if (header.type == FCGI_TYPE_PARAMS) {
            content = data + position + FCGI_RECORD_HEADER_SIZE;
            content_length = header.content_length;
            break;
        }
        position += record_length;
    }
    for (size_t at = 0; at < content_length && count < 64;) {
        const uint8_t *name, *value;
        size_t consumed, name_length, value_length;
        if (dt_fcgi_param_decode(content + at, content_length - at, &consumed, &name, &name_length,
                              &value, &value_length) < 0)
            break;
        at += consumed;
        if (name_length == 0 || memchr(name, '=', name_length) || memchr(name, '\0', name_length) ||
            memchr(value, '\0', value_length))
            continue;
        char *text = malloc(name_length + value_length + 2);
        CHECK(text);
        memcpy(text, name, name_length);
        text[name_length] = '=';
        memcpy(text + name_length + 1, value, value_length);
        text[name_length + 1 + value_length] = '\0';
        params[count++] = text;
    }

    struct fcgi_buffer built = {0};
    uint16_t request_id = (uint16_t)(1 + size % 65535);
    uint8_t flags = size & 1 ? FCGI_RECORD_FLAG_KEEP_CONN : 0;
    CHECK(dt_fcgi_request_build(&built, request_id, flags, (const char *const *)params, count, data,
                             size) == 0);

    struct model m;
    model_run(built.data, built.length, size, &m);
    CHECK(m.verdict == REQUEST_COMPLETE);
    CHECK(m.request_length == built.length && m.request_id == request_id);
    CHECK(m.pair_count == count);
    /* The params are the ones given, in order. */
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *name, *value;
        size_t consumed, name_length, value_length;
        CHECK(dt_fcgi_param_decode(m.params + at, m.params_length - at, &consumed, &name,
                                &name_length, &value, &value_length) == 0);
        at += consumed;
        CHECK(name_length + 1 + value_length == strlen(params[i]));
        CHECK(memcmp(params[i], name, name_length) == 0 && params[i][name_length] == '=');
        CHECK(memcmp(params[i] + name_length + 1, value, value_length) == 0);
    }
    CHECK(at == m.params_length);

    struct outcome whole, pieces;
    run_reader(built.data, built.length, size, ONE_PIECE, 0, &whole);
    agrees_with_model(&whole, &m, ONE_PIECE);
    CHECK(whole.body_length == size && (size == 0 || memcmp(whole.body, data, size) == 0));
    run_reader(built.data, built.length, size, RANDOM_PIECES, input_hash(data, size), &pieces);
    same_outcome(&whole, &pieces);
    free(whole.body);
    free(pieces.body);
    if (size > 0) {
        struct outcome tight;
        run_reader(built.data, built.length, size - 1, ONE_PIECE, 0, &tight);
        CHECK(tight.verdict == REQUEST_TOO_LARGE);
        CHECK(tight.head_length == m.head_length);
        free(tight.body);
    }
    model_free(&m);
    dt_fcgi_buffer_free(&built);
    for (size_t i = 0; i < count; i++)
        free(params[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_reader(data, size, BIG_BODY);
    check_reader(data, size, SMALL_BODY);
    walk_records(data, size);
    builder_passes(data, size);
    return 0;
}
