/*
 * fuzz_trigger_parse.c - the trigger client's parsers (url.h): URLs,
 * targets and addresses from the command line, HTTP and CGI response heads
 * from the network, and form encoding.
 *
 * Checked beyond "no crash":
 *  - a parsed URL's target holds no space or control character (it goes
 *    into a request line: no header smuggling), and points into the input;
 *  - a host holds only name or IPv6-literal characters;
 *  - a response head parse is incremental: a prefix never disagrees with
 *    the whole, and the head alone parses to the same result;
 *  - a parsed status is 100..599, a job id short, visible ASCII;
 *  - form encoding decodes back to the fields;
 *  - http_chunked_decode() (the whole input, and what follows a parsed
 *    HTTP head) writes only inside its len-byte output, and is incremental
 *    as trigger.c uses it: it decodes the growing input on every read, so
 *    a prefix that says "malformed" or "done" must be the whole's answer;
 *    what it decodes, re-chunked, decodes to the same bytes;
 *  - job_status_parse() (detach-trigger --wait-done) accepts only one
 *    JSON object and no proper prefix of it; its fields are NUL-terminated
 *    inside their arrays, progress is -1..100; the fields written back as
 *    JSON parse to the same fields.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_host(const struct url *url, int may_be_empty)
{
    size_t length = strnlen(url->host, sizeof(url->host));

    CHECK(length < sizeof(url->host));
    CHECK(may_be_empty || length > 0);
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)url->host[i];
        CHECK(c > ' ' && c < 0x7f && c != '/' && c != '@' && c != '[' && c != ']');
        CHECK(url->host_is_ipv6 || c != ':');
    }
}

static void check_target(const struct url *url, const char *text)
{
    size_t text_length = strlen(text);

    CHECK(url->target != NULL);
    CHECK(url->target_length >= 1 && url->target[0] == '/');
    CHECK(url->path_length <= url->target_length);
    uintptr_t start = (uintptr_t)text, at = (uintptr_t)url->target;
    if (at < start || at > start + text_length) {
        /* The static "/" for a URL without a path. */
        CHECK(url->target_length == 1 && strcmp(url->target, "/") == 0);
    } else {
        CHECK(url->target + url->target_length <= text + text_length);
    }
    for (size_t i = 0; i < url->target_length; i++) {
        unsigned char c = (unsigned char)url->target[i];
        CHECK(c > ' ' && c != 0x7f && c != '#');
    }
    CHECK(!memchr(url->target, '?', url->path_length));
}

static void parse_urls(const char *text)
{
    struct url url;

    if (url_parse(text, &url) == 0) {
        check_host(&url, 0);
        CHECK(url.port != 0);
        check_target(&url, text);
    }
    if (url_parse_target(text, &url) == 0) {
        CHECK(url.host[0] == '\0' && url.port == 0);
        check_target(&url, text);
    }
    if (url_parse_address(text, &url) == 0) {
        check_host(&url, 0);
        CHECK(url.port != 0);
    }
}

static void check_response(const struct http_response *response)
{
    size_t length = strnlen(response->job_id, sizeof(response->job_id));

    CHECK(response->status >= 100 && response->status <= 599);
    CHECK(length < sizeof(response->job_id));
    for (size_t i = 0; i < length; i++)
        CHECK((unsigned char)response->job_id[i] > ' ' && (unsigned char)response->job_id[i] < 0x7f);
}

typedef int (*head_parser)(const char *, size_t, struct http_response *);

static void parse_heads(head_parser parse, const char *buf, size_t len)
{
    struct http_response whole, part, again;
    int rc = parse(buf, len, &whole);

    CHECK(rc >= -1 && (size_t)(rc > 0 ? rc : 0) <= len);
    if (rc > 0) {
        check_response(&whole);
        /* The head alone is the same head; heap copy for exact bounds. */
        char *head = malloc((size_t)rc);
        CHECK(head);
        memcpy(head, buf, (size_t)rc);
        CHECK(parse(head, (size_t)rc, &again) == rc);
        CHECK(again.status == whole.status && strcmp(again.job_id, whole.job_id) == 0);
        free(head);
    }
    /* A prefix is undecided or decides as the whole does. */
    size_t cut = len / 2;
    int prefix = parse(buf, cut, &part);
    if (prefix == -1)
        CHECK(rc == -1);
    if (prefix > 0) {
        CHECK(rc == prefix);
        CHECK(part.status == whole.status && strcmp(part.job_id, whole.job_id) == 0);
    }
}

