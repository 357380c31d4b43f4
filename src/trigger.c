/*
 * trigger.c - detach_trigger(): the client side of a trigger, the C
 * counterpart of PHP's old triggerRequest($url, $post_data, $cookie).
 *
 * It speaks just enough HTTP/1.1, or FastCGI straight to detachd, to send
 * one request and read the head of the answer; the body is never read,
 * because a trigger's answer is an empty 200 and the job id in a header.
 * Every wait is bounded by one overall deadline, and the socket is
 * non-blocking throughout so that no single call can outlive it.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "detach.h"
#include "error.h"
#include "fcgi_record.h"
#include "url.h"

#define DEFAULT_TIMEOUT_MS 10000u
#define USER_AGENT "detach-trigger/" DETACH_VERSION
#define FORM_CONTENT_TYPE "application/x-www-form-urlencoded"
#define UNIX_PREFIX "unix:"
/* One request per connection, so any id would do; 1 is what servers send. */
#define TRIGGER_REQUEST_ID 1
#define READ_CHUNK 16384
/* How long to back off when a unix socket's backlog is full. */
#define BACKLOG_RETRY_MS 10

/* Sets errno for callers that check it, and records the message. */
#define INVALID(...) (errno = EINVAL, error_set(__VA_ARGS__))

_Static_assert(sizeof(((detach_trigger_result *)0)->job_id) == HTTP_JOB_ID_SIZE,
               "the parsed job id must fit the result exactly");

/* Everything detach_trigger() works on, gathered once up front. */
struct trigger_request {
    const detach_trigger_options *opts;
    const char *method;
    struct url url;
    char *body;          /* form-encoded fields, or NULL */
    size_t body_length;
    uint64_t deadline_ms;
};

static uint64_t now_ms(void)
{
    struct timespec now;
    /* CLOCK_MONOTONIC cannot fail on Linux; a zero clock would only
     * shorten the wait, never hang. */
    if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
        return 0;
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static int remaining_ms(uint64_t deadline_ms)
{
    uint64_t now = now_ms();
    if (now >= deadline_ms)
        return 0;
    uint64_t left = deadline_ms - now;
    return left > INT_MAX ? INT_MAX : (int)left;
}

static int timed_out(const char *what)
{
    errno = ETIMEDOUT;
    return error_set("timed out %s", what);
}

/* Waits until fd is ready for events, or fails at the deadline. */
static int wait_ready(int fd, short events, uint64_t deadline_ms, const char *what)
{
    struct pollfd watched = {.fd = fd, .events = events};

    for (;;) {
        int left = remaining_ms(deadline_ms);
        if (left == 0)
            return timed_out(what);
        int ready = poll(&watched, 1, left);
        if (ready > 0)
            return 0;  /* errors and hangups show in the call that follows */
        if (ready == 0)
            return timed_out(what);
        if (errno != EINTR)
            return error_set("poll failed %s: %s", what, strerror(errno));
    }
}

static int sleep_ms(int milliseconds)
{
    if (poll(NULL, 0, milliseconds) < 0 && errno != EINTR)
        return -1;
    return 0;
}

/*
 * Connects a non-blocking socket to one address before the deadline.
 * Returns the descriptor, or -1 with errno (the message is the caller's,
 * who knows which of several addresses this was).
 */
static int connect_address(const struct sockaddr *address, socklen_t address_length,
                           uint64_t deadline_ms)
{
    int fd = socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;

    for (;;) {
        if (connect(fd, address, address_length) == 0)
            return fd;
        /* A unix socket with a full backlog says EAGAIN instead of waiting. */
        if (errno == EAGAIN && address->sa_family == AF_UNIX) {
            if (remaining_ms(deadline_ms) == 0) {
                errno = ETIMEDOUT;
                goto fail;
            }
            if (sleep_ms(BACKLOG_RETRY_MS) < 0)
                goto fail;
            continue;
        }
        if (errno == EINPROGRESS || errno == EINTR)
            break;
        goto fail;
    }

    if (wait_ready(fd, POLLOUT, deadline_ms, "connecting") < 0)
        goto fail;
    int socket_error = 0;
    socklen_t error_length = sizeof socket_error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &socket_error, &error_length) < 0)
        goto fail;
    if (socket_error != 0) {
        errno = socket_error;
        goto fail;
    }
    return fd;

