/*
 * url.c - parsing for the trigger client: http:// URLs, listen-style
 * addresses, form encoding, and HTTP and CGI response heads.
 *
 * These functions see text from the command line and from the network,
 * and they are fuzzed, so each one walks explicit lengths and rejects what
 * it does not understand instead of guessing.  They also refuse spaces and
 * control characters that would let a URL smuggle extra header lines into
 * the request.
 */
#include "url.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

#define HTTP_SCHEME "http://"
#define HTTP_DEFAULT_PORT 80

/* Sets errno for a caller that checks it, and records the message. */
#define INVALID(...) (errno = EINVAL, error_set(__VA_ARGS__))

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_name_char(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_';
}

/* Inside brackets: hex digits, colons, an embedded IPv4 tail, a %zone. */
static int is_ipv6_literal_char(unsigned char c)
{
    return is_name_char(c) || c == ':' || c == '%';
}

/* RFC 9110 token characters, the only ones allowed in a header name. */
static int is_token_char(unsigned char c)
{
    return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int parse_port(const char *text, size_t length, uint16_t *port)
{
    unsigned long value = 0;

    if (length == 0 || length > 5)
        return -1;
    for (size_t i = 0; i < length; i++) {
        if (!is_digit((unsigned char)text[i]))
            return -1;
        value = value * 10 + (unsigned long)(text[i] - '0');
    }
    if (value == 0 || value > 65535)
        return -1;
    *port = (uint16_t)value;
    return 0;
}

static int copy_host(struct url *out, const char *host, size_t length)
{
    if (length == 0)
        return INVALID("missing host");
    if (length >= sizeof out->host)
        return INVALID("host name is too long (%zu characters)", length);
    memcpy(out->host, host, length);
    out->host[length] = '\0';
    return 0;
}

/*
 * host[:port] or [v6][:port] of exactly length bytes.  With port_required
 * a missing port is an error; otherwise out->port keeps its default.
 */
static int parse_authority(const char *text, size_t length, struct url *out, int port_required)
{
    const char *port_text = NULL;
    size_t port_length = 0;

    if (memchr(text, '@', length) != NULL)
        return INVALID("user names and passwords in URLs are not supported");

    if (length > 0 && text[0] == '[') {
        const char *close = memchr(text, ']', length);
        if (close == NULL)
            return INVALID("unterminated IPv6 literal in '%.*s'", (int)length, text);
        size_t literal_length = (size_t)(close - text) - 1;
        for (size_t i = 0; i < literal_length; i++)
            if (!is_ipv6_literal_char((unsigned char)text[1 + i]))
                return INVALID("bad character in IPv6 literal '%.*s'", (int)length, text);
        if (memchr(text + 1, ':', literal_length) == NULL)
            return INVALID("'%.*s' is not an IPv6 literal", (int)length, text);
        if (copy_host(out, text + 1, literal_length) < 0)
            return -1;
        out->host_is_ipv6 = 1;

        size_t after = (size_t)(close - text) + 1;
        if (after < length) {
            if (text[after] != ':')
                return INVALID("unexpected text after IPv6 literal in '%.*s'", (int)length, text);
            port_text = text + after + 1;
            port_length = length - after - 1;
        }
    } else {
        const char *colon = memchr(text, ':', length);
        size_t host_length = colon != NULL ? (size_t)(colon - text) : length;
        for (size_t i = 0; i < host_length; i++)
            if (!is_name_char((unsigned char)text[i]))
                return INVALID("bad character in host '%.*s'", (int)length, text);
        if (colon != NULL && memchr(colon + 1, ':', length - host_length - 1) != NULL)
            return INVALID("IPv6 addresses need brackets: '[%.*s]'", (int)length, text);
        if (copy_host(out, text, host_length) < 0)
            return -1;
        if (colon != NULL) {
            port_text = colon + 1;
            port_length = length - host_length - 1;
        }
    }

    if (port_text == NULL) {
        if (port_required)
            return INVALID("missing port in '%.*s'", (int)length, text);
        return 0;
    }
    if (parse_port(port_text, port_length, &out->port) < 0)
        return INVALID("bad port '%.*s'", (int)port_length, port_text);
    return 0;
}

/* The target runs to '#' or the end; spaces and controls are refused. */
static int parse_target(const char *target, struct url *out)
{
    size_t length = strcspn(target, "#");

    if (length == 0 || target[0] != '/')
        return INVALID("the path must start with '/': '%s'", target);
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c <= ' ' || c == 0x7f)
            return INVALID("the URL holds a space or control character; percent-encode it");
    }
    out->target = target;
    out->target_length = length;
    out->path_length = strcspn(target, "?#");
    return 0;
}