/* Decodes one form component into out; returns its length. */
static size_t form_decode(const char *in, size_t length, char *out)
{
    size_t used = 0;

    for (size_t i = 0; i < length; i++) {
        if (in[i] == '+') {
            out[used++] = ' ';
        } else if (in[i] == '%') {
            CHECK(i + 2 < length);
            unsigned value = 0;
            for (int k = 1; k <= 2; k++) {
                char c = in[i + k];
                CHECK((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'));
                value = value * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'A' + 10);
            }
            out[used++] = (char)value;
            i += 2;
        } else {
            char c = in[i];
            CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '*' || c == '-' || c == '.' || c == '_');
            out[used++] = c;
        }
    }
    return used;
}

/* Fields are the input's lines; checks the encoding decodes back to them. */
static void form_round_trip(const char *text, size_t length)
{
    char *copy = malloc(length + 1), *scratch = malloc(length + 1);
    const char *fields[64];
    size_t count = 0;

    CHECK(copy && scratch);
    memcpy(copy, text, length);
    copy[length] = '\0';
    for (char *line = copy; count < 64;) {
        char *newline = strchr(line, '\n');
        fields[count++] = line;
        if (!newline)
            break;
        *newline = '\0';
        line = newline + 1;
    }

    char *encoded = url_form_encode(fields, count);
    CHECK(encoded);
    const char *at = encoded;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(at, '&');
        size_t piece = end ? (size_t)(end - at) : strlen(at);
        const char *equals = memchr(at, '=', piece);
        CHECK(equals);
        CHECK(!memchr(equals + 1, '=', piece - (size_t)(equals - at) - 1));

        const char *field = fields[i], *field_equals = strchr(field, '=');
        size_t name_length = field_equals ? (size_t)(field_equals - field) : strlen(field);
        const char *value = field_equals ? field_equals + 1 : "";

        size_t n = form_decode(at, (size_t)(equals - at), scratch);
        CHECK(n == name_length && memcmp(scratch, field, n) == 0);
        n = form_decode(equals + 1, piece - (size_t)(equals - at) - 1, scratch);
        CHECK(n == strlen(value) && memcmp(scratch, value, n) == 0);

        CHECK((end != NULL) == (i + 1 < count));
        at = end ? end + 1 : at + piece;
    }
    CHECK(*at == '\0');
    free(encoded);
    encoded = url_form_encode(fields, 0);
    CHECK(encoded && encoded[0] == '\0');
    free(encoded);
    free(copy);
    free(scratch);
}

/* http_chunked_decode into an output of exactly len bytes (as trigger.c gives). */
static int chunked(const char *buf, size_t len, char **out, size_t *out_len)
{
    *out = malloc(len ? len : 1);
    CHECK(*out);
    *out_len = (size_t)-1;
    int rc = http_chunked_decode(buf, len, *out, out_len);
    CHECK(rc >= -1 && rc <= 1);
    if (rc == 1)
        CHECK(*out_len <= len);
    return rc;
}

static void check_chunked(const char *buf, size_t len)
{
    char *out, *part, *again;
    size_t out_len, part_len, again_len;
    int rc = chunked(buf, len, &out, &out_len);

    /* Prefixes, each in an allocation of its own size: the middle, and
     * one byte short. */
    size_t cuts[2] = {len / 2, len ? len - 1 : 0};
    for (int i = 0; i < 2; i++) {
        char *prefix = malloc(cuts[i] ? cuts[i] : 1);
        CHECK(prefix);
        memcpy(prefix, buf, cuts[i]);
        int prefix_rc = chunked(prefix, cuts[i], &part, &part_len);
        if (prefix_rc == -1)
            CHECK(rc == -1);
        if (prefix_rc == 1) {
            CHECK(rc == 1 && part_len == out_len);
            CHECK(memcmp(part, out, out_len) == 0);
        }
        free(part);
        free(prefix);
    }

    if (rc == 1) {
        /* Re-chunked: pieces of 1, 2, 3... bytes in hex, then the last chunk. */
        size_t capacity = out_len * 2 + 64 + 16 * (out_len + 1), used = 0;
        char *encoded = malloc(capacity);
        CHECK(encoded);
        for (size_t at = 0, piece = 1; at < out_len; at += piece, piece++) {
            if (piece > out_len - at)
                piece = out_len - at;
            used += (size_t)snprintf(encoded + used, capacity - used, "%zx\r\n", piece);
            memcpy(encoded + used, out + at, piece);
            used += piece;
            memcpy(encoded + used, "\r\n", 2);
            used += 2;
        }
        used += (size_t)snprintf(encoded + used, capacity - used, "0\r\n\r\n");
        CHECK(used < capacity);
        CHECK(chunked(encoded, used, &again, &again_len) == 1);
        CHECK(again_len == out_len && memcmp(again, out, out_len) == 0);
        free(again);
        free(encoded);
    }
    free(out);
}