fail:
    {
        int saved_errno = errno;
        close(fd);
        errno = saved_errno;
    }
    return -1;
}

/* host as the user would write it again: brackets around IPv6 literals. */
static void format_host_port(char *out, size_t size, const struct url *where)
{
    snprintf(out, size, where->host_is_ipv6 ? "[%s]:%u" : "%s:%u", where->host,
             (unsigned)where->port);
}

/* Tries each address the name resolves to, in the resolver's order. */
static int connect_tcp(const struct url *where, uint64_t deadline_ms)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *addresses = NULL;
    char service[8];
    char printable[URL_HOST_SIZE + 16];

    format_host_port(printable, sizeof printable, where);
    snprintf(service, sizeof service, "%u", (unsigned)where->port);
    int resolved = getaddrinfo(where->host, service, &hints, &addresses);
    if (resolved != 0) {
        if (resolved != EAI_SYSTEM)
            errno = EHOSTUNREACH;
        return error_set("cannot resolve %s: %s", where->host,
                         resolved == EAI_SYSTEM ? strerror(errno) : gai_strerror(resolved));
    }

    int fd = -1;
    errno = EHOSTUNREACH;
    for (struct addrinfo *address = addresses; address != NULL && fd < 0;
         address = address->ai_next) {
        fd = connect_address(address->ai_addr, address->ai_addrlen, deadline_ms);
        if (fd < 0 && errno == ETIMEDOUT)
            break;  /* the deadline is shared: nothing is left for the next one */
    }
    if (fd < 0) {
        int saved_errno = errno;
        freeaddrinfo(addresses);
        errno = saved_errno;
        return error_set("cannot connect to %s: %s", printable, strerror(errno));
    }
    freeaddrinfo(addresses);
    return fd;
}

static int connect_unix(const char *path, uint64_t deadline_ms)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};

    size_t path_length = strlen(path);
    if (path_length == 0 || path_length >= sizeof address.sun_path) {
        errno = EINVAL;
        return error_set("bad unix socket path '%s'", path);
    }
    memcpy(address.sun_path, path, path_length + 1);
    int fd = connect_address((const struct sockaddr *)&address, sizeof address, deadline_ms);
    if (fd < 0)
        return error_set("cannot connect to unix:%s: %s", path, strerror(errno));
    return fd;
}