static void url_reset(struct url *out)
{
    memset(out, 0, sizeof *out);
}

int url_parse(const char *url, struct url *out)
{
    url_reset(out);
    if (url == NULL)
        return INVALID("no URL given");
    if (strncasecmp(url, HTTP_SCHEME, strlen(HTTP_SCHEME)) != 0) {
        const char *separator = strstr(url, "://");
        if (separator != NULL)
            return INVALID("unsupported scheme '%.*s' (only http:// is supported)",
                           (int)(separator - url), url);
        return INVALID("not an http:// URL: '%s'", url);
    }

    const char *authority = url + strlen(HTTP_SCHEME);
    size_t authority_length = strcspn(authority, "/?#");
    out->port = HTTP_DEFAULT_PORT;
    if (parse_authority(authority, authority_length, out, 0) < 0)
        return -1;

    const char *rest = authority + authority_length;
    if (*rest == '\0' || *rest == '#') {
        static const char root[] = "/";
        out->target = root;
        out->target_length = 1;
        out->path_length = 1;
        return 0;
    }
    if (*rest == '?')
        return INVALID("a query needs a path before it: 'http://%.*s/%s'", (int)authority_length,
                       authority, rest);
    return parse_target(rest, out);
}

int url_parse_target(const char *target, struct url *out)
{
    url_reset(out);
    if (target == NULL)
        return INVALID("no path given");
    return parse_target(target, out);
}

int url_parse_address(const char *address, struct url *out)
{
    url_reset(out);
    if (address == NULL)
        return INVALID("no address given");
    return parse_authority(address, strlen(address), out, 1);
}

/* WHATWG's urlencoded serializer keeps exactly these bytes as they are. */
static int is_form_safe(unsigned char c)
{
    return is_alnum(c) || c == '*' || c == '-' || c == '.' || c == '_';
}

static size_t form_encoded_length(const char *text, size_t length)
{
    size_t encoded = 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        encoded += is_form_safe(c) || c == ' ' ? 1 : 3;
    }
    return encoded;
}

static char *form_encode_into(char *out, const char *text, size_t length)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        if (is_form_safe(c)) {
            *out++ = (char)c;
        } else if (c == ' ') {
            *out++ = '+';
        } else {
            *out++ = '%';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    return out;
}

char *url_form_encode(const char *const *fields, size_t count)
{
    size_t total = 1;  /* the NUL */

    /* Each input byte becomes at most 3, so sizes are summed with checks
     * rather than trusted. */
    for (size_t i = 0; i < count; i++) {
        size_t length = strlen(fields[i]);
        if (length > (SIZE_MAX - total - 2) / 3) {
            errno = ENOMEM;
            error_set("form fields are too long");
            return NULL;
        }
        total += form_encoded_length(fields[i], length) + 2;  /* '&' and a possible '=' */
    }

    char *encoded = malloc(total);
    if (encoded == NULL) {
        error_set("out of memory encoding %zu form fields", count);
        return NULL;
    }

    char *cursor = encoded;
    for (size_t i = 0; i < count; i++) {
        const char *field = fields[i];
        const char *equals = strchr(field, '=');
        size_t name_length = equals != NULL ? (size_t)(equals - field) : strlen(field);

        if (i > 0)
            *cursor++ = '&';
        cursor = form_encode_into(cursor, field, name_length);
        *cursor++ = '=';
        if (equals != NULL)
            cursor = form_encode_into(cursor, equals + 1, strlen(equals + 1));
    }
    *cursor = '\0';
    return encoded;
}

/* --- response heads --- */

enum head_kind { HEAD_HTTP, HEAD_CGI };

/* What a head parse has gathered so far; only complete heads reach out. */
struct head_state {
    int status;
    int saw_location;
    int saw_job_id;
    char job_id[HTTP_JOB_ID_SIZE];
    long long content_length;   /* -1: none seen */
    int chunked;
};

