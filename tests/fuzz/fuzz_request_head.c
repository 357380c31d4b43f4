/*
 * fuzz_request_head.c - the FastCGI bytes we parse ourselves, before
 * libfcgi sees anything: request_head_check() and the record decoders of
 * fcgi_record.h.
 *
 * Besides "no crash", it checks what the worker relies on:
 *  - COMPLETE: the stream really holds BEGIN_REQUEST (responder), PARAMS of
 *    the same id within the bound, an empty PARAMS, and pairs that decode.
 *  - INCOMPLETE: needed > length, and no more than one record further.
 *  - INVALID: a reason is given.
 *  - a prefix never contradicts the whole: the worker checks what it has
 *    peeked so far, so a decision on a prefix must be the decision.
 *  - a tighter bound never accepts what a looser one refuses.
 * and that what the decoders take apart, the encoders put back together.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi_record.h"
#include "request_head.h"

#define CHECK(condition)                                                              \
    do {                                                                              \
        if (!(condition)) {                                                           \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,      \
                    #condition);                                                      \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* The largest a single record can be: header, content, padding. */
#define MAX_RECORD (FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_MAX_CONTENT + 255)

/* Every pair in a params stream decodes, and round trips through the encoder. */
static size_t check_pairs_round_trip(const uint8_t *stream, size_t length, int *all_decoded)
{
    size_t position = 0, count = 0;

    *all_decoded = 1;
    while (position < length) {
        const uint8_t *name, *value;
        size_t consumed, name_length, value_length;

        if (fcgi_param_decode(stream + position, length - position, &consumed, &name,
                              &name_length, &value, &value_length) < 0) {
            *all_decoded = 0;
            break;
        }
        CHECK(consumed >= 2 && consumed <= length - position);
        CHECK(name == stream + position + consumed - name_length - value_length);
        CHECK(value == name + name_length);

        /* Re-encode; a length may have been sent in the long form, so the
         * canonical encoding can be shorter, never longer. */
        size_t needed = fcgi_param_encode(NULL, 0, (const char *)name, name_length,
                                          (const char *)value, value_length);
        CHECK(needed > 0 && needed <= consumed);
        uint8_t *again = malloc(needed);
        CHECK(again);
        CHECK(fcgi_param_encode(again, needed, (const char *)name, name_length,
                                (const char *)value, value_length) == needed);
        const uint8_t *name2, *value2;
        size_t consumed2, name_length2, value_length2;
        CHECK(fcgi_param_decode(again, needed, &consumed2, &name2, &name_length2, &value2,
                                &value_length2) == 0);
        CHECK(consumed2 == needed && name_length2 == name_length && value_length2 == value_length);
        CHECK(memcmp(name2, name, name_length) == 0 && memcmp(value2, value, value_length) == 0);
        free(again);

        position += consumed;
        count++;
    }
    return count;
}

/*
 * Walks the whole input as a record stream with the decoders, independent
 * of request_head_check, exercising each decoder on whatever it meets.
 */