/* The FastCGI address: "unix:/path", "host:port" or "[v6]:port". */
static int connect_fcgi(const char *address, uint64_t deadline_ms)
{
    struct url where;

    if (strncmp(address, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0)
        return connect_unix(address + strlen(UNIX_PREFIX), deadline_ms);
    if (url_parse_address(address, &where) < 0)
        return error_set("bad FastCGI address '%s' (want unix:/path or host:port)", address);
    return connect_tcp(&where, deadline_ms);
}

static int send_all(int fd, const void *data, size_t length, uint64_t deadline_ms)
{
    const uint8_t *cursor = data;

    while (length > 0) {
        /* MSG_NOSIGNAL: a peer that closes early must not kill the caller. */
        ssize_t sent = send(fd, cursor, length, MSG_NOSIGNAL);
        if (sent >= 0) {
            cursor += sent;
            length -= (size_t)sent;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return error_set("sending the request failed: %s", strerror(errno));
        if (wait_ready(fd, POLLOUT, deadline_ms, "sending the request") < 0)
            return -1;
    }
    return 0;
}

/* Appends what one read brings; 0 at end of stream, -1 on error. */
static ssize_t receive_some(int fd, struct fcgi_buffer *input, uint64_t deadline_ms)
{
    if (fcgi_buffer_reserve(input, READ_CHUNK) < 0)
        return error_set("out of memory reading the response");
    for (;;) {
        ssize_t received = recv(fd, input->data + input->length, input->capacity - input->length, 0);
        if (received >= 0) {
            input->length += (size_t)received;
            return received;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return error_set("reading the response failed: %s", strerror(errno));
        if (wait_ready(fd, POLLIN, deadline_ms, "waiting for the response") < 0)
            return -1;
    }
}

static int append_format(struct fcgi_buffer *buffer, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static int append_format(struct fcgi_buffer *buffer, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    int needed = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (needed < 0)
        return error_set("formatting the request failed");
    /* +1: vsnprintf always writes its NUL, which length then leaves out. */
    if (fcgi_buffer_reserve(buffer, (size_t)needed + 1) < 0)
        return error_set("out of memory building the request");
    va_start(args, format);
    vsnprintf((char *)buffer->data + buffer->length, (size_t)needed + 1, format, args);
    va_end(args);
    buffer->length += (size_t)needed;
    return 0;
}

static int is_token_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* CR or LF would end a header line early and let text pose as a header. */
static int has_control_character(const char *text)
{
    for (; *text != '\0'; text++) {
        unsigned char c = (unsigned char)*text;
        if ((c < ' ' && c != '\t') || c == 0x7f)
            return 1;
    }
    return 0;
}

static size_t header_name_length(const char *header)
{
    size_t length = 0;
    while (is_token_char((unsigned char)header[length]))
        length++;
    return length;
}

static const char *header_value(const char *header)
{
    const char *value = header + header_name_length(header) + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    return value;
}

static int header_is(const char *header, const char *name)
{
    size_t length = header_name_length(header);
    return strlen(name) == length && strncasecmp(header, name, length) == 0;
}

/* The value of the user's header with this name, or NULL. */
static const char *user_header(const detach_trigger_options *opts, const char *name)
{
    for (size_t i = 0; i < opts->header_count; i++)
        if (header_is(opts->headers[i], name))
            return header_value(opts->headers[i]);
    return NULL;
}

/* Refuses what would make a malformed or smuggled request. */
static int check_options(const detach_trigger_options *opts, const char *method)
{
    /* These frame the message; the user setting them would desync it. */
    static const char *const framing_headers[] = {"Content-Length", "Transfer-Encoding",
                                                  "Connection"};

    if (method[0] == '\0' || method[header_name_length(method)] != '\0')
        return INVALID("bad method '%s'", method);
    for (size_t i = 0; i < opts->header_count; i++) {
        const char *header = opts->headers[i];
        size_t name_length = header_name_length(header);
        if (name_length == 0 || header[name_length] != ':' || has_control_character(header))
            return INVALID("bad header '%s' (want 'Name: value')", header);
        for (size_t j = 0; j < sizeof framing_headers / sizeof *framing_headers; j++)
            if (header_is(header, framing_headers[j]))
                return INVALID("the %s header is set by detach-trigger itself", framing_headers[j]);
        if (opts->fcgi != NULL && header_is(header, "Proxy"))
            return INVALID("the Proxy header is never passed to FastCGI (httpoxy)");
    }
    for (size_t i = 0; i < opts->cookie_count; i++)
        if (has_control_character(opts->cookies[i]))
            return INVALID("bad cookie '%s'", opts->cookies[i]);
    if (opts->cookie_count > 0 && user_header(opts, "Cookie") != NULL)
        return INVALID("give cookies either as cookies or as a Cookie header");
    return 0;
}

static int method_expects_body(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

static int append_cookies(struct fcgi_buffer *out, const detach_trigger_options *opts)
{
    for (size_t i = 0; i < opts->cookie_count; i++)
        if (append_format(out, "%s%s", i > 0 ? "; " : "", opts->cookies[i]) < 0)
            return -1;
    return 0;
}

static int build_http_request(const struct trigger_request *request, struct fcgi_buffer *out)
{
    const detach_trigger_options *opts = request->opts;
    const struct url *url = &request->url;

    if (append_format(out, "%s %.*s HTTP/1.1\r\n", request->method, (int)url->target_length,
                      url->target) < 0)
        return -1;
    if (user_header(opts, "Host") == NULL) {
        const char *open = url->host_is_ipv6 ? "[" : "", *close = url->host_is_ipv6 ? "]" : "";
        int rc = url->port == 80
                     ? append_format(out, "Host: %s%s%s\r\n", open, url->host, close)
                     : append_format(out, "Host: %s%s%s:%u\r\n", open, url->host, close,
                                     (unsigned)url->port);
        if (rc < 0)
            return -1;
    }
    if (user_header(opts, "User-Agent") == NULL &&
        append_format(out, "User-Agent: %s\r\n", USER_AGENT) < 0)
        return -1;
    if (append_format(out, "Connection: close\r\n") < 0)
        return -1;
    if (opts->cookie_count > 0) {
        if (append_format(out, "Cookie: ") < 0 || append_cookies(out, opts) < 0 ||
            append_format(out, "\r\n") < 0)
            return -1;
    }
    if (request->body != NULL && user_header(opts, "Content-Type") == NULL &&
        append_format(out, "Content-Type: %s\r\n", FORM_CONTENT_TYPE) < 0)
        return -1;
    if ((request->body_length > 0 || method_expects_body(request->method)) &&
        append_format(out, "Content-Length: %zu\r\n", request->body_length) < 0)
        return -1;
    for (size_t i = 0; i < opts->header_count; i++)
        if (append_format(out, "%s\r\n", opts->headers[i]) < 0)
            return -1;
    if (append_format(out, "\r\n") < 0)
        return -1;
    if (request->body_length > 0 && fcgi_buffer_append(out, request->body, request->body_length) < 0)
        return error_set("out of memory building the request");
    return 0;
}

/*
 * Reads into input until the whole response head is in: its length, or -1
 * with a message.  What came after the head stays in input.
 */
static int receive_http_head(int fd, uint64_t deadline_ms, struct fcgi_buffer *input,
                             struct http_response *response)
{
    for (;;) {
        ssize_t received = receive_some(fd, input, deadline_ms);
        if (received < 0)
            return -1;
        int parsed = http_response_parse((const char *)input->data, input->length, response);
        if (parsed > 0)
            return parsed;
        if (parsed < 0) {
            errno = EPROTO;
            return error_set("malformed HTTP response");
        }
        if (received == 0) {
            errno = ECONNRESET;
            return error_set("the server closed the connection before a response");
        }
    }
}

/* Reads until the whole response head is in; the body is left unread. */
static int read_http_head(int fd, uint64_t deadline_ms, struct http_response *response)
{
    struct fcgi_buffer input = {0};
    int rc = receive_http_head(fd, deadline_ms, &input, response);

    fcgi_buffer_free(&input);
    return rc < 0 ? -1 : 0;
}

/* --- FastCGI --- */

struct param_list {
    char **items;
    size_t count, capacity;
};

static int add_param(struct param_list *list, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static int add_param(struct param_list *list, const char *format, ...)
{
    va_list args;
    char *param;

    if (list->count == list->capacity) {
        size_t capacity = list->capacity > 0 ? list->capacity * 2 : 32;
        char **grown = reallocarray(list->items, capacity, sizeof *grown);
        if (grown == NULL)
            return error_set("out of memory building FastCGI params");
        list->items = grown;
        list->capacity = capacity;
    }
    va_start(args, format);
    int rc = vasprintf(&param, format, args);
    va_end(args);
    if (rc < 0)
        return error_set("out of memory building FastCGI params");
    list->items[list->count++] = param;
    return 0;
}

static void param_list_free(struct param_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = list->capacity = 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * SCRIPT_NAME and DOCUMENT_URI carry the decoded path, as nginx's $uri
 * does; REQUEST_URI keeps it as sent.  A %00 would cut the param short.
 */
static char *decode_path(const char *path, size_t length)
{
    char *decoded = malloc(length + 1);
    size_t used = 0;

    if (decoded == NULL) {
        error_set("out of memory decoding the path");
        return NULL;
    }
    for (size_t i = 0; i < length; i++) {
        int high, low;
        if (path[i] == '%' && i + 2 < length &&
            (high = hex_value(path[i + 1])) >= 0 && (low = hex_value(path[i + 2])) >= 0) {
            char c = (char)(high * 16 + low);
            if (c == '\0') {
                free(decoded);
                errno = EINVAL;
                error_set("the path holds %%00");
                return NULL;
            }
            decoded[used++] = c;
            i += 2;
        } else {
            decoded[used++] = path[i];
        }
    }
    decoded[used] = '\0';
    return decoded;
}

/* "X-Forwarded-For: v" -> "HTTP_X_FORWARDED_FOR=v", CGI's spelling. */
static int add_header_param(struct param_list *list, const char *header)
{
    size_t name_length = header_name_length(header);
    char name[name_length + 1];

    for (size_t i = 0; i < name_length; i++) {
        char c = header[i];
        name[i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    name[name_length] = '\0';
    if (strcmp(name, "CONTENT_TYPE") == 0)
        return add_param(list, "CONTENT_TYPE=%s", header_value(header));
    return add_param(list, "HTTP_%s=%s", name, header_value(header));
}

/* HTTP_HOST as the Host header would be: the port only when it is not 80. */
static int append_host_param(struct param_list *list, const struct url *url,
                             const char *server_name)
{
    const char *open = url->host_is_ipv6 ? "[" : "", *close = url->host_is_ipv6 ? "]" : "";
    if (url->port == 0 || url->port == 80)
        return add_param(list, "HTTP_HOST=%s%s%s", open, server_name, close);
    return add_param(list, "HTTP_HOST=%s%s%s:%u", open, server_name, close, (unsigned)url->port);
}

/* The CGI/1.1 variables nginx's fastcgi_params would send. */
static int build_fcgi_params(const struct trigger_request *request, struct param_list *list)
{
    const detach_trigger_options *opts = request->opts;
    const struct url *url = &request->url;
    const char *query = "";
    size_t query_length = 0;
    char *path = NULL;

    if (url->path_length < url->target_length) {
        query = url->target + url->path_length + 1;
        query_length = url->target_length - url->path_length - 1;
    }
    path = decode_path(url->target, url->path_length);
    if (path == NULL)
        goto fail;

    const char *server_name = url->host[0] != '\0' ? url->host : "localhost";
    if (add_param(list, "GATEWAY_INTERFACE=CGI/1.1") < 0 ||
        add_param(list, "SERVER_SOFTWARE=%s", USER_AGENT) < 0 ||
        add_param(list, "SERVER_PROTOCOL=HTTP/1.1") < 0 ||
        add_param(list, "REQUEST_SCHEME=http") < 0 ||
        add_param(list, "REQUEST_METHOD=%s", request->method) < 0 ||
        add_param(list, "REQUEST_URI=%.*s", (int)url->target_length, url->target) < 0 ||
        add_param(list, "SCRIPT_NAME=%s", path) < 0 ||
        add_param(list, "DOCUMENT_URI=%s", path) < 0 ||
        add_param(list, "QUERY_STRING=%.*s", (int)query_length, query) < 0 ||
        add_param(list, "SERVER_NAME=%s", server_name) < 0 ||
        add_param(list, "SERVER_PORT=%u", (unsigned)url->port) < 0 ||
        add_param(list, "REMOTE_ADDR=127.0.0.1") < 0)
        goto fail;
    if (user_header(opts, "Host") == NULL && append_host_param(list, url, server_name) < 0)
        goto fail;
    if (user_header(opts, "User-Agent") == NULL &&
        add_param(list, "HTTP_USER_AGENT=%s", USER_AGENT) < 0)
        goto fail;
    if (request->body_length > 0) {
        if (user_header(opts, "Content-Type") == NULL &&
            add_param(list, "CONTENT_TYPE=%s", FORM_CONTENT_TYPE) < 0)
            goto fail;
        if (add_param(list, "CONTENT_LENGTH=%zu", request->body_length) < 0)
            goto fail;
    }
    if (opts->cookie_count > 0) {
        struct fcgi_buffer cookies = {0};
        int rc = append_cookies(&cookies, opts);
        if (rc == 0)
            rc = add_param(list, "HTTP_COOKIE=%.*s", (int)cookies.length,
                           cookies.data != NULL ? (const char *)cookies.data : "");
        fcgi_buffer_free(&cookies);
        if (rc < 0)
            goto fail;
    }
    for (size_t i = 0; i < opts->header_count; i++)
        if (add_header_param(list, opts->headers[i]) < 0)
            goto fail;

    free(path);
    return 0;

fail:
    free(path);
    return -1;
}

static int build_fcgi_request(const struct trigger_request *request, struct fcgi_buffer *out)
{
    struct param_list params = {0};

    if (build_fcgi_params(request, &params) < 0)
        goto fail;
    /* No keep-conn flag: the app closes the connection when it is done. */
    if (fcgi_request_build(out, TRIGGER_REQUEST_ID, 0, (const char *const *)params.items,
                           params.count, request->body, request->body_length) < 0) {
        error_set("cannot encode the FastCGI request: %s", strerror(errno));
        goto fail;
    }
    param_list_free(&params);
    return 0;

fail:
    param_list_free(&params);
    return -1;
}

static const char *protocol_status_name(uint8_t status)
{
    switch (status) {
    case FCGI_PROTOCOL_STATUS_CANT_MPX_CONN: return "cannot multiplex";
    case FCGI_PROTOCOL_STATUS_OVERLOADED: return "overloaded";
    case FCGI_PROTOCOL_STATUS_UNKNOWN_ROLE: return "unknown role";
    default: return "unknown protocol status";
    }
}

/*
 * Handles one complete record of our request.  Returns 1 once the CGI
 * head is complete, 0 to keep reading, -1 on error.
 */
static int handle_fcgi_record(const struct fcgi_header *header, const uint8_t *content,
                              struct fcgi_buffer *head, struct http_response *response)
{
    if (header->type == FCGI_TYPE_STDOUT) {
        if (header->content_length == 0)
            return 0;
        if (fcgi_buffer_append(head, content, header->content_length) < 0)
            return error_set("out of memory reading the response");
        int parsed = cgi_response_parse((const char *)head->data, head->length, response);
        if (parsed < 0) {
            errno = EPROTO;
            return error_set("malformed CGI response head from the FastCGI app");
        }
        return parsed > 0;
    }
    if (header->type == FCGI_TYPE_END_REQUEST) {
        uint32_t app_status;
        uint8_t protocol_status;
        errno = EPROTO;
        if (fcgi_end_request_decode(content, header->content_length, &app_status,
                                    &protocol_status) < 0)
            return error_set("malformed FastCGI END_REQUEST");
        if (protocol_status != FCGI_PROTOCOL_STATUS_REQUEST_COMPLETE)
            return error_set("the FastCGI app refused the request: %s",
                             protocol_status_name(protocol_status));
        return error_set("the FastCGI app ended the request %s (app status %u)",
                         head->length == 0 ? "without a response" : "inside its response head",
                         (unsigned)app_status);
    }
    return 0;  /* STDERR and anything else is not ours to show */
}

/* The records of a FastCGI answer, read as they come. */
struct record_reader {
    struct fcgi_buffer input;
    size_t offset;   /* start of the first record not yet returned */
};

/*
 * The next whole record of our request; *content stays valid until the
 * next call.  -1 with a message (closed says what the app closed early).
 */
static int next_record(int fd, uint64_t deadline_ms, struct record_reader *reader,
                       struct fcgi_header *header, const uint8_t **content, const char *closed)
{
    for (;;) {
        size_t available = reader->input.length - reader->offset;

        if (available >= FCGI_RECORD_HEADER_SIZE) {
            const uint8_t *record = reader->input.data + reader->offset;
            if (fcgi_header_decode(record, available, header) < 0) {
                errno = EPROTO;
                return error_set("malformed FastCGI record from the app");
            }
            size_t record_length =
                FCGI_RECORD_HEADER_SIZE + header->content_length + header->padding_length;
            if (available >= record_length) {
                reader->offset += record_length;
                if (header->request_id != TRIGGER_REQUEST_ID)
                    continue;   /* management records are not ours */
                *content = record + FCGI_RECORD_HEADER_SIZE;
                return 0;
            }
        }
        /* Only a partial record is left: keep it, drop what was returned. */
        fcgi_buffer_consume(&reader->input, reader->offset);
        reader->offset = 0;
        ssize_t received = receive_some(fd, &reader->input, deadline_ms);
        if (received < 0)
            return -1;
        if (received == 0) {
            errno = ECONNRESET;
            return error_set("the FastCGI app closed the connection %s", closed);
        }
    }
}

/* Reads FastCGI records until the CGI head is in or the request ends. */
static int read_fcgi_head(int fd, uint64_t deadline_ms, struct http_response *response)
{
    struct record_reader reader = { {0}, 0 };
    struct fcgi_buffer head = {0};
    int handled = 0;

    while (handled == 0) {
        struct fcgi_header header;
        const uint8_t *content;

        if (next_record(fd, deadline_ms, &reader, &header, &content, "before a response") < 0)
            handled = -1;
        else
            handled = handle_fcgi_record(&header, content, &head, response);
    }
    fcgi_buffer_free(&reader.input);
    fcgi_buffer_free(&head);
    return handled < 0 ? -1 : 0;
}

/* --- the entry point --- */

static int prepare(const char *url, const detach_trigger_options *opts,
                   struct trigger_request *request)
{
    request->opts = opts;
    request->method = opts->method != NULL ? opts->method : opts->field_count > 0 ? "POST" : "GET";
    if (check_options(opts, request->method) < 0)
        return -1;

    if (url == NULL) {
        errno = EINVAL;
        return error_set("no URL given");
    }
    /* With --fcgi a full http:// URL is taken too; its host names the server. */
    int parsed = opts->fcgi != NULL && url[0] == '/' ? url_parse_target(url, &request->url)
                                                     : url_parse(url, &request->url);
    if (parsed < 0)
        return -1;

    if (opts->field_count > 0) {
        request->body = url_form_encode(opts->fields, opts->field_count);
        if (request->body == NULL)
            return -1;
        request->body_length = strlen(request->body);
    }
    return 0;
}

int detach_trigger(const char *url, const detach_trigger_options *opts,
                   detach_trigger_result *result)
{
    static const detach_trigger_options defaults;
    detach_trigger_result ignored;
    struct trigger_request request = {0};
    struct fcgi_buffer message = {0};
    struct http_response response = {0};
    int fd = -1;

    if (opts == NULL)
        opts = &defaults;
    if (result == NULL)
        result = &ignored;
    memset(result, 0, sizeof *result);
    request.deadline_ms = now_ms() + (opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS);

    if (prepare(url, opts, &request) < 0)
        goto fail;
    if (opts->fcgi != NULL) {
        if (build_fcgi_request(&request, &message) < 0)
            goto fail;
        fd = connect_fcgi(opts->fcgi, request.deadline_ms);
    } else {
        if (build_http_request(&request, &message) < 0)
            goto fail;
        fd = connect_tcp(&request.url, request.deadline_ms);
    }
    if (fd < 0)
        goto fail;
    if (send_all(fd, message.data, message.length, request.deadline_ms) < 0)
        goto fail;

    if (!opts->no_wait) {
        int head_read = opts->fcgi != NULL ? read_fcgi_head(fd, request.deadline_ms, &response)
                                           : read_http_head(fd, request.deadline_ms, &response);
        if (head_read < 0)
            goto fail;
        result->status = response.status;
        memcpy(result->job_id, response.job_id, sizeof result->job_id);
    }

    close(fd);
    fcgi_buffer_free(&message);
    free(request.body);
    return 0;

fail:
    {
        int saved_errno = errno;
        if (fd >= 0)
            close(fd);
        fcgi_buffer_free(&message);
        free(request.body);
        errno = saved_errno;
    }
    return -1;
}

/* --- fetching a whole answer: detach-trigger --wait-done --- */

/* The body of an HTTP answer whose head is input[0, head_length). */
static int read_http_body(int fd, uint64_t deadline_ms, struct fcgi_buffer *input,
                          size_t head_length, const struct http_response *head, size_t max_body,
                          char **body, size_t *body_length)
{
    size_t have;

    for (;;) {
        const char *raw = (const char *)input->data + head_length;

        have = input->length - head_length;
        if (head->chunked) {
            char *decoded = malloc(have + 1);
            size_t decoded_length = 0;
            int done;
            if (decoded == NULL)
                return error_set("out of memory reading the response");
            done = http_chunked_decode(raw, have, decoded, &decoded_length);
            if (done < 0) {
                free(decoded);
                errno = EPROTO;
                return error_set("malformed chunked body");
            }
            if (done > 0) {
                decoded[decoded_length] = '\0';
                *body = decoded;
                *body_length = decoded_length;
                return 0;
            }
            free(decoded);
        } else if (head->content_length >= 0 && have >= (size_t)head->content_length) {
            have = (size_t)head->content_length;
            break;
        }
        if (have > max_body) {
            errno = EMSGSIZE;
            return error_set("the response is larger than %zu bytes", max_body);
        }
        ssize_t received = receive_some(fd, input, deadline_ms);
        if (received < 0)
            return -1;
        if (received == 0) {
            if (head->chunked || head->content_length >= 0) {
                errno = ECONNRESET;
                return error_set("the server closed the connection inside the response");
            }
            have = input->length - head_length;
            break;   /* no length given: the body runs to the end */
        }
    }
    if (have > max_body) {
        errno = EMSGSIZE;
        return error_set("the response is larger than %zu bytes", max_body);
    }
    *body = malloc(have + 1);
    if (*body == NULL)
        return error_set("out of memory reading the response");
    memcpy(*body, input->data + head_length, have);
    (*body)[have] = '\0';
    *body_length = have;
    return 0;
}

static int fetch_http(int fd, uint64_t deadline_ms, size_t max_body, int *status, char **body,
                      size_t *body_length)
{
    struct fcgi_buffer input = {0};
    struct http_response head = {0};
    int head_length = receive_http_head(fd, deadline_ms, &input, &head);

    if (head_length < 0)
        goto fail;
    if (read_http_body(fd, deadline_ms, &input, (size_t)head_length, &head, max_body, body,
                       body_length) < 0)
        goto fail;
    *status = head.status;
    fcgi_buffer_free(&input);
    return 0;
fail:
    fcgi_buffer_free(&input);
    return -1;
}

/* Collects the app's stdout until FCGI_END_REQUEST, then splits the CGI head off. */
static int fetch_fcgi(int fd, uint64_t deadline_ms, size_t max_body, int *status, char **body,
                      size_t *body_length)
{
    struct record_reader reader = { {0}, 0 };
    struct fcgi_buffer output = {0};
    struct http_response head = {0};
    int ended = 0, head_length;

    while (!ended) {
        struct fcgi_header header;
        const uint8_t *content;

        if (next_record(fd, deadline_ms, &reader, &header, &content,
                        "before the end of its response") < 0)
            goto fail;
        if (header.type == FCGI_TYPE_STDOUT) {
            if (output.length + header.content_length > max_body + HTTP_HEAD_MAX) {
                errno = EMSGSIZE;
                error_set("the response is larger than %zu bytes", max_body);
                goto fail;
            }
            if (fcgi_buffer_append(&output, content, header.content_length) < 0) {
                error_set("out of memory reading the response");
                goto fail;
            }
        } else if (header.type == FCGI_TYPE_END_REQUEST) {
            ended = 1;
        }
    }
    head_length = cgi_response_parse((const char *)output.data, output.length, &head);
    if (head_length <= 0) {
        errno = EPROTO;
        error_set("malformed CGI response from the FastCGI app");
        goto fail;
    }
    *body_length = output.length - (size_t)head_length;
    if (*body_length > max_body) {
        errno = EMSGSIZE;
        error_set("the response is larger than %zu bytes", max_body);
        goto fail;
    }
    *body = malloc(*body_length + 1);
    if (*body == NULL) {
        error_set("out of memory reading the response");
        goto fail;
    }
    memcpy(*body, output.data + head_length, *body_length);
    (*body)[*body_length] = '\0';
    *status = head.status;
    fcgi_buffer_free(&reader.input);
    fcgi_buffer_free(&output);
    return 0;
fail:
    fcgi_buffer_free(&reader.input);
    fcgi_buffer_free(&output);
    return -1;
}

int trigger_fetch(const char *url, const char *fcgi, unsigned timeout_ms, size_t max_body,
                  int *status, char **body, size_t *body_length)
{
    detach_trigger_options opts = {.method = "GET", .fcgi = fcgi};
    struct trigger_request request = {0};
    struct fcgi_buffer message = {0};
    int fd = -1, rc = -1;

    *body = NULL;
    *body_length = 0;
    request.deadline_ms = now_ms() + (timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
    if (prepare(url, &opts, &request) < 0)
        goto out;
    if (fcgi != NULL) {
        if (build_fcgi_request(&request, &message) < 0)
            goto out;
        fd = connect_fcgi(fcgi, request.deadline_ms);
    } else {
        if (build_http_request(&request, &message) < 0)
            goto out;
        fd = connect_tcp(&request.url, request.deadline_ms);
    }
    if (fd < 0 || send_all(fd, message.data, message.length, request.deadline_ms) < 0)
        goto out;
    rc = fcgi != NULL ? fetch_fcgi(fd, request.deadline_ms, max_body, status, body, body_length)
                      : fetch_http(fd, request.deadline_ms, max_body, status, body, body_length);
out:
    {
        int saved_errno = errno;
        if (fd >= 0)
            close(fd);
        fcgi_buffer_free(&message);
        free(request.body);
        errno = saved_errno;
    }
    return rc;
}
