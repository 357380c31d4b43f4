/*
 * job_status.c - the status page's job JSON, read with json-c for
 * detach-trigger --wait-done.
 *
 * The text comes from the network: json-c's strict mode refuses what is
 * not JSON (trailing commas, bad escapes, leading zeros), its depth limit
 * bounds the recursion, and the length is explicit -- the text need not
 * end in a NUL.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <json-c/json.h>

#include "base/error.h"
#include "client/job_status.h"

#define INVALID(...) (errno = EPROTO, dt_error_set(__VA_ARGS__))

/* Copies s into out, cut to fit without splitting a UTF-8 character. */
static void copy_utf8(char *out, size_t size, const char *s)
{
    size_t length = strlen(s);

    if (length >= size) {
        length = size - 1;
        while (length > 0 && ((unsigned char)s[length] & 0xc0) == 0x80)
            length--;
    }
    memcpy(out, s, length);
    out[length] = '\0';
}

/* The int member key of object, or -1 when absent or not an integer. */
static int int_member(struct json_object *object, const char *key)
{
    struct json_object *value;
    int64_t number;

    if (!object || !json_object_is_type(object, json_type_object) ||
        !json_object_object_get_ex(object, key, &value) || !json_object_is_type(value, json_type_int))
        return -1;
    number = json_object_get_int64(value);
    return number < 0 ? -1 : number > INT_MAX ? INT_MAX : (int)number;
}

static struct json_object *object_member(struct json_object *object, const char *key)
{
    struct json_object *value;

    if (!json_object_object_get_ex(object, key, &value) ||
        !json_object_is_type(value, json_type_object))
        return NULL;
    return value;
}

static int only_space(const char *text, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if (!strchr(" \t\r\n", text[i]))
            return 0;
    return 1;
}

int dt_job_status_parse(const char *json, size_t length, detach_job_status *out)
{
    struct json_tokener *tokener;
    struct json_object *root, *state, *progress, *message;
    size_t used;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->connection_status = out->progress = out->exit_code = out->exit_signal = -1;
    if (json == NULL || length == 0 || length > INT_MAX)
        return INVALID("empty job status");
    tokener = json_tokener_new_ex(JOB_STATUS_MAX_DEPTH + 1);
    if (tokener == NULL)
        return dt_error_set("out of memory reading the job status");
    json_tokener_set_flags(tokener, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tokener, json, (int)length);
    used = json_tokener_get_parse_end(tokener);
    if (root == NULL) {
        enum json_tokener_error error = json_tokener_get_error(tokener);
        INVALID("the job status is not JSON: %s",
                error == json_tokener_continue ? "it ends early" : json_tokener_error_desc(error));
        goto out;
    }
    if (!only_space(json + used, length - used)) {
        INVALID("the job status has text after its JSON object");
        goto out;
    }
    if (!json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "state", &state) ||
        !json_object_is_type(state, json_type_string)) {
        INVALID("the job status is not a job object (no \"state\")");
        goto out;
    }
    copy_utf8(out->state, sizeof(out->state), json_object_get_string(state));
    out->connection_status = int_member(root, "connection_status");
    progress = object_member(root, "progress");
    if (progress) {
        out->progress = int_member(progress, "percent");
        if (out->progress > 100)
            out->progress = 100;
        if (json_object_object_get_ex(progress, "message", &message) &&
            json_object_is_type(message, json_type_string))
            copy_utf8(out->message, sizeof(out->message), json_object_get_string(message));
    }
    out->exit_code = int_member(object_member(root, "exit"), "code");
    out->exit_signal = int_member(object_member(root, "exit"), "signal");
    rc = 0;
out:
    json_object_put(root);
    json_tokener_free(tokener);
    return rc;
}