static void walk_records(const uint8_t *data, size_t size)
{
    size_t position = 0;

    while (size - position >= FCGI_RECORD_HEADER_SIZE) {
        struct fcgi_header header;
        uint8_t encoded[FCGI_RECORD_HEADER_SIZE];

        if (fcgi_header_decode(data + position, size - position, &header) < 0) {
            CHECK(data[position] != FCGI_RECORD_VERSION);
            return;
        }
        fcgi_header_encode(encoded, header.type, header.request_id, header.content_length,
                           header.padding_length);
        CHECK(memcmp(encoded, data + position, 7) == 0);

        size_t available = size - position - FCGI_RECORD_HEADER_SIZE;
        const uint8_t *content = data + position + FCGI_RECORD_HEADER_SIZE;
        size_t content_length = header.content_length < available ? header.content_length : available;

        switch (header.type) {
        case FCGI_TYPE_BEGIN_REQUEST: {
            uint16_t role;
            uint8_t flags;
            if (fcgi_begin_request_decode(content, content_length, &role, &flags) == 0) {
                uint8_t record[FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_BEGIN_BODY_SIZE];
                CHECK(content_length >= FCGI_RECORD_BEGIN_BODY_SIZE);
                fcgi_begin_request_encode(record, header.request_id, role, flags);
                CHECK(memcmp(record + FCGI_RECORD_HEADER_SIZE, content, 3) == 0);
            } else {
                CHECK(content_length < FCGI_RECORD_BEGIN_BODY_SIZE);
            }
            break;
        }
        case FCGI_TYPE_END_REQUEST: {
            uint32_t app_status;
            uint8_t protocol_status;
            if (fcgi_end_request_decode(content, content_length, &app_status,
                                        &protocol_status) == 0) {
                uint8_t record[FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_END_BODY_SIZE];
                CHECK(content_length >= FCGI_RECORD_END_BODY_SIZE);
                fcgi_end_request_encode(record, header.request_id, app_status, protocol_status);
                CHECK(memcmp(record + FCGI_RECORD_HEADER_SIZE, content, 5) == 0);
            } else {
                CHECK(content_length < FCGI_RECORD_END_BODY_SIZE);
            }
            break;
        }
        case FCGI_TYPE_PARAMS:
        case FCGI_TYPE_GET_VALUES:
        case FCGI_TYPE_GET_VALUES_RESULT: {
            int all;
            check_pairs_round_trip(content, content_length, &all);
            break;
        }
        default:
            break;
        }
        if (header.content_length + header.padding_length > available)
            return;
        position += FCGI_RECORD_HEADER_SIZE + header.content_length + header.padding_length;
    }
}

/*
 * An independent account of a COMPLETE verdict: the records from the
 * start up to the empty PARAMS are what the header says.  Returns the
 * byte just past the empty PARAMS record.
 */
static size_t confirm_complete(const uint8_t *data, size_t size, size_t max_params_bytes)
{
    size_t position = 0, params_length = 0, pair_count;
    uint8_t *params = NULL;
    int begun = 0, all_decoded;
    uint16_t request_id = 0;

    for (;;) {
        struct fcgi_header header;
        CHECK(fcgi_header_decode(data + position, size - position, &header) == 0);
        size_t record_length =
            FCGI_RECORD_HEADER_SIZE + (size_t)header.content_length + header.padding_length;
        CHECK(record_length <= size - position);
        const uint8_t *content = data + position + FCGI_RECORD_HEADER_SIZE;
        position += record_length;

        if (!begun && header.request_id == FCGI_RECORD_MANAGEMENT_ID) {
            CHECK(header.type == FCGI_TYPE_GET_VALUES);
            continue;
        }
        if (!begun) {
            uint16_t role;
            uint8_t flags;
            CHECK(header.type == FCGI_TYPE_BEGIN_REQUEST);
            CHECK(fcgi_begin_request_decode(content, header.content_length, &role, &flags) == 0);
            CHECK(role == FCGI_ROLE_RESPONDER);
            begun = 1;
            request_id = header.request_id;
            continue;
        }
        CHECK(header.type == FCGI_TYPE_PARAMS);
        CHECK(header.request_id == request_id);
        if (header.content_length == 0)
            break;
        params_length += header.content_length;
        CHECK(params_length <= max_params_bytes);
        params = realloc(params, params_length);
        CHECK(params);
        memcpy(params + params_length - header.content_length, content, header.content_length);
    }
    pair_count = check_pairs_round_trip(params, params_length, &all_decoded);
    CHECK(all_decoded);
    CHECK(pair_count <= REQUEST_HEAD_MAX_PARAMS);
    free(params);
    return position;
}

/*
 * The other way round: pairs that our own builder encodes into a request
 * must pass the check.  Uses the pairs of the input's first PARAMS record.
 */