static int header_name_is(const char *line, size_t name_length, const char *name)
{
    return strlen(name) == name_length && strncasecmp(line, name, name_length) == 0;
}

/* "DDD" followed by a space or the end: a status in 100..599. */
static int parse_status_code(const char *text, size_t length, int *status)
{
    if (length < 3 || !is_digit((unsigned char)text[0]) || !is_digit((unsigned char)text[1]) ||
        !is_digit((unsigned char)text[2]))
        return -1;
    if (length > 3 && text[3] != ' ')
        return -1;
    int value = (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
    if (value < 100 || value > 599)
        return -1;
    *status = value;
    return 0;
}

/* "HTTP/1.1 200 OK"; also "HTTP/1.0 200" with no reason. */
static int parse_status_line(const char *line, size_t length, struct head_state *state)
{
    static const char prefix[] = "HTTP/";
    size_t prefix_length = sizeof prefix - 1;

    if (length < prefix_length + 3 || memcmp(line, prefix, prefix_length) != 0)
        return -1;
    const char *version = line + prefix_length;
    if (!is_digit((unsigned char)version[0]) || version[1] != '.' ||
        !is_digit((unsigned char)version[2]))
        return -1;
    size_t used = prefix_length + 3;
    if (used >= length || line[used] != ' ')
        return -1;
    used++;
    return parse_status_code(line + used, length - used, &state->status);
}

/* Job ids are ours and printed to terminals: short visible ASCII only. */
static int store_job_id(const char *value, size_t length, struct head_state *state)
{
    if (state->saw_job_id)
        return 0;
    if (length >= sizeof state->job_id)
        return -1;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)value[i] <= ' ' || (unsigned char)value[i] >= 0x7f)
            return -1;
    memcpy(state->job_id, value, length);
    state->job_id[length] = '\0';
    state->saw_job_id = 1;
    return 0;
}

static int parse_header_line(const char *line, size_t length, enum head_kind kind,
                             struct head_state *state)
{
    size_t name_length = 0;

    while (name_length < length && is_token_char((unsigned char)line[name_length]))
        name_length++;
    /* No space before the colon: RFC 9110 makes that a hard error. */
    if (name_length == 0 || name_length == length || line[name_length] != ':')
        return -1;

    const char *value = line + name_length + 1;
    size_t value_length = length - name_length - 1;
    while (value_length > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        value_length--;
    }
    while (value_length > 0 && (value[value_length - 1] == ' ' || value[value_length - 1] == '\t'))
        value_length--;

    if (header_name_is(line, name_length, "X-Detach-Job"))
        return store_job_id(value, value_length, state);
    /*
     * Framing, for a caller that reads the body too (trigger_fetch).  A
     * trigger reads only the head, so nothing here refuses a response: a
     * length that is not a number, or two that differ, count as none
     * (read to the end), and a coding other than chunked is left alone.
     */
    if (header_name_is(line, name_length, "Content-Length")) {
        long long declared = 0;
        int valid = value_length > 0 && value_length <= 15;
        for (size_t i = 0; valid && i < value_length; i++) {
            valid = is_digit((unsigned char)value[i]);
            declared = declared * 10 + (value[i] - '0');
        }
        if (!valid || state->content_length == -2 ||
            (state->content_length >= 0 && state->content_length != declared))
            state->content_length = -2;
        else
            state->content_length = declared;
        return 0;
    }
    if (header_name_is(line, name_length, "Transfer-Encoding")) {
        static const char chunked[] = "chunked";
        size_t n = sizeof chunked - 1;
        state->chunked = value_length >= n &&
                         strncasecmp(value + value_length - n, chunked, n) == 0 &&
                         (value_length == n || value[value_length - n - 1] == ' ' ||
                          value[value_length - n - 1] == ',');
        return 0;
    }
    if (kind == HEAD_CGI && header_name_is(line, name_length, "Status")) {
        if (state->status != 0)
            return 0;
        return parse_status_code(value, value_length, &state->status);
    }
    if (kind == HEAD_CGI && header_name_is(line, name_length, "Location"))
        state->saw_location = 1;
    return 0;
}

