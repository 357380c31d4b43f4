/*
 * trigger.c - detach_trigger(): the client side of a trigger, the C
 * counterpart of PHP's old triggerRequest($url, $post_data, $cookie).
 *
 * Two transports.  HTTP(S) is libcurl's: https://, proxies from the
 * environment, redirects and basic auth come with it, and its URL API
 * parses every URL here.  FastCGI straight to detachd is ours: the params
 * nginx's fastcgi_params would send, one request per connection, the
 * answer's CGI head read from the app's stdout records.
 *
 * A trigger waits for the head of the answer only: the body of a trigger's
 * answer is empty, and the job id is in a header.  Every wait is bounded
 * by one overall deadline; the FastCGI socket is non-blocking throughout
 * so that no single call can outlive it.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/error.h"
#include "client/cgi_head.h"
#include "client/job_status.h"
#include "detach_trigger.h"
#include "fcgi/fcgi_record.h"

#define DEFAULT_TIMEOUT_MS 10000u
#define USER_AGENT "detach-trigger/" DETACH_VERSION
#define FORM_CONTENT_TYPE "application/x-www-form-urlencoded"
#define UNIX_PREFIX "unix:"
/* One request per connection, so any id would do; 1 is what servers send. */
#define TRIGGER_REQUEST_ID 1
#define READ_CHUNK 16384
/* How long to back off when a unix socket's backlog is full. */
#define BACKLOG_RETRY_MS 10
#define MAX_REDIRECTS 10

/* Sets errno for callers that check it, and records the message. */
#define INVALID(...) (errno = EINVAL, dt_error_set(__VA_ARGS__))

_Static_assert(sizeof(((detach_trigger_result *)0)->job_id) == CGI_JOB_ID_SIZE,
               "the parsed job id must fit the result exactly");

/*
 * The request URL's parts, from libcurl's URL parser.  For FastCGI, a bare
 * "/path?query" is resolved against http://localhost/ and keeps port 0.
 */
struct target {
    char *scheme;     /* "http" or "https" */
    char *host;       /* SERVER_NAME: IPv6 without brackets */
    int host_is_ipv6;
    unsigned port;    /* 0: a bare path gave none */
    char *path;       /* as given: no dot segments removed */
    char *query;      /* NULL: none */
};

/* Everything detach_trigger() works on, gathered once up front. */
struct trigger_request {
    const detach_trigger_options *opts;
    const char *method;
    const char *url;
    struct target target;   /* FastCGI only */
    char *body;             /* form-encoded fields, or NULL */
    size_t body_length;
    uint64_t deadline_ms;
};

/* --- time and sockets (FastCGI) --- */

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
    return dt_error_set("timed out %s", what);
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
            return dt_error_set("poll failed %s: %s", what, strerror(errno));
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

/* Tries each address the name resolves to, in the resolver's order. */
static int connect_tcp(const struct fcgi_address *where, uint64_t deadline_ms)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *addresses = NULL;
    char service[8];

    snprintf(service, sizeof service, "%u", where->port);
    int resolved = getaddrinfo(where->host, service, &hints, &addresses);
    if (resolved != 0) {
        if (resolved != EAI_SYSTEM)
            errno = EHOSTUNREACH;
        return dt_error_set("cannot resolve %s: %s", where->host,
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
        return dt_error_set(where->is_ipv6 ? "cannot connect to [%s]:%u: %s"
                                        : "cannot connect to %s:%u: %s",
                         where->host, where->port, strerror(errno));
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
        return dt_error_set("bad unix socket path '%s'", path);
    }
    memcpy(address.sun_path, path, path_length + 1);
    int fd = connect_address((const struct sockaddr *)&address, sizeof address, deadline_ms);
    if (fd < 0)
        return dt_error_set("cannot connect to unix:%s: %s", path, strerror(errno));
    return fd;
}

/* The FastCGI address: "unix:/path", "host:port" or "[v6]:port". */
static int connect_fcgi(const char *address, uint64_t deadline_ms)
{
    struct fcgi_address where;

    if (strncmp(address, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0)
        return connect_unix(address + strlen(UNIX_PREFIX), deadline_ms);
    if (dt_fcgi_address_parse(address, &where) < 0)
        return dt_error_set("bad FastCGI address '%s' (want unix:/path or host:port)", address);
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
            return dt_error_set("sending the request failed: %s", strerror(errno));
        if (wait_ready(fd, POLLOUT, deadline_ms, "sending the request") < 0)
            return -1;
    }
    return 0;
}