static void builder_passes_check(const uint8_t *data, size_t size)
{
    struct fcgi_header header;
    const uint8_t *content;
    size_t position = 0, count = 0, total = 0;
    char *params[64];

    /* The first PARAMS record, wherever it is. */
    for (;;) {
        if (fcgi_header_decode(data + position, size - position, &header) < 0)
            return;
        size_t record_length =
            FCGI_RECORD_HEADER_SIZE + (size_t)header.content_length + header.padding_length;
        if (record_length > size - position)
            return;
        content = data + position + FCGI_RECORD_HEADER_SIZE;
        position += record_length;
        if (header.type == FCGI_TYPE_PARAMS)
            break;
    }
    for (size_t at = 0; at < header.content_length && count < 64;) {
        const uint8_t *name, *value;
        size_t consumed, name_length, value_length;
        if (fcgi_param_decode(content + at, header.content_length - at, &consumed, &name,
                              &name_length, &value, &value_length) < 0)
            break;
        at += consumed;
        /* Only what a "NAME=value" C string can carry. */
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
        total += name_length + value_length + 8;
    }
    if (total <= REQUEST_HEAD_MAX_PARAMS_BYTES) {
        struct fcgi_buffer built = {0};
        size_t needed;
        const char *why;
        CHECK(fcgi_request_build(&built, 1, 0, (const char *const *)params, count, content,
                                 header.content_length) == 0);
        CHECK(request_head_check(built.data, built.length, REQUEST_HEAD_MAX_PARAMS_BYTES, &needed,
                                 &why) == REQUEST_HEAD_COMPLETE);
        fcgi_buffer_free(&built);
    }
    for (size_t i = 0; i < count; i++)
        free(params[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t needed = 0, small_needed = 0, prefix_needed = 0;
    const char *why = NULL, *small_why = NULL, *prefix_why = NULL;
    enum request_head_verdict verdict, small, prefix;
    /* A bound small enough that the fuzzer meets it. */
    const size_t small_bound = 300;

    verdict = request_head_check(data, size, REQUEST_HEAD_MAX_PARAMS_BYTES, &needed, &why);
    switch (verdict) {
    case REQUEST_HEAD_COMPLETE:
        CHECK(why == NULL);
        CHECK(confirm_complete(data, size, REQUEST_HEAD_MAX_PARAMS_BYTES) <= size);
        break;
    case REQUEST_HEAD_INCOMPLETE:
        CHECK(why == NULL);
        CHECK(needed > size);
        CHECK(needed - size <= MAX_RECORD);
        /* Supplying what it asked for makes progress: a different verdict
         * or a larger need, never the same question twice. */
        {
            uint8_t *more = calloc(1, needed);
            size_t needed_again = 0;
            const char *why_again;
            CHECK(more);
            if (size)
                memcpy(more, data, size);
            enum request_head_verdict again = request_head_check(
                more, needed, REQUEST_HEAD_MAX_PARAMS_BYTES, &needed_again, &why_again);
            CHECK(again != REQUEST_HEAD_INCOMPLETE || needed_again > needed);
            free(more);
        }
        break;
    case REQUEST_HEAD_INVALID:
        CHECK(why != NULL && why[0] != '\0');
        break;
    default:
        CHECK(!"unknown verdict");
    }

    /* A prefix is undecided, or decided as the whole is. */
    size_t cut = size / 2;
    prefix = request_head_check(data, cut, REQUEST_HEAD_MAX_PARAMS_BYTES, &prefix_needed,
                                &prefix_why);
    if (prefix != REQUEST_HEAD_INCOMPLETE) {
        CHECK(prefix == verdict);
        CHECK(prefix == REQUEST_HEAD_COMPLETE || strcmp(prefix_why, why) == 0);
    } else if (prefix_needed <= size) {
        CHECK(verdict != REQUEST_HEAD_INCOMPLETE || needed > prefix_needed);
    } else {
        CHECK(verdict == REQUEST_HEAD_INCOMPLETE && needed == prefix_needed);
    }

    /* A tighter bound accepts nothing the default refuses. */
    small = request_head_check(data, size, small_bound, &small_needed, &small_why);
    if (small == REQUEST_HEAD_COMPLETE)
        CHECK(verdict == REQUEST_HEAD_COMPLETE);
    if (small == REQUEST_HEAD_COMPLETE)
        CHECK(confirm_complete(data, size, small_bound) <= size);

    walk_records(data, size);
#ifndef FUZZ_AVOID_KNOWN_BUGS
    /* Known: fcgi_record_append() does NULL + 0 for the empty records
     * (regressions/request_head/request_build_null_offset). */
    builder_passes_check(data, size);
#else
    (void)builder_passes_check;
#endif
    return 0;
}
