/*
 * loadgen.c - a small HTTP/1.1 keep-alive load client for what wrk cannot
 * do: an exact request count, a steady rate, latencies split by status,
 * and the X-Detach-Job id of every 200.
 *
 *     loadgen [-c CONNS] [-n COUNT | -d SECONDS] [-r RATE] [-t TIMEOUT]
 *             [-i IDFILE] [-o JSONFILE] http://127.0.0.1:PORT/PATH
 *
 *   -c  connections, each with one request in flight (default 32)
 *   -n  send exactly COUNT requests, then wait for their answers
 *   -d  send for SECONDS (default 10), then wait for the answers in flight
 *   -r  at most RATE requests per second in all (default: as fast as answered)
 *   -t  seconds a request may take before it counts as a timeout (10)
 *   -i  append the X-Detach-Job id of every 2xx answer to IDFILE, one a line
 *   -o  write the JSON summary there instead of stdout
 *
 * One thread, epoll, non-blocking sockets; IPv4 literal hosts only (the
 * benchmarks only talk to loopback).  Summary: requests sent and answered,
 * counts per status, errors (connect, read, timeout), the latency
 * percentiles (microseconds) of all answers, of 2xx and of the others, and
 * how many 2xx came before the first non-2xx (a queue's room).  Every loop
 * is bounded: by COUNT or SECONDS, then by TIMEOUT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFFER_SIZE 65536
#define MAX_CONNECTIONS 4096

enum state { CLOSED, CONNECTING, SENDING, READING, IDLE };

struct connection {
    int fd;
    enum state state;
    size_t sent;
    char buffer[BUFFER_SIZE];
    size_t used;
    uint64_t started_ns;
    int index;
};

struct samples {
    uint32_t *values;
    size_t count, capacity;
};

static char request_text[4096];
static size_t request_length;
static struct sockaddr_in target;
static int epoll_fd;
static FILE *id_file;

static uint64_t status_counts[600];
static uint64_t errors_connect, errors_read, errors_timeout, errors_parse;
static uint64_t issued, answered;
static uint64_t ok_before_first_other;
static double first_other_s = -1;
static struct samples all_latency, ok_latency, other_latency;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void add_sample(struct samples *samples, uint32_t value)
{
    if (samples->count == samples->capacity) {
        size_t capacity = samples->capacity ? samples->capacity * 2 : 65536;
        uint32_t *grown = realloc(samples->values, capacity * sizeof(*grown));
        if (!grown)
            return;   /* out of memory: this sample is lost, the run goes on */
        samples->values = grown;
        samples->capacity = capacity;
    }
    samples->values[samples->count++] = value;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static uint32_t percentile(const struct samples *samples, double p)
{
    size_t index;

    if (!samples->count)
        return 0;
    index = (size_t)(p / 100.0 * (double)samples->count + 0.5);
    if (index > 0)
        index--;
    if (index >= samples->count)
        index = samples->count - 1;
    return samples->values[index];
}

static void print_samples(FILE *out, const char *name, struct samples *samples, int last)
{
    double sum = 0;

    qsort(samples->values, samples->count, sizeof(uint32_t), compare_u32);
    for (size_t i = 0; i < samples->count; i++)
        sum += samples->values[i];
    fprintf(out,
            "\"%s\":{\"count\":%zu,\"mean\":%.1f,\"p50\":%u,\"p90\":%u,\"p99\":%u,"
            "\"p99_9\":%u,\"max\":%u}%s",
            name, samples->count, samples->count ? sum / (double)samples->count : 0.0,
            percentile(samples, 50), percentile(samples, 90), percentile(samples, 99),
            percentile(samples, 99.9), samples->count ? samples->values[samples->count - 1] : 0,
            last ? "" : ",");
}

static void close_connection(struct connection *c)
{
    if (c->fd >= 0) {
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = CLOSED;
    c->used = 0;
}

static int watch(struct connection *c, uint32_t events, int op)
{
    struct epoll_event event = { .events = events, .data.ptr = c };

    return epoll_ctl(epoll_fd, op, c->fd, &event);
}

static int open_connection(struct connection *c)
{
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&target, sizeof(target)) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->state = CONNECTING;
    c->used = 0;
    return watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void try_send(struct connection *c);

/* Starts one request on c (connecting first if need be). */
static void issue(struct connection *c)
{
    issued++;
    c->started_ns = now_ns();
    c->sent = 0;
    c->used = 0;
    if (c->state == CLOSED) {
        if (open_connection(c) < 0) {
            errors_connect++;
            answered++;   /* settled: it failed */
            c->state = CLOSED;
            c->fd = -1;
        }
        return;
    }
    c->state = SENDING;
    try_send(c);   /* almost always all at once: no EPOLLOUT round */
}

static void try_send(struct connection *c)
{
    while (c->sent < request_length) {
        ssize_t n = send(c->fd, request_text + c->sent, request_length - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN)
                return;
            errors_read++;
            answered++;
            close_connection(c);
            return;
        }
        c->sent += (size_t)n;
    }
    c->state = READING;
    watch(c, EPOLLIN, EPOLL_CTL_MOD);
}