static int has_control_character(const char *line, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < ' ' && c != '\t') || c == 0x7f)
            return 1;
    }
    return 0;
}

/* An interim head to skip: 1xx except 101, which would switch protocols. */
static int is_interim(int status)
{
    return status >= 100 && status <= 199 && status != 101;
}

/*
 * Walks complete lines one at a time, so malformed input is refused as
 * soon as its first bad line is in, without waiting for the rest.
 */
static int parse_head(const char *buf, size_t len, enum head_kind kind, struct http_response *out)
{
    struct head_state state = {.content_length = -1};
    size_t offset = 0, line_number = 0;

    if (buf == NULL)
        return len == 0 ? 0 : -1;
    for (;;) {
        if (offset > HTTP_HEAD_MAX)
            return -1;
        const char *line = buf + offset;
        const char *newline = memchr(line, '\n', len - offset);
        if (newline == NULL) {
            size_t partial = len - offset;
            /* Garbage is refused from its first bytes instead of after a timeout. */
            if (kind == HEAD_HTTP && line_number == 0 &&
                memcmp(line, "HTTP/", partial < 5 ? partial : 5) != 0)
                return -1;
            return len >= HTTP_HEAD_MAX ? -1 : 0;
        }

        size_t line_length = (size_t)(newline - line);
        offset += line_length + 1;
        if (line_length > 0 && line[line_length - 1] == '\r')
            line_length--;
        if (has_control_character(line, line_length))
            return -1;

        if (line_length == 0) {
            if (line_number == 0)
                return -1;
            if (kind == HEAD_HTTP && is_interim(state.status)) {
                memset(&state, 0, sizeof state);
                state.content_length = -1;
                line_number = 0;
                continue;
            }
            if (kind == HEAD_CGI && state.status == 0)
                state.status = state.saw_location ? 302 : 200;
            if (offset > HTTP_HEAD_MAX)
                return -1;
            out->status = state.status;
            memcpy(out->job_id, state.job_id, sizeof out->job_id);
            out->content_length = state.content_length < 0 ? -1 : state.content_length;
            out->chunked = state.chunked;
            return (int)offset;
        }

        int parsed;
        if (kind == HEAD_HTTP && line_number == 0)
            parsed = parse_status_line(line, line_length, &state);
        else if (line[0] == ' ' || line[0] == '\t')
            parsed = line_number == 0 ? -1 : 0;  /* obsolete folding: ignored */
        else
            parsed = parse_header_line(line, line_length, kind, &state);
        if (parsed < 0)
            return -1;
        line_number++;
    }
}

int http_response_parse(const char *buf, size_t len, struct http_response *out)
{
    return parse_head(buf, len, HEAD_HTTP, out);
}

int cgi_response_parse(const char *buf, size_t len, struct http_response *out)
{
    return parse_head(buf, len, HEAD_CGI, out);
}

/* --- chunked bodies --- */

