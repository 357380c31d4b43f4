/*
 * request_head.c - checking a request's BEGIN_REQUEST and PARAMS records.
 *
 * Walks the records as they sit in the peeked bytes.  The params stream
 * may split a name-value pair across records, so its content is gathered
 * (it is bounded) and then decoded pair by pair with the same decoder the
 * tests and fuzzers exercise.
 */
#include <stdlib.h>
#include <string.h>

#include "fcgi_record.h"
#include "request_head.h"

static enum request_head_verdict invalid(const char **why, const char *reason)
{
    *why = reason;
    return REQUEST_HEAD_INVALID;
}

static enum request_head_verdict check_pairs(const uint8_t *params, size_t length, const char **why)
{
    size_t position = 0, count = 0;

    while (position < length) {
        const uint8_t *name, *value;
        size_t consumed, name_length, value_length;

        if (fcgi_param_decode(params + position, length - position, &consumed, &name, &name_length,
                              &value, &value_length) < 0)
            return invalid(why, "a param's lengths run past the params stream");
        if (name_length == 0)
            return invalid(why, "a param with an empty name");
        if (memchr(name, '\0', name_length) || memchr(name, '=', name_length))
            return invalid(why, "a param name with '=' or NUL");
        if (++count > REQUEST_HEAD_MAX_PARAMS)
            return invalid(why, "too many params");
        position += consumed;
    }
    return REQUEST_HEAD_COMPLETE;
}

enum request_head_verdict request_head_check(const uint8_t *data, size_t length,
                                             size_t max_params_bytes, size_t *needed,
                                             const char **why)
{
    uint8_t *params = NULL;
    size_t params_length = 0, position = 0;
    int begun = 0;
    uint16_t request_id = 0;
    enum request_head_verdict verdict;

    *why = NULL;
    for (;;) {
        struct fcgi_header header;
        size_t record_length;
        const uint8_t *content;

        if (length - position < FCGI_RECORD_HEADER_SIZE) {
            *needed = position + FCGI_RECORD_HEADER_SIZE;
            verdict = REQUEST_HEAD_INCOMPLETE;
            goto out;
        }
        if (fcgi_header_decode(data + position, length - position, &header) < 0) {
            verdict = invalid(why, "not a FastCGI version 1 record");
            goto out;
        }
        record_length = FCGI_RECORD_HEADER_SIZE + header.content_length + header.padding_length;
        if (length - position < record_length) {
            *needed = position + record_length;
            verdict = REQUEST_HEAD_INCOMPLETE;
            goto out;
        }
        content = data + position + FCGI_RECORD_HEADER_SIZE;
        position += record_length;

        if (header.request_id == FCGI_RECORD_MANAGEMENT_ID) {
            if (header.type != FCGI_TYPE_GET_VALUES || begun) {
                verdict = invalid(why, "an unexpected management record");
                goto out;
            }
            continue;
        }
        if (!begun) {
            uint16_t role;
            uint8_t flags;
            if (header.type != FCGI_TYPE_BEGIN_REQUEST ||
                fcgi_begin_request_decode(content, header.content_length, &role, &flags) < 0) {
                verdict = invalid(why, "a request must open with BEGIN_REQUEST");
                goto out;
            }
            if (role != FCGI_ROLE_RESPONDER) {
                verdict = invalid(why, "only the responder role is served");
                goto out;
            }
            begun = 1;
            request_id = header.request_id;
            continue;
        }
        if (header.request_id != request_id) {
            verdict = invalid(why, "a second request on one connection (multiplexing)");
            goto out;
        }
        if (header.type != FCGI_TYPE_PARAMS) {
            verdict = invalid(why, "a record other than PARAMS before the params ended");
            goto out;
        }
        if (header.content_length == 0) {
            verdict = check_pairs(params, params_length, why);
            goto out;
        }
        if (params_length + header.content_length > max_params_bytes) {
            verdict = invalid(why, "the params are larger than allowed");
            goto out;
        }
        uint8_t *grown = realloc(params, params_length + header.content_length);
        if (!grown) {
            verdict = invalid(why, "out of memory");
            goto out;
        }
        params = grown;
        memcpy(params + params_length, content, header.content_length);
        params_length += header.content_length;
    }
out:
    free(params);
    return verdict;
}