static const char *find_header(const char *head, size_t head_length, const char *name,
                               size_t *value_length)
{
    size_t name_length = strlen(name);
    const char *line = memchr(head, '\n', head_length);

    while (line && (size_t)(line - head) < head_length) {
        const char *start = line + 1, *end;
        size_t left = head_length - (size_t)(start - head);
        end = memchr(start, '\n', left);
        if (!end)
            break;
        if ((size_t)(end - start) > name_length && strncasecmp(start, name, name_length) == 0 &&
            start[name_length] == ':') {
            const char *value = start + name_length + 1;
            while (*value == ' ')
                value++;
            *value_length = (size_t)(end - value);
            if (*value_length && value[*value_length - 1] == '\r')
                (*value_length)--;
            return value;
        }
        line = end;
    }
    return NULL;
}

/* Length of the chunked body starting at body, or 0 while incomplete. */
static size_t chunked_length(const char *body, size_t available)
{
    size_t position = 0;

    for (;;) {
        const char *line_end = memchr(body + position, '\n', available - position);
        char *hex_end;
        unsigned long size;

        if (!line_end)
            return 0;
        size = strtoul(body + position, &hex_end, 16);
        position = (size_t)(line_end - body) + 1;
        if (size == 0) {
            /* No trailers from the servers we talk to: just "\r\n". */
            return available - position >= 2 ? position + 2 : 0;
        }
        if (available - position < size + 2)
            return 0;
        position += size + 2;
    }
}

/* 1: a whole response was taken; 0: need more; -1: broken. */
static int take_response(struct connection *c, uint64_t start_ns, int *close_after)
{
    char *head_end = memmem(c->buffer, c->used, "\r\n\r\n", 4);
    size_t head_length, value_length, body_length = 0;
    const char *value;
    int status;
    uint64_t latency_ns;

    if (!head_end)
        return c->used == sizeof(c->buffer) ? -1 : 0;
    head_length = (size_t)(head_end - c->buffer) + 4;
    if (c->used < 12 || strncmp(c->buffer, "HTTP/1.", 7) != 0)
        return -1;
    status = atoi(c->buffer + 9);
    if (status < 100 || status > 599)
        return -1;
    *close_after = 0;
    if ((value = find_header(c->buffer, head_length, "Connection", &value_length)) &&
        value_length == 5 && strncasecmp(value, "close", 5) == 0)
        *close_after = 1;
    if ((value = find_header(c->buffer, head_length, "Content-Length", &value_length))) {
        body_length = strtoul(value, NULL, 10);
        if (c->used < head_length + body_length)
            return head_length + body_length > sizeof(c->buffer) ? -1 : 0;
    } else if ((value = find_header(c->buffer, head_length, "Transfer-Encoding", &value_length)) &&
               value_length >= 7 && strncasecmp(value, "chunked", 7) == 0) {
        body_length = chunked_length(c->buffer + head_length, c->used - head_length);
        if (!body_length)
            return c->used == sizeof(c->buffer) ? -1 : 0;
    }
    latency_ns = now_ns() - c->started_ns;
    status_counts[status]++;
    answered++;
    add_sample(&all_latency, (uint32_t)(latency_ns / 1000));
    if (status >= 200 && status < 300) {
        add_sample(&ok_latency, (uint32_t)(latency_ns / 1000));
        if (first_other_s < 0)
            ok_before_first_other++;
        if (id_file &&
            (value = find_header(c->buffer, head_length, "X-Detach-Job", &value_length)))
            fprintf(id_file, "%.*s\n", (int)value_length, value);
    } else {
        add_sample(&other_latency, (uint32_t)(latency_ns / 1000));
        if (first_other_s < 0)
            first_other_s = (double)(c->started_ns - start_ns) / 1e9;
    }
    c->used -= head_length + body_length;
    memmove(c->buffer, c->buffer + head_length + body_length, c->used);
    return 1;
}