static int hex_digit(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http_chunked_decode(const char *buf, size_t len, char *out, size_t *out_len)
{
    size_t offset = 0, used = 0;

    for (;;) {
        size_t size = 0, digits = 0;
        int digit;

        while (offset < len && (digit = hex_digit((unsigned char)buf[offset])) >= 0) {
            if (++digits > 8)
                return -1;   /* 4 GiB chunks: not from a status page */
            size = size * 16 + (size_t)digit;
            offset++;
        }
        if (offset == len)
            return 0;
        if (digits == 0)
            return -1;
        /* Chunk extensions (";name=value") mean nothing to us. */
        const char *newline = memchr(buf + offset, '\n', len - offset);
        /* The same bound whether or not the line's end has arrived, so the
         * verdict never depends on how the bytes were split. */
        if ((newline ? (size_t)(newline - buf) : len) - offset > 4096)
            return -1;
        if (newline == NULL)
            return 0;
        if (strchr(";\r\n \t", buf[offset]) == NULL || buf[offset] == '\0')
            return -1;
        offset = (size_t)(newline - buf) + 1;
        if (size == 0) {
            *out_len = used;
            return 1;
        }
        if (len - offset < size)
            return 0;
        memcpy(out + used, buf + offset, size);
        used += size;
        offset += size;
        /* The chunk's data ends in CRLF (or, leniently, LF). */
        if (offset < len && buf[offset] == '\r')
            offset++;
        if (offset == len)
            return 0;
        if (buf[offset] != '\n')
            return -1;
        offset++;
    }
}

/* --- the status page's job JSON --- */

#define JSON_MAX_DEPTH 16

struct json {
    const char *at, *end;
};

static void json_space(struct json *j)
{
    while (j->at < j->end && (*j->at == ' ' || *j->at == '\t' || *j->at == '\n' || *j->at == '\r'))
        j->at++;
}

/* Consumes c (after whitespace) if it is next. */
static int json_take(struct json *j, char c)
{
    json_space(j);
    if (j->at < j->end && *j->at == c) {
        j->at++;
        return 1;
    }
    return 0;
}

static int json_word(struct json *j, const char *word)
{
    size_t n = strlen(word);

    json_space(j);
    if ((size_t)(j->end - j->at) < n || memcmp(j->at, word, n) != 0)
        return -1;
    j->at += n;
    return 0;
}

static int json_hex4(struct json *j, unsigned *value)
{
    *value = 0;
    if (j->end - j->at < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int digit = hex_digit((unsigned char)j->at[i]);
        if (digit < 0)
            return -1;
        *value = *value * 16 + (unsigned)digit;
    }
    j->at += 4;
    return 0;
}

/* Appends the UTF-8 of code point cp if it fits whole; out keeps its NUL. */
static void put_utf8(char *out, size_t size, size_t *used, unsigned cp)
{
    char bytes[4];
    size_t n;

    if (cp < 0x80) {
        bytes[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        bytes[0] = (char)(0xc0 | cp >> 6);
        bytes[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        bytes[0] = (char)(0xe0 | cp >> 12);
        bytes[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        bytes[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        bytes[0] = (char)(0xf0 | cp >> 18);
        bytes[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        bytes[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        bytes[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (out == NULL || *used + n >= size)
        return;
    memcpy(out + *used, bytes, n);
    *used += n;
    out[*used] = '\0';
}

/* A string, unescaped into out (NULL: only checked); cut to fit size. */
static int json_string(struct json *j, char *out, size_t size)
{
    size_t used = 0;

    if (out != NULL && size > 0)
        out[0] = '\0';
    if (!json_take(j, '"'))
        return -1;
    while (j->at < j->end) {
        unsigned char c = (unsigned char)*j->at++;
        unsigned cp;

        if (c == '"')
            return 0;
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            if (out != NULL && used + 1 < size) {
                out[used++] = (char)c;
                out[used] = '\0';
            }
            continue;
        }
        if (j->at == j->end)
            return -1;
        c = (unsigned char)*j->at++;
        switch (c) {
        case '"': case '\\': case '/': cp = c; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (json_hex4(j, &cp) < 0)
                return -1;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned low;
                if (j->end - j->at < 6 || j->at[0] != '\\' || j->at[1] != 'u')
                    return -1;
                j->at += 2;
                if (json_hex4(j, &low) < 0 || low < 0xdc00 || low > 0xdfff)
                    return -1;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return -1;
            }
            break;
        default:
            return -1;
        }
        put_utf8(out, out != NULL ? size : 0, &used, cp);
    }
    return -1;
}

/* A number; *value gets its integer part, clamped to int. */
static int json_number(struct json *j, int *value)
{
    long long whole = 0;
    int negative = 0, digits = 0;

    json_space(j);
    if (j->at < j->end && *j->at == '-') {
        negative = 1;
        j->at++;
    }
    while (j->at < j->end && is_digit((unsigned char)*j->at)) {
        if (whole < 1000000000000LL)
            whole = whole * 10 + (*j->at - '0');
        j->at++;
        digits++;
    }
    if (digits == 0 || (digits > 1 && j->at[-digits] == '0'))
        return -1;
    if (j->at < j->end && *j->at == '.') {
        j->at++;
        if (j->at == j->end || !is_digit((unsigned char)*j->at))
            return -1;
        while (j->at < j->end && is_digit((unsigned char)*j->at))
            j->at++;
    }
    if (j->at < j->end && (*j->at == 'e' || *j->at == 'E')) {
        j->at++;
        if (j->at < j->end && (*j->at == '+' || *j->at == '-'))
            j->at++;
        if (j->at == j->end || !is_digit((unsigned char)*j->at))
            return -1;
        while (j->at < j->end && is_digit((unsigned char)*j->at))
            j->at++;
    }
    if (whole > 2147483647LL)
        whole = 2147483647LL;
    if (value != NULL)
        *value = (int)(negative ? -whole : whole);
    return 0;
}

static int json_skip(struct json *j, int depth);

/*
 * Walks an object, handing each key to visit (NULL: skip every value).
 * visit consumes the value and returns 0, -1 on error, or 1 to have it
 * skipped.
 */
typedef int (*json_visit)(struct json *j, const char *key, void *context, int depth);

static int json_object(struct json *j, json_visit visit, void *context, int depth)
{
    char key[32];

    if (depth > JSON_MAX_DEPTH || !json_take(j, '{'))
        return -1;
    if (json_take(j, '}'))
        return 0;
    do {
        int rc = 1;
        if (json_string(j, key, sizeof key) < 0 || !json_take(j, ':'))
            return -1;
        if (visit != NULL)
            rc = visit(j, key, context, depth);
        if (rc < 0 || (rc > 0 && json_skip(j, depth + 1) < 0))
            return -1;
    } while (json_take(j, ','));
    return json_take(j, '}') ? 0 : -1;
}

static int json_skip(struct json *j, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return -1;
    json_space(j);
    if (j->at == j->end)
        return -1;
    switch (*j->at) {
    case '{':
        return json_object(j, NULL, NULL, depth);
    case '[':
        j->at++;
        if (json_take(j, ']'))
            return 0;
        do
            if (json_skip(j, depth + 1) < 0)
                return -1;
        while (json_take(j, ','));
        return json_take(j, ']') ? 0 : -1;
    case '"':
        return json_string(j, NULL, 0);
    case 't':
        return json_word(j, "true");
    case 'f':
        return json_word(j, "false");
    case 'n':
        return json_word(j, "null");
    default:
        return json_number(j, NULL);
    }
}

/* 1 when the value is null (consumed), 0 when it is something else. */
static int json_null(struct json *j)
{
    json_space(j);
    return j->at < j->end && *j->at == 'n' && json_word(j, "null") == 0;
}

static int visit_progress(struct json *j, const char *key, void *context, int depth)
{
    struct job_status *out = context;

    if (strcmp(key, "percent") == 0)
        return json_number(j, &out->progress);
    if (strcmp(key, "message") == 0)
        return json_string(j, out->message, sizeof out->message);
    return 1;
}

static int visit_exit(struct json *j, const char *key, void *context, int depth)
{
    struct job_status *out = context;

    if (strcmp(key, "code") == 0)
        return json_number(j, &out->exit_code);
    if (strcmp(key, "signal") == 0)
        return json_number(j, &out->exit_signal);
    return 1;
}

static int visit_job(struct json *j, const char *key, void *context, int depth)
{
    struct job_status *out = context;

    if (strcmp(key, "state") == 0)
        return json_string(j, out->state, sizeof out->state);
    if (strcmp(key, "connection_status") == 0)
        return json_number(j, &out->connection_status);
    if (strcmp(key, "progress") == 0) {
        out->progress = -1;
        out->message[0] = '\0';
        if (json_null(j))
            return 0;
        return json_object(j, visit_progress, out, depth + 1);
    }
    if (strcmp(key, "exit") == 0) {
        out->exit_code = out->exit_signal = -1;
        if (json_null(j))
            return 0;
        return json_object(j, visit_exit, out, depth + 1);
    }
    return 1;
}

int job_status_parse(const char *json, size_t length, struct job_status *out)
{
    struct json j = {json, json + length};

    memset(out, 0, sizeof *out);
    out->connection_status = out->progress = out->exit_code = out->exit_signal = -1;
    if (json == NULL || json_object(&j, visit_job, out, 0) < 0)
        return INVALID("the job status is not a JSON object");
    json_space(&j);
    if (j.at != j.end)
        return INVALID("unexpected text after the job status JSON");
    if (out->state[0] == '\0')
        return INVALID("the job status has no state");
    if (out->progress > 100)
        out->progress = 100;
    if (out->progress < -1)
        out->progress = 0;
    return 0;
}
