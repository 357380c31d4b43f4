/*
 * cgi_head.c - the parsing the FastCGI side of the trigger client keeps:
 * the CGI response head a FastCGI app writes on stdout, and "host:port"
 * FastCGI addresses.  (The HTTP side is libcurl's, the JSON json-c's.)
 *
 * These functions see text from the command line and from the network,
 * and they are fuzzed, so each one walks explicit lengths and rejects what
 * it does not understand instead of guessing.
 */
#include "client/cgi_head.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"

/* Sets errno for a caller that checks it, and records the message. */
#define INVALID(...) (errno = EINVAL, dt_error_set(__VA_ARGS__))

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_token_char(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* --- FastCGI addresses --- */

int dt_fcgi_address_parse(const char *address, struct fcgi_address *out)
{
    const char *colon, *host = address;
    size_t host_length;
    unsigned long port = 0;

    memset(out, 0, sizeof(*out));
    if (address == NULL || address[0] == '\0')
        return INVALID("no address given");
    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        if (close == NULL || close[1] != ':')
            return INVALID("bad address '%s' (want [v6]:port)", address);
        host = address + 1;
        host_length = (size_t)(close - host);
        colon = close + 1;
        for (size_t i = 0; i < host_length; i++)
            if (!(is_digit((unsigned char)host[i]) || strchr("abcdefABCDEF:.", host[i])))
                return INVALID("bad IPv6 address in '%s'", address);
    } else {
        colon = strrchr(address, ':');
        if (colon == NULL)
            return INVALID("bad address '%s' (want host:port)", address);
        host_length = (size_t)(colon - address);
        for (size_t i = 0; i < host_length; i++) {
            unsigned char c = (unsigned char)host[i];
            if (!(is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
                  c == '.' || c == '_'))
                return INVALID("bad host name in '%s'", address);
        }
    }
    if (host_length == 0 || host_length >= sizeof(out->host))
        return INVALID("bad host in '%s'", address);
    if (colon[1] == '\0' || strlen(colon + 1) > 5)
        return INVALID("bad port in '%s'", address);
    for (const char *p = colon + 1; *p; p++) {
        if (!is_digit((unsigned char)*p))
            return INVALID("bad port in '%s'", address);
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port == 0 || port > 65535)
        return INVALID("bad port in '%s' (1 to 65535)", address);
    memcpy(out->host, host, host_length);
    out->host[host_length] = '\0';
    out->port = (unsigned)port;
    out->is_ipv6 = address[0] == '[';
    return 0;
}

/* --- response heads --- */

/* What a head parse has gathered so far; only complete heads reach out. */
struct head_state {
    int status;
    int saw_location;
    int saw_job_id;
    char job_id[CGI_JOB_ID_SIZE];
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

static int parse_header_line(const char *line, size_t length, struct head_state *state)
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
    if (header_name_is(line, name_length, "Status")) {
        if (state->status != 0)
            return 0;
        return parse_status_code(value, value_length, &state->status);
    }
    if (header_name_is(line, name_length, "Location"))
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

/*
 * Walks complete lines one at a time, so malformed input is refused as
 * soon as its first bad line is in, without waiting for the rest.
 */
int dt_cgi_response_parse(const char *buf, size_t len, struct cgi_head *out)
{
    struct head_state state = {0};
    size_t offset = 0, line_number = 0;

    if (buf == NULL)
        return len == 0 ? 0 : -1;
    for (;;) {
        if (offset > CGI_HEAD_MAX)
            return -1;
        const char *line = buf + offset;
        const char *newline = memchr(line, '\n', len - offset);
        if (newline == NULL) {
            return len >= CGI_HEAD_MAX ? -1 : 0;
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
            if (state.status == 0)
                state.status = state.saw_location ? 302 : 200;
            if (offset > CGI_HEAD_MAX)
                return -1;
            out->status = state.status;
            memcpy(out->job_id, state.job_id, sizeof out->job_id);
            return (int)offset;
        }

        int parsed;
        if (line[0] == ' ' || line[0] == '\t')
            parsed = line_number == 0 ? -1 : 0;  /* obsolete folding: ignored */
        else
            parsed = parse_header_line(line, line_length, &state);
        if (parsed < 0)
            return -1;
        line_number++;
    }
}