static int try_read(struct connection *c, uint64_t start_ns)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buffer + c->used, sizeof(c->buffer) - c->used, 0);
        int close_after = 0, rc;

        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            errors_read++;
            answered++;
            close_connection(c);
            return 1;
        }
        c->used += (size_t)n;
        rc = take_response(c, start_ns, &close_after);
        if (rc < 0) {
            errors_parse++;
            answered++;
            close_connection(c);
            return 1;
        }
        if (rc == 1) {
            if (close_after)
                close_connection(c);
            else
                c->state = IDLE;
            return 1;
        }
    }
}

static int parse_url(const char *url, char *path, size_t size)
{
    char host[64];
    const char *rest, *slash, *colon;
    unsigned long port = 80;

    if (strncmp(url, "http://", 7) != 0)
        return -1;
    rest = url + 7;
    slash = strchr(rest, '/');
    if (!slash)
        slash = rest + strlen(rest);
    colon = memchr(rest, ':', (size_t)(slash - rest));
    if ((size_t)((colon ? colon : slash) - rest) >= sizeof(host))
        return -1;
    memcpy(host, rest, (size_t)((colon ? colon : slash) - rest));
    host[(colon ? colon : slash) - rest] = '\0';
    if (colon)
        port = strtoul(colon + 1, NULL, 10);
    memset(&target, 0, sizeof(target));
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1)
        return -1;
    snprintf(path, size, "%s", *slash ? slash : "/");
    request_length = (size_t)snprintf(request_text, sizeof(request_text),
                                      "GET %s HTTP/1.1\r\nHost: %s:%lu\r\n"
                                      "User-Agent: detach-loadgen\r\n\r\n",
                                      *slash ? slash : "/", host, port);
    return request_length < sizeof(request_text) ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen [-c CONNS] [-n COUNT | -d SECONDS] [-r RATE] [-t TIMEOUT]\n"
                    "               [-i IDFILE] [-o JSONFILE] http://127.0.0.1:PORT/PATH\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long connections_wanted = 32, count = 0;
    double seconds = 10, rate = 0, timeout = 10;
    const char *id_path = NULL, *out_path = NULL;
    struct connection *connections;
    char path[4096];
    uint64_t start_ns, stop_issuing_ns, hard_stop_ns, finished_ns;
    FILE *out = stdout;
    int option;

    while ((option = getopt(argc, argv, "c:n:d:r:t:i:o:")) != -1) {
        switch (option) {
        case 'c': connections_wanted = strtol(optarg, NULL, 10); break;
        case 'n': count = strtol(optarg, NULL, 10); break;
        case 'd': seconds = strtod(optarg, NULL); break;
        case 'r': rate = strtod(optarg, NULL); break;
        case 't': timeout = strtod(optarg, NULL); break;
        case 'i': id_path = optarg; break;
        case 'o': out_path = optarg; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || connections_wanted < 1 || connections_wanted > MAX_CONNECTIONS ||
        count < 0 || seconds <= 0 || seconds > 3600 || timeout <= 0 || timeout > 600 || rate < 0)
        usage();
    if (parse_url(argv[optind], path, sizeof(path)) < 0) {
        fprintf(stderr, "loadgen: want http://IPv4:PORT/PATH, got %s\n", argv[optind]);
        return 2;
    }
    if (id_path && !(id_file = fopen(id_path, "a"))) {
        perror(id_path);
        return 2;
    }
    connections = calloc((size_t)connections_wanted, sizeof(*connections));
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (!connections || epoll_fd < 0) {
        perror("loadgen");
        return 1;
    }
    for (long i = 0; i < connections_wanted; i++) {
        connections[i].fd = -1;
        connections[i].state = CLOSED;
        connections[i].index = (int)i;
    }

    start_ns = now_ns();
    /* With -n, SECONDS only bounds how long sending may take. */
    stop_issuing_ns = start_ns + (uint64_t)((count ? 600 : seconds) * 1e9);
    hard_stop_ns = stop_issuing_ns + (uint64_t)(timeout * 1e9);
    for (;;) {
        struct epoll_event events[256];
        uint64_t now = now_ns(), next_slot_ns = 0;
        int may_issue = now < stop_issuing_ns && (!count || issued < (uint64_t)count);
        uint64_t wait_ns = 100000000;   /* at most 100 ms */
        struct timespec wait;
        int in_flight = 0, n;

        /* Give every free connection its next request, at the rate asked. */
        for (long i = 0; i < connections_wanted; i++) {
            struct connection *c = &connections[i];
            if (c->state == CLOSED || c->state == IDLE) {
                if (!may_issue)
                    continue;
                if (rate > 0) {
                    next_slot_ns = start_ns + (uint64_t)((double)issued / rate * 1e9);
                    if (next_slot_ns > now)
                        continue;
                }
                issue(c);
                may_issue = now < stop_issuing_ns && (!count || issued < (uint64_t)count);
            }
            if (c->state == CONNECTING || c->state == SENDING || c->state == READING) {
                in_flight++;
                if (now > c->started_ns && now - c->started_ns > (uint64_t)(timeout * 1e9)) {
                    errors_timeout++;
                    answered++;
                    close_connection(c);
                    in_flight--;
                }
            }
        }
        if (!in_flight && !may_issue)
            break;
        if (now > hard_stop_ns)
            break;   /* bounded, whatever happens */
        if (rate > 0 && may_issue) {
            uint64_t slot = start_ns + (uint64_t)((double)issued / rate * 1e9);
            /* To the nanosecond: at thousands of requests a second the
             * next slot is under a millisecond away, and a timeout in
             * whole milliseconds turned the wait into a spin. */
            if (slot <= now)
                wait_ns = 0;
            else if (slot - now < wait_ns)
                wait_ns = slot - now;
        }
        wait.tv_sec = (time_t)(wait_ns / 1000000000);
        wait.tv_nsec = (long)(wait_ns % 1000000000);
        n = epoll_pwait2(epoll_fd, events, 256, &wait, NULL);
        for (int i = 0; i < n; i++) {
            struct connection *c = events[i].data.ptr;
            if (c->state == CONNECTING) {
                int error = 0;
                socklen_t length = sizeof(error);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &length);
                if (error) {
                    errors_connect++;
                    answered++;
                    close_connection(c);
                    continue;
                }
                c->state = SENDING;
            }
            if (c->state == SENDING)
                try_send(c);
            else if (c->state == READING)
                try_read(c, start_ns);
            else if (c->state == IDLE && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                /* The server closed a kept-alive connection between requests. */
                close_connection(c);
            }
        }
    }
    finished_ns = now_ns();
    for (long i = 0; i < connections_wanted; i++)
        close_connection(&connections[i]);
    if (id_file)
        fclose(id_file);

    if (out_path && !(out = fopen(out_path, "w"))) {
        perror(out_path);
        return 1;
    }
    {
        double elapsed = (double)(finished_ns - start_ns) / 1e9;
        uint64_t ok = 0, other = 0;
        int first = 1;

        for (int s = 0; s < 600; s++) {
            if (s >= 200 && s < 300)
                ok += status_counts[s];
            else
                other += status_counts[s];
        }
        fprintf(out, "{\"url\":\"%s\",\"connections\":%ld,\"seconds\":%.3f,\"sent\":%llu,"
                     "\"answered\":%llu,\"ok\":%llu,\"non_2xx\":%llu,\"answers_per_s\":%.1f,"
                     "\"ok_per_s\":%.1f,\"ok_before_first_non_2xx\":%llu,"
                     "\"first_non_2xx_at_s\":%.3f,\"status\":{",
                argv[optind], connections_wanted, elapsed, (unsigned long long)issued,
                (unsigned long long)(ok + other), (unsigned long long)ok,
                (unsigned long long)other, (double)(ok + other) / elapsed, (double)ok / elapsed,
                (unsigned long long)ok_before_first_other, first_other_s);
        for (int s = 0; s < 600; s++) {
            if (!status_counts[s])
                continue;
            fprintf(out, "%s\"%d\":%llu", first ? "" : ",", s,
                    (unsigned long long)status_counts[s]);
            first = 0;
        }
        fprintf(out, "},\"errors\":{\"connect\":%llu,\"read\":%llu,\"timeout\":%llu,"
                     "\"parse\":%llu},\"latency_us\":{",
                (unsigned long long)errors_connect, (unsigned long long)errors_read,
                (unsigned long long)errors_timeout, (unsigned long long)errors_parse);
        print_samples(out, "all", &all_latency, 0);
        print_samples(out, "ok", &ok_latency, 0);
        print_samples(out, "non_2xx", &other_latency, 1);
        fprintf(out, "}}\n");
    }
    if (out != stdout)
        fclose(out);
    (void)answered;
    return 0;
}