/* Appends what one read brings; 0 at end of stream, -1 on error. */
static ssize_t receive_some(int fd, struct fcgi_buffer *input, uint64_t deadline_ms)
{
    if (dt_fcgi_buffer_reserve(input, READ_CHUNK) < 0)
        return dt_error_set("out of memory reading the response");
    for (;;) {
        ssize_t received = recv(fd, input->data + input->length, input->capacity - input->length, 0);
        if (received >= 0) {
            input->length += (size_t)received;
            return received;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return dt_error_set("reading the response failed: %s", strerror(errno));
        if (wait_ready(fd, POLLIN, deadline_ms, "waiting for the response") < 0)
            return -1;
    }
}

/* --- what the user gives --- */

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
            return dt_error_set("out of memory building FastCGI params");
        list->items = grown;
        list->capacity = capacity;
    }
    va_start(args, format);
    int rc = vasprintf(&param, format, args);
    va_end(args);
    if (rc < 0)
        return dt_error_set("out of memory building FastCGI params");
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
        dt_error_set("out of memory decoding the path");
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
                dt_error_set("the path holds %%00");
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

/* HTTP_HOST as the Host header would be: the port only when it is not
 * the scheme's own. */
static int append_host_param(struct param_list *list, const struct target *target,
                             const char *server_name)
{
    const char *open = target->host_is_ipv6 ? "[" : "", *close = target->host_is_ipv6 ? "]" : "";
    unsigned default_port = strcmp(target->scheme, "https") == 0 ? 443 : 80;

    if (target->port == 0 || target->port == default_port)
        return add_param(list, "HTTP_HOST=%s%s%s", open, server_name, close);
    return add_param(list, "HTTP_HOST=%s%s%s:%u", open, server_name, close, target->port);
}

/* "name=value; name2=value2", malloc'd, or NULL with a message. */
static char *joined_cookies(const detach_trigger_options *opts)
{
    size_t length = 1;
    char *joined, *cursor;

    for (size_t i = 0; i < opts->cookie_count; i++)
        length += strlen(opts->cookies[i]) + 2;
    joined = malloc(length);
    if (joined == NULL) {
        dt_error_set("out of memory joining the cookies");
        return NULL;
    }
    cursor = joined;
    for (size_t i = 0; i < opts->cookie_count; i++)
        cursor += sprintf(cursor, "%s%s", i > 0 ? "; " : "", opts->cookies[i]);
    *cursor = '\0';
    return joined;
}