static void check_string_field(const char *field, size_t size)
{
    CHECK(memchr(field, '\0', size) != NULL);
}

/* A string as JSON: quotes, backslash and control characters escaped. */
static size_t json_quote(char *out, const char *text)
{
    size_t used = 0;

    out[used++] = '"';
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\') {
            out[used++] = '\\';
            out[used++] = (char)*c;
        } else if (*c < 0x20) {
            used += (size_t)sprintf(out + used, "\\u%04x", *c);
        } else {
            out[used++] = (char)*c;
        }
    }
    out[used++] = '"';
    out[used] = '\0';
    return used;
}

static void check_job_status(const char *json, size_t length)
{
    struct job_status job, again;
    int rc = job_status_parse(json, length, &job);

    CHECK(rc == 0 || rc == -1);
    if (rc != 0)
        return;
    check_string_field(job.state, sizeof(job.state));
    check_string_field(job.message, sizeof(job.message));
    CHECK(job.state[0] != '\0');
    CHECK(job.progress >= -1 && job.progress <= 100);

    /* One object: no proper prefix (short of trailing blanks) is one. */
    size_t end = length;
    while (end > 0 && strchr(" \t\r\n", json[end - 1]) && json[end - 1] != '\0')
        end--;
    CHECK(end > 0 && json[end - 1] == '}');
    size_t cuts[2] = {end / 2, end - 1};
    for (int i = 0; i < 2; i++) {
        char *prefix = malloc(cuts[i] ? cuts[i] : 1);
        CHECK(prefix);
        memcpy(prefix, json, cuts[i]);
        CHECK(job_status_parse(prefix, cuts[i], &again) == -1);
        free(prefix);
    }

    /* Written back as JSON, the same fields. */
    char text[16 + 6 * sizeof(job.state) + 6 * sizeof(job.message) + 200];
    size_t used = (size_t)sprintf(text, "{\"state\":");
    used += json_quote(text + used, job.state);
    used += (size_t)sprintf(text + used, ",\"connection_status\":%d,\"progress\":{\"message\":",
                            job.connection_status);
    used += json_quote(text + used, job.message);
    used += (size_t)sprintf(text + used, ",\"percent\":%d},\"exit\":{\"code\":%d,\"signal\":%d}}",
                            job.progress, job.exit_code, job.exit_signal);
    CHECK(used < sizeof(text));
    CHECK(job_status_parse(text, used, &again) == 0);
    CHECK(strcmp(again.state, job.state) == 0);
    CHECK(strcmp(again.message, job.message) == 0);
    CHECK(again.connection_status == job.connection_status);
    CHECK(again.progress == job.progress);
    CHECK(again.exit_code == job.exit_code && again.exit_signal == job.exit_signal);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);

    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';

    /* Each line is also tried on its own: a URL, a target, an address. */
    parse_urls(text);
    for (char *line = text, *newline; line; line = newline ? newline + 1 : NULL) {
        newline = strchr(line, '\n');
        if (newline)
            *newline = '\0';
        if (line != text || newline)
            parse_urls(line);
        if (newline)
            *newline = '\n';
    }

    /* Response heads see raw bytes, with exact bounds (data is the fuzzer's
     * own allocation of size bytes). */
    parse_heads(http_response_parse, (const char *)data, size);
    parse_heads(cgi_response_parse, (const char *)data, size);

    form_round_trip(text, strlen(text));

    check_chunked((const char *)data, size);
    struct http_response head;
    int head_length = http_response_parse((const char *)data, size, &head);
    if (head_length > 0)
        check_chunked((const char *)data + head_length, size - (size_t)head_length);

    check_job_status((const char *)data, size);
    free(text);
    return 0;
}
