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
    struct head_state state = {0};
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
                line_number = 0;
                continue;
            }
            if (kind == HEAD_CGI && state.status == 0)
                state.status = state.saw_location ? 302 : 200;
            if (offset > HTTP_HEAD_MAX)
                return -1;
            out->status = state.status;
            memcpy(out->job_id, state.job_id, sizeof out->job_id);
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