/* The CGI/1.1 variables nginx's fastcgi_params would send. */
static int build_fcgi_params(const struct trigger_request *request, struct param_list *list)
{
    const detach_trigger_options *opts = request->opts;
    const struct target *target = &request->target;
    const char *query = target->query != NULL ? target->query : "";
    char *path = NULL;

    path = decode_path(target->path, strlen(target->path));
    if (path == NULL)
        goto fail;

    const char *server_name = target->host[0] != '\0' ? target->host : "localhost";
    if (add_param(list, "GATEWAY_INTERFACE=CGI/1.1") < 0 ||
        add_param(list, "SERVER_SOFTWARE=%s", USER_AGENT) < 0 ||
        add_param(list, "SERVER_PROTOCOL=HTTP/1.1") < 0 ||
        add_param(list, "REQUEST_SCHEME=%s", target->scheme) < 0 ||
        add_param(list, "REQUEST_METHOD=%s", request->method) < 0 ||
        add_param(list, "REQUEST_URI=%s%s%s", target->path, target->query != NULL ? "?" : "",
                  query) < 0 ||
        add_param(list, "SCRIPT_NAME=%s", path) < 0 ||
        add_param(list, "DOCUMENT_URI=%s", path) < 0 ||
        add_param(list, "QUERY_STRING=%s", query) < 0 ||
        add_param(list, "SERVER_NAME=%s", server_name) < 0 ||
        add_param(list, "SERVER_PORT=%u", target->port) < 0 ||
        add_param(list, "REMOTE_ADDR=127.0.0.1") < 0)
        goto fail;
    if (strcmp(target->scheme, "https") == 0 && add_param(list, "HTTPS=on") < 0)
        goto fail;
    if (user_header(opts, "Host") == NULL && append_host_param(list, target, server_name) < 0)
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
        char *cookies = joined_cookies(opts);
        int rc = cookies != NULL ? add_param(list, "HTTP_COOKIE=%s", cookies) : -1;
        free(cookies);
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
    if (dt_fcgi_request_build(out, TRIGGER_REQUEST_ID, 0, (const char *const *)params.items,
                           params.count, request->body, request->body_length) < 0) {
        dt_error_set("cannot encode the FastCGI request: %s", strerror(errno));
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
                              struct fcgi_buffer *head, struct cgi_head *response)
{
    if (header->type == FCGI_TYPE_STDOUT) {
        if (header->content_length == 0)
            return 0;
        if (dt_fcgi_buffer_append(head, content, header->content_length) < 0)
            return dt_error_set("out of memory reading the response");
        int parsed = dt_cgi_response_parse((const char *)head->data, head->length, response);
        if (parsed < 0) {
            errno = EPROTO;
            return dt_error_set("malformed CGI response head from the FastCGI app");
        }
        return parsed > 0;
    }
    if (header->type == FCGI_TYPE_END_REQUEST) {
        uint32_t app_status;
        uint8_t protocol_status;
        errno = EPROTO;
        if (dt_fcgi_end_request_decode(content, header->content_length, &app_status,
                                    &protocol_status) < 0)
            return dt_error_set("malformed FastCGI END_REQUEST");
        if (protocol_status != FCGI_PROTOCOL_STATUS_REQUEST_COMPLETE)
            return dt_error_set("the FastCGI app refused the request: %s",
                             protocol_status_name(protocol_status));
        return dt_error_set("the FastCGI app ended the request %s (app status %u)",
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
            if (dt_fcgi_header_decode(record, available, header) < 0) {
                errno = EPROTO;
                return dt_error_set("malformed FastCGI record from the app");
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
        dt_fcgi_buffer_consume(&reader->input, reader->offset);
        reader->offset = 0;
        ssize_t received = receive_some(fd, &reader->input, deadline_ms);
        if (received < 0)
            return -1;
        if (received == 0) {
            errno = ECONNRESET;
            return dt_error_set("the FastCGI app closed the connection %s", closed);
        }
    }
}

/* Reads FastCGI records until the CGI head is in or the request ends. */
static int read_fcgi_head(int fd, uint64_t deadline_ms, struct cgi_head *response)
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
    dt_fcgi_buffer_free(&reader.input);
    dt_fcgi_buffer_free(&head);
    return handled < 0 ? -1 : 0;
}

/* Collects the app's stdout until FCGI_END_REQUEST, then splits the CGI head off. */
static int fetch_fcgi(int fd, uint64_t deadline_ms, size_t max_body, int *status, char **body,
                      size_t *body_length)
{
    struct record_reader reader = { {0}, 0 };
    struct fcgi_buffer output = {0};
    struct cgi_head head = {0};
    int ended = 0, head_length;

    while (!ended) {
        struct fcgi_header header;
        const uint8_t *content;

        if (next_record(fd, deadline_ms, &reader, &header, &content,
                        "before the end of its response") < 0)
            goto fail;
        if (header.type == FCGI_TYPE_STDOUT) {
            if (output.length + header.content_length > max_body + CGI_HEAD_MAX) {
                errno = EMSGSIZE;
                dt_error_set("the response is larger than %zu bytes", max_body);
                goto fail;
            }
            if (dt_fcgi_buffer_append(&output, content, header.content_length) < 0) {
                dt_error_set("out of memory reading the response");
                goto fail;
            }
        } else if (header.type == FCGI_TYPE_END_REQUEST) {
            ended = 1;
        }
    }
    head_length = dt_cgi_response_parse((const char *)output.data, output.length, &head);
    if (head_length <= 0) {
        errno = EPROTO;
        dt_error_set("malformed CGI response from the FastCGI app");
        goto fail;
    }
    *body_length = output.length - (size_t)head_length;
    if (*body_length > max_body) {
        errno = EMSGSIZE;
        dt_error_set("the response is larger than %zu bytes", max_body);
        goto fail;
    }
    *body = malloc(*body_length + 1);
    if (*body == NULL) {
        dt_error_set("out of memory reading the response");
        goto fail;
    }
    memcpy(*body, output.data + head_length, *body_length);
    (*body)[*body_length] = '\0';
    *status = head.status;
    dt_fcgi_buffer_free(&reader.input);
    dt_fcgi_buffer_free(&output);
    return 0;
fail:
    dt_fcgi_buffer_free(&reader.input);
    dt_fcgi_buffer_free(&output);
    return -1;
}

/* --- URLs and the form body (libcurl's parser and escaping) --- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int curl_ready(void)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_result != CURLE_OK) {
        errno = ENOMEM;
        return dt_error_set("cannot initialise libcurl: %s", curl_easy_strerror(curl_init_result));
    }
    return 0;
}

static void target_free(struct target *target)
{
    curl_free(target->scheme);
    curl_free(target->host);
    curl_free(target->path);
    curl_free(target->query);
    memset(target, 0, sizeof *target);
}

/* A part of a parsed URL, or NULL when absent. */
static char *url_part(CURLU *url, CURLUPart part, unsigned flags)
{
    char *value = NULL;

    if (curl_url_get(url, part, &value, flags) != CURLUE_OK)
        return NULL;
    return value;
}

/*
 * Parses url: a full http(s):// URL, or with path_only a "/path?query"
 * alone (as --fcgi takes it).  Dot segments are kept as given (the server
 * sees the path the user typed), as are percent escapes.
 */
static int target_parse(const char *text, int path_only, struct target *out)
{
    CURLU *url = curl_url();
    CURLUcode rc;
    char *port;

    memset(out, 0, sizeof *out);
    if (url == NULL)
        return dt_error_set("out of memory parsing the URL");
    if (path_only) {
        /* Resolved against a base: the path and query are all it gives. */
        rc = curl_url_set(url, CURLUPART_URL, "http://localhost/", 0);
        if (rc == CURLUE_OK)
            rc = curl_url_set(url, CURLUPART_URL, text, CURLU_PATH_AS_IS);
    } else {
        rc = curl_url_set(url, CURLUPART_URL, text, CURLU_PATH_AS_IS);
    }
    if (rc != CURLUE_OK) {
        curl_url_cleanup(url);
        return INVALID("bad URL '%s': %s", text, curl_url_strerror(rc));
    }
    out->scheme = url_part(url, CURLUPART_SCHEME, 0);
    out->host = url_part(url, CURLUPART_HOST, 0);
    out->path = url_part(url, CURLUPART_PATH, 0);
    out->query = url_part(url, CURLUPART_QUERY, 0);
    port = path_only ? NULL : url_part(url, CURLUPART_PORT, CURLU_DEFAULT_PORT);
    curl_url_cleanup(url);
    if (port != NULL) {
        out->port = (unsigned)strtoul(port, NULL, 10);
        curl_free(port);
    }
    if (out->scheme == NULL || out->host == NULL || out->path == NULL) {
        target_free(out);
        return dt_error_set("out of memory parsing the URL");
    }
    if (strcmp(out->scheme, "http") != 0 && strcmp(out->scheme, "https") != 0) {
        target_free(out);
        return INVALID("bad URL '%s': only http:// and https:// are spoken", text);
    }
    if (path_only) {
        /* No host given: SERVER_NAME is "localhost", HTTP_HOST too. */
        out->host[0] = '\0';
    } else if (out->host[0] == '[') {
        /* curl keeps the brackets; SERVER_NAME has none. */
        size_t length = strlen(out->host);
        memmove(out->host, out->host + 1, length - 2);
        out->host[length - 2] = '\0';
        out->host_is_ipv6 = 1;
    }
    return 0;
}

char *detach_trigger_url_with_path(const char *trigger_url, const char *path)
{
    CURLU *url;
    CURLUcode rc;
    char *joined = NULL, *copy;

    if (curl_ready() < 0)
        return NULL;
    url = curl_url();
    if (url == NULL) {
        dt_error_set("out of memory building the status URL");
        return NULL;
    }
    rc = curl_url_set(url, CURLUPART_URL, trigger_url, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_set(url, CURLUPART_PATH, path, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_set(url, CURLUPART_QUERY, NULL, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_set(url, CURLUPART_FRAGMENT, NULL, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(url, CURLUPART_URL, &joined, 0);
    curl_url_cleanup(url);
    if (rc != CURLUE_OK) {
        errno = EINVAL;
        dt_error_set("bad URL '%s': %s", trigger_url, curl_url_strerror(rc));
        return NULL;
    }
    copy = strdup(joined);
    curl_free(joined);
    if (copy == NULL)
        dt_error_set("out of memory building the status URL");
    return copy;
}

/*
 * application/x-www-form-urlencoded body of "name=value" fields (a field
 * with no '=' is a name with an empty value), joined with '&'.  malloc'd,
 * or NULL with a message.
 */
static char *form_encode(CURL *escaper, const char *const *fields, size_t count)
{
    size_t length = 1, used = 0;
    char *body = malloc(length);

    if (body == NULL)
        goto oom;
    body[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        const char *equals = strchr(fields[i], '=');
        size_t name_length = equals != NULL ? (size_t)(equals - fields[i]) : strlen(fields[i]);
        char *name = curl_easy_escape(escaper, fields[i], (int)name_length);
        char *value = curl_easy_escape(escaper, equals != NULL ? equals + 1 : "", 0);
        char *grown;

        if (name == NULL || value == NULL) {
            curl_free(name);
            curl_free(value);
            goto oom;
        }
        length += strlen(name) + strlen(value) + 2;
        grown = realloc(body, length);
        if (grown == NULL) {
            curl_free(name);
            curl_free(value);
            goto oom;
        }
        body = grown;
        used += (size_t)sprintf(body + used, "%s%s=%s", i > 0 ? "&" : "", name, value);
        curl_free(name);
        curl_free(value);
    }
    return body;
oom:
    free(body);
    dt_error_set("out of memory encoding the form");
    return NULL;
}

/* --- HTTP(S) with libcurl --- */

/* What one transfer gathers. */
struct transfer {
    int want_body;           /* 0: stop at the first byte of the final body */
    int no_wait;             /* stop once the request is sent */
    size_t body_to_send;     /* bytes of request body still to go out */
    int request_sent;
    int stopped_on_purpose;
    size_t max_body;
    char *body;
    size_t body_length;
    int too_large;
};

static size_t on_body(char *data, size_t size, size_t count, void *context)
{
    struct transfer *transfer = context;
    size_t length = size * count;
    char *grown;

    if (!transfer->want_body) {
        /* The head is in; a trigger reads no further. */
        transfer->stopped_on_purpose = 1;
        return 0;
    }
    if (transfer->body_length + length > transfer->max_body) {
        transfer->too_large = 1;
        return 0;
    }
    grown = realloc(transfer->body, transfer->body_length + length + 1);
    if (grown == NULL)
        return 0;
    transfer->body = grown;
    memcpy(transfer->body + transfer->body_length, data, length);
    transfer->body_length += length;
    transfer->body[transfer->body_length] = '\0';
    return length;
}

/* --no-wait: libcurl reports what it sent; once the whole request is
 * out, the progress callback ends the transfer. */
static int on_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *context)
{
    struct transfer *transfer = context;

    (void)curl;
    (void)data;
    if (type == CURLINFO_HEADER_OUT && transfer->body_to_send == 0)
        transfer->request_sent = 1;
    if (type == CURLINFO_DATA_OUT) {
        transfer->body_to_send -= size < transfer->body_to_send ? size : transfer->body_to_send;
        if (transfer->body_to_send == 0)
            transfer->request_sent = 1;
    }
    return 0;
}

static int on_progress(void *context, curl_off_t download_total, curl_off_t downloaded,
                       curl_off_t upload_total, curl_off_t uploaded)
{
    struct transfer *transfer = context;

    (void)download_total;
    (void)downloaded;
    (void)upload_total;
    (void)uploaded;
    if (transfer->no_wait && transfer->request_sent) {
        transfer->stopped_on_purpose = 1;
        return 1;
    }
    return 0;
}

/* errno for a libcurl failure, so callers can tell a timeout apart. */
static int curl_errno(CURLcode code)
{
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT: return ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return EHOSTUNREACH;
    case CURLE_COULDNT_CONNECT: return ECONNREFUSED;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return EINVAL;
    case CURLE_OUT_OF_MEMORY: return ENOMEM;
    default: return EPROTO;
    }
}

static int method_expects_body(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

#define SET(option, value)                                                   \
    do {                                                                     \
        if ((code = curl_easy_setopt(curl, option, value)) != CURLE_OK)      \
            goto curl_failed;                                                \
    } while (0)

/*
 * One HTTP(S) request: the answer's status and X-Detach-Job into *result,
 * and with transfer->want_body its body into transfer.
 */
static int http_exchange(const struct trigger_request *request, struct transfer *transfer,
                         detach_trigger_result *result)
{
    const detach_trigger_options *opts = request->opts;
    struct curl_slist *headers = NULL, *grown;
    struct curl_header *job_header = NULL;
    char errors[CURL_ERROR_SIZE] = "";
    char *cookies = NULL;
    CURLcode code = CURLE_OK;
    long status = 0;
    int left = remaining_ms(request->deadline_ms), rc = -1;
    CURL *curl = curl_easy_init();

    if (curl == NULL)
        return dt_error_set("cannot start a libcurl transfer");
    SET(CURLOPT_ERRORBUFFER, errors);
    SET(CURLOPT_URL, request->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    SET(CURLOPT_NOSIGNAL, 1L);   /* callers may be threads: no SIGALRM */
    SET(CURLOPT_TIMEOUT_MS, (long)(left > 0 ? left : 1));
    if (user_header(opts, "User-Agent") == NULL)
        SET(CURLOPT_USERAGENT, USER_AGENT);
    /* What our own request framing says, and no 100-continue wait. */
    if ((grown = curl_slist_append(headers, "Expect:")) == NULL)
        goto out_of_memory;
    headers = grown;
    for (size_t i = 0; i < opts->header_count; i++) {
        if ((grown = curl_slist_append(headers, opts->headers[i])) == NULL)
            goto out_of_memory;
        headers = grown;
    }
    SET(CURLOPT_HTTPHEADER, headers);
    if (opts->cookie_count > 0) {
        cookies = joined_cookies(opts);
        if (cookies == NULL)
            goto out;
        SET(CURLOPT_COOKIE, cookies);
    }
    if (request->body != NULL || method_expects_body(request->method)) {
        SET(CURLOPT_POSTFIELDS, request->body != NULL ? request->body : "");
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->body_length);
        if (strcmp(request->method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, request->method);
    } else if (strcmp(request->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(request->method, "GET") != 0) {
        SET(CURLOPT_CUSTOMREQUEST, request->method);
    }
    if (opts->user != NULL) {
        SET(CURLOPT_USERPWD, opts->user);
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    }
    if (opts->ca_file != NULL)
        SET(CURLOPT_CAINFO, opts->ca_file);
    if (opts->insecure) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, transfer);
    if (transfer->no_wait) {
        transfer->body_to_send = request->body_length;
        SET(CURLOPT_DEBUGFUNCTION, on_debug);
        SET(CURLOPT_DEBUGDATA, transfer);
        SET(CURLOPT_VERBOSE, 1L);
        SET(CURLOPT_XFERINFOFUNCTION, on_progress);
        SET(CURLOPT_XFERINFODATA, transfer);
        SET(CURLOPT_NOPROGRESS, 0L);
    }

    code = curl_easy_perform(curl);
    if (code != CURLE_OK && !transfer->stopped_on_purpose) {
        if (transfer->too_large) {
            errno = EMSGSIZE;
            dt_error_set("the response is larger than %zu bytes", transfer->max_body);
            goto out;
        }
        goto curl_failed;
    }
    if (transfer->no_wait) {
        rc = 0;
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 100 || status > 599) {
        errno = EPROTO;
        dt_error_set("%s: no HTTP status in the answer", request->url);
        goto out;
    }
    result->status = (int)status;
    /* The final answer's (request -1), after any redirect. */
    if (curl_easy_header(curl, "X-Detach-Job", 0, CURLH_HEADER, -1, &job_header) == CURLHE_OK) {
        const char *id = job_header->value;
        size_t length = strlen(id);
        int visible = length < sizeof result->job_id;
        for (size_t i = 0; visible && i < length; i++)
            visible = (unsigned char)id[i] > ' ' && (unsigned char)id[i] < 0x7f;
        if (!visible) {
            errno = EPROTO;
            dt_error_set("%s: a malformed X-Detach-Job header", request->url);
            goto out;
        }
        memcpy(result->job_id, id, length + 1);
    }
    rc = 0;
    goto out;

curl_failed:
    errno = curl_errno(code);
    dt_error_set("%s: %s", request->url, errors[0] ? errors : curl_easy_strerror(code));
    goto out;
out_of_memory:
    errno = ENOMEM;
    dt_error_set("out of memory building the request");
out:
    {
        int saved_errno = errno;
        curl_easy_cleanup(curl);
        curl_slist_free_all(headers);
        free(cookies);
        errno = saved_errno;
    }
    return rc;
}

#undef SET
/* --- the entry points --- */

static int prepare(const char *url, const detach_trigger_options *opts,
                   struct trigger_request *request)
{
    request->opts = opts;
    request->url = url;
    request->method = opts->method != NULL ? opts->method : opts->field_count > 0 ? "POST" : "GET";
    if (check_options(opts, request->method) < 0)
        return -1;
    if (url == NULL) {
        errno = EINVAL;
        return dt_error_set("no URL given");
    }
    if (curl_ready() < 0)
        return -1;
    /* Checked here for both transports, so a bad URL is a usage error
     * before anything is sent; with --fcgi a full URL is taken too, its
     * host naming the server. */
    if (target_parse(url, opts->fcgi != NULL && url[0] == '/', &request->target) < 0)
        return -1;
    if (opts->field_count > 0) {
        CURL *escaper = curl_easy_init();
        if (escaper == NULL)
            return dt_error_set("cannot start a libcurl transfer");
        request->body = form_encode(escaper, opts->fields, opts->field_count);
        curl_easy_cleanup(escaper);
        if (request->body == NULL)
            return -1;
        request->body_length = strlen(request->body);
    }
    return 0;
}

static void release(struct trigger_request *request)
{
    int saved_errno = errno;

    target_free(&request->target);
    free(request->body);
    request->body = NULL;
    errno = saved_errno;
}

/* Sends the request over FastCGI; the connected socket, or -1. */
static int fcgi_send(const struct trigger_request *request)
{
    struct fcgi_buffer message = {0};
    int fd = -1;

    if (build_fcgi_request(request, &message) < 0)
        goto fail;
    fd = connect_fcgi(request->opts->fcgi, request->deadline_ms);
    if (fd < 0)
        goto fail;
    if (send_all(fd, message.data, message.length, request->deadline_ms) < 0)
        goto fail;
    dt_fcgi_buffer_free(&message);
    return fd;
fail:
    {
        int saved_errno = errno;
        if (fd >= 0)
            close(fd);
        dt_fcgi_buffer_free(&message);
        errno = saved_errno;
    }
    return -1;
}

void detach_trigger_options_init_sized(detach_trigger_options *options, size_t size)
{
    if (options == NULL || size < sizeof(options->size))
        return;
    memset(options, 0, size);
    options->size = size;
}

/* The caller's options in our layout: only the fields inside given->size
 * are the caller's (an older program knows fewer), the rest are 0, every
 * field's default.  NULL is all defaults. */
static int resolve_options(const detach_trigger_options *given, detach_trigger_options *options)
{
    memset(options, 0, sizeof *options);
    options->size = sizeof *options;
    if (given == NULL)
        return 0;
    if (given->size < sizeof(given->size)) {
        errno = EINVAL;
        return dt_error_set("detach_trigger_options.size is %zu: start from "
                            "detach_trigger_options_init()", given->size);
    }
    memcpy(options, given, given->size < sizeof *options ? given->size : sizeof *options);
    options->size = sizeof *options;
    return 0;
}

int detach_trigger(const char *url, const detach_trigger_options *given,
                   detach_trigger_result *result)
{
    detach_trigger_options resolved;
    const detach_trigger_options *opts = &resolved;
    detach_trigger_result ignored;
    struct trigger_request request = {0};
    int rc = -1;

    if (resolve_options(given, &resolved) < 0)
        return -1;
    if (result == NULL)
        result = &ignored;
    memset(result, 0, sizeof *result);
    request.deadline_ms = now_ms() + (opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS);
    if (prepare(url, opts, &request) < 0)
        goto out;
    if (opts->fcgi != NULL) {
        struct cgi_head head = {0};
        int fd = fcgi_send(&request);
        if (fd < 0)
            goto out;
        if (!opts->no_wait) {
            if (read_fcgi_head(fd, request.deadline_ms, &head) < 0) {
                int saved_errno = errno;
                close(fd);
                errno = saved_errno;
                goto out;
            }
            result->status = head.status;
            memcpy(result->job_id, head.job_id, sizeof result->job_id);
        }
        close(fd);
        rc = 0;
    } else {
        struct transfer transfer = {.no_wait = opts->no_wait};
        rc = http_exchange(&request, &transfer, result);
    }
out:
    release(&request);
    return rc;
}

/*
 * GETs url and reads the whole answer: an http(s):// URL with libcurl (with
 * like's user, ca_file and insecure), or, when like->fcgi is set and url is
 * a "/path?query", over FastCGI.  At most timeout_ms in all (0: 10 s) and
 * max_body bytes of body.  0 with *status and *body (malloc'd,
 * NUL-terminated, *body_length bytes before the NUL); -1 with errno
 * (ETIMEDOUT for a timeout) and a message in detach_last_error().
 */
static int trigger_fetch(const char *url, const detach_trigger_options *like,
                         unsigned timeout_ms, size_t max_body, int *status, char **body, size_t *body_length)
{
    detach_trigger_options opts = {.size = sizeof opts, .method = "GET", .user = like->user,
                                   .ca_file = like->ca_file, .insecure = like->insecure};
    struct trigger_request request = {0};
    int rc = -1;

    *body = NULL;
    *body_length = 0;
    /* Over FastCGI only a bare path: an http(s):// status URL is HTTP's. */
    if (like->fcgi != NULL && url != NULL && url[0] == '/')
        opts.fcgi = like->fcgi;
    request.deadline_ms = now_ms() + (timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
    if (prepare(url, &opts, &request) < 0)
        goto out;
    if (opts.fcgi != NULL) {
        int fd = fcgi_send(&request);
        if (fd < 0)
            goto out;
        rc = fetch_fcgi(fd, request.deadline_ms, max_body, status, body, body_length);
        {
            int saved_errno = errno;
            close(fd);
            errno = saved_errno;
        }
    } else {
        struct transfer transfer = {.want_body = 1, .max_body = max_body};
        detach_trigger_result result = {0};
        rc = http_exchange(&request, &transfer, &result);
        if (rc == 0) {
            *status = result.status;
            *body = transfer.body != NULL ? transfer.body : strdup("");
            *body_length = transfer.body_length;
            if (*body == NULL) {
                rc = dt_error_set("out of memory reading the response");
            }
        } else {
            free(transfer.body);
        }
    }
out:
    release(&request);
    return rc;
}

/* A job's status object is a few hundred bytes; this bounds a wrong URL. */
#define JOB_STATUS_BODY_MAX 65536

int detach_trigger_job_status(const char *url, const detach_trigger_options *given,
                              unsigned timeout_ms, int *http_status, detach_job_status *job)
{
    detach_trigger_options opts;
    char *body = NULL;
    size_t body_length = 0;
    int rc = 0;

    if (resolve_options(given, &opts) < 0)
        return -1;
    if (trigger_fetch(url, &opts, timeout_ms, JOB_STATUS_BODY_MAX, http_status, &body,
                      &body_length) < 0)
        return -1;   /* errno and the message set */
    if (*http_status == 200 && dt_job_status_parse(body, body_length, job) < 0) {
        errno = EPROTO;
        rc = -1;
    }
    free(body);
    return rc;
}
