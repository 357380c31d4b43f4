/*
 * config.c - reads detachd's INI file (see config.h) with inih.
 *
 * inih splits the "key = value" lines, but the file reaches it through our
 * own line reader, for three reasons: this inih build tells the handler no
 * line number, so the reader counts lines (the handler runs while inih is
 * still on the line the reader last returned); a line longer than inih's
 * buffer would be cut in two and its tail parsed as a line of its own, so
 * the reader refuses it; and inih cuts section names at 50 bytes, which
 * would silently change a long route path, so the reader reads section
 * headers itself and inih's idea of the section is never used.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ini.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"

#define DEFAULT_WORKERS 4
#define DEFAULT_MAX_JOBS 64
#define DEFAULT_QUEUE 1024
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_DRAIN_TIMEOUT 30
#define DEFAULT_SOCKET_MODE 0660
#define DEFAULT_READ_TIMEOUT 10
#define DEFAULT_KILL_GRACE 5
#define DEFAULT_JOB_LOG_MAX (10ULL * 1024 * 1024)
/* 64 MiB: a thousand queued jobs of the usual few KiB fit many times over,
 * while a burst of max_body-sized bodies is refused at 64 of them rather
 * than take the 1 GiB that queue x max_body allows. */
#define DEFAULT_QUEUE_BYTES (64ULL * 1024 * 1024)
#define DEFAULT_JOB_LOG_KEEP (7u * 86400)   /* a week of job logs in log_dir */

#define MAX_SECONDS 31536000ULL /* a year: anything longer is a typo */
#define MAX_BODY_LIMIT (1ULL << 30)
#define MAX_JOB_LOG (1ULL << 40) /* a terabyte of one job's output: a typo */
#define MAX_QUEUE_BYTES (1ULL << 40) /* a terabyte of queued bodies: a typo */
#define UTF8_BOM "\xEF\xBB\xBF"

enum section_kind { SECTION_NONE, SECTION_DAEMON, SECTION_ROUTE };

enum value_kind {
    VALUE_UNSIGNED,
    VALUE_SIZE,
    VALUE_FILE_MODE,
    VALUE_STRING,
    VALUE_URL_PATH,
    VALUE_LISTEN,
    VALUE_COMMAND,
    VALUE_MODE,
    VALUE_BOOLEAN,
    VALUE_USER,
    VALUE_ACCESS_LIST,
    VALUE_LOG_TARGET,
    VALUE_OWNER,
    VALUE_LOG_FORMAT,
};

struct key_spec {
    const char *name;
    enum value_kind kind;
    size_t offset; /* into struct config or struct config_route */
    unsigned long long min, max;
};

#define DAEMON_KEY(name, kind, field, min, max) \
    { name, kind, offsetof(struct config, field), min, max }
#define ROUTE_KEY(name, kind, field, min, max) \
    { name, kind, offsetof(struct config_route, field), min, max }

static const struct key_spec daemon_keys[] = {
    DAEMON_KEY("listen", VALUE_LISTEN, listen, 0, 0),
    DAEMON_KEY("workers", VALUE_UNSIGNED, workers, 1, 1024),
    DAEMON_KEY("max_jobs", VALUE_UNSIGNED, max_jobs, 1, 100000),
    DAEMON_KEY("queue", VALUE_UNSIGNED, queue, 0, 1000000),
    DAEMON_KEY("max_body", VALUE_SIZE, max_body, 1, MAX_BODY_LIMIT),
    DAEMON_KEY("drain_timeout", VALUE_UNSIGNED, drain_timeout, 0, MAX_SECONDS),
    DAEMON_KEY("socket_mode", VALUE_FILE_MODE, socket_mode, 0, 0777),
    DAEMON_KEY("socket_owner", VALUE_OWNER, socket_owner, 0, 0),
    DAEMON_KEY("spool", VALUE_STRING, spool, 0, 0),
    DAEMON_KEY("status_path", VALUE_URL_PATH, status_path, 0, 0),
    DAEMON_KEY("log_dir", VALUE_STRING, log_dir, 0, 0),
    DAEMON_KEY("read_timeout", VALUE_UNSIGNED, read_timeout, 1, 86400),
    DAEMON_KEY("status_allow", VALUE_ACCESS_LIST, status_allow, 0, 0),
    DAEMON_KEY("job_log_max", VALUE_SIZE, job_log_max, 0, MAX_JOB_LOG),
    DAEMON_KEY("log", VALUE_LOG_TARGET, log_target, 0, 0),
    DAEMON_KEY("log_file", VALUE_STRING, log_file, 0, 0),
    DAEMON_KEY("log_format", VALUE_LOG_FORMAT, log_format, 0, 0),
    DAEMON_KEY("job_log_keep", VALUE_UNSIGNED, job_log_keep, 0, MAX_SECONDS),
    DAEMON_KEY("job_nice", VALUE_UNSIGNED, job_nice, 0, 19),
    DAEMON_KEY("queue_bytes", VALUE_SIZE, queue_bytes, 1, MAX_QUEUE_BYTES),
};

static const struct key_spec route_keys[] = {
    ROUTE_KEY("command", VALUE_COMMAND, argv, 0, 0),
    ROUTE_KEY("on_shutdown", VALUE_COMMAND, on_shutdown_argv, 0, 0),
    ROUTE_KEY("mode", VALUE_MODE, mode, 0, 0),
    ROUTE_KEY("ignore_user_abort", VALUE_BOOLEAN, ignore_user_abort, 0, 0),
    ROUTE_KEY("time_limit", VALUE_UNSIGNED, time_limit, 0, MAX_SECONDS),
    ROUTE_KEY("kill_grace", VALUE_UNSIGNED, kill_grace, 0, MAX_SECONDS),
    ROUTE_KEY("user", VALUE_USER, user, 0, 0),
};

#define ARRAY_LENGTH(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_SECTION_KEYS 24

_Static_assert(ARRAY_LENGTH(daemon_keys) <= MAX_SECTION_KEYS, "raise MAX_SECTION_KEYS");
_Static_assert(ARRAY_LENGTH(route_keys) <= MAX_SECTION_KEYS, "raise MAX_SECTION_KEYS");

struct parser {
    struct config *config; /* being built; its path names the file */
    FILE *file;
    char *line; /* getline's buffer, owned */
    size_t line_capacity;
    int line_number; /* of the line inih is working on */
    enum section_kind section;
    int key_lines[MAX_SECTION_KEYS]; /* where this section set each key; 0: not yet */
    bool daemon_section_seen;
    bool failed; /* the first error is in errbuf; the rest are not reported */
    char *errbuf;
    size_t errbuf_size;
};

static void vformat_error(char *buf, size_t size, const char *file, int line,
                          const char *fmt, va_list args)
{
    int used;

    if (line > 0)
        used = snprintf(buf, size, "%s:%d: ", file, line);
    else
        used = snprintf(buf, size, "%s: ", file);
    if (used < 0 || (size_t)used >= size)
        return;
    vsnprintf(buf + used, size - used, fmt, args);
}

__attribute__((format(printf, 5, 6)))
static void format_error(char *buf, size_t size, const char *file, int line, const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    vformat_error(buf, size, file, line, fmt, args);
    va_end(args);
}

/* line 0: an error about the whole file.  Returns -1 for "return fail_at()". */
__attribute__((format(printf, 3, 4)))
static int fail_at(struct parser *parser, int line, const char *fmt, ...)
{
    va_list args;

    if (parser->failed)
        return -1;
    parser->failed = true;
    va_start(args, fmt);
    vformat_error(parser->errbuf, parser->errbuf_size, parser->config->path, line, fmt, args);
    va_end(args);
    return -1;
}

static struct config_route *current_route(struct parser *parser)
{
    return &parser->config->routes[parser->config->route_count - 1];
}

/* "[detachd]" or "[route /x]", for messages. */
static const char *section_label(struct parser *parser, char *buf, size_t size)
{
    if (parser->section == SECTION_ROUTE)
        snprintf(buf, size, "[route %s]", current_route(parser)->path);
    else
        snprintf(buf, size, "[detachd]");
    return buf;
}

static void free_argv(char **argv)
{
    if (!argv)
        return;
    for (char **arg = argv; *arg; arg++)
        free(*arg);
    free(argv);
}

static void free_route(struct config_route *route)
{
    free(route->path);
    free_argv(route->argv);
    free_argv(route->on_shutdown_argv);
    free(route->user);
}

/* ---- values ---- */

/*
 * Digits only, because strtoull alone would also take " 5", "+5" and "-5"
 * (the last as a huge number).  A number too big for the type comes back as
 * ULLONG_MAX, which every range check then refuses.
 */
static bool parse_decimal(const char *text, const char **end, unsigned long long *value)
{
    char *stop;

    if (!isdigit((unsigned char)*text))
        return false;
    errno = 0;
    *value = strtoull(text, &stop, 10);
    if (errno == ERANGE)
        *value = ULLONG_MAX;
    *end = stop;
    return true;
}

static bool parse_whole_decimal(const char *text, unsigned long long *value)
{
    const char *end;

    return parse_decimal(text, &end, value) && *end == '\0';
}

/* "512", "64K", "1M", "2G": 1024-based. */
static bool parse_size(const char *text, unsigned long long *value)
{
    unsigned long long multiplier = 1;
    const char *end;

    if (!parse_decimal(text, &end, value))
        return false;
    switch (toupper((unsigned char)*end)) {
    case '\0': return true;
    case 'K': multiplier = 1ULL << 10; break;
    case 'M': multiplier = 1ULL << 20; break;
    case 'G': multiplier = 1ULL << 30; break;
    default: return false;
    }
    if (end[1] != '\0')
        return false;
    *value = *value > ULLONG_MAX / multiplier ? ULLONG_MAX : *value * multiplier;
    return true;
}

static int check_range(struct parser *parser, const struct key_spec *key, const char *text,
                       unsigned long long value)
{
    if (value < key->min || value > key->max)
        return fail_at(parser, parser->line_number, "%s = %s is out of range (%llu..%llu)",
                       key->name, text, key->min, key->max);
    return 0;
}

static int set_unsigned(struct parser *parser, const struct key_spec *key, const char *text,
                        unsigned *field)
{
    unsigned long long value;

    if (!parse_whole_decimal(text, &value))
        return fail_at(parser, parser->line_number, "bad number \"%s\" for %s", text, key->name);
    if (check_range(parser, key, text, value) < 0)
        return -1;
    *field = (unsigned)value;
    return 0;
}

static int set_size(struct parser *parser, const struct key_spec *key, const char *text,
                    size_t *field)
{
    unsigned long long value;

    if (!parse_size(text, &value))
        return fail_at(parser, parser->line_number,
                       "bad size \"%s\" for %s (a number with an optional K, M or G)",
                       text, key->name);
    if (check_range(parser, key, text, value) < 0)
        return -1;
    *field = (size_t)value;
    return 0;
}

static int set_file_mode(struct parser *parser, const struct key_spec *key, const char *text,
                         unsigned *field)
{
    unsigned long value;
    char *end;

    if (text[strspn(text, "01234567")] != '\0')
        goto fail;
    value = strtoul(text, &end, 8);
    if (value > key->max)
        goto fail;
    *field = (unsigned)value;
    return 0;
fail:
    return fail_at(parser, parser->line_number,
                   "bad %s \"%s\" (octal permissions, as in 0660)", key->name, text);
}

static int set_string(struct parser *parser, const char *text, char **field)
{
    char *copy = strdup(text);

    if (!copy)
        return fail_at(parser, parser->line_number, "%s", strerror(errno));
    free(*field);
    *field = copy;
    return 0;
}

static int set_url_path(struct parser *parser, const struct key_spec *key, const char *text,
                        char **field)
{
    if (text[0] != '/')
        return fail_at(parser, parser->line_number, "%s \"%s\" must start with '/'",
                       key->name, text);
    return set_string(parser, text, field);
}

static const char *port_problem(const char *text)
{
    unsigned long long port;

    if (!parse_whole_decimal(text, &port) || port < 1 || port > 65535)
        return "the port must be a number from 1 to 65535";
    return NULL;
}

/* NULL when text is "unix:/abs/path", "IPv4:port" or "[IPv6]:port". */
static const char *listen_problem(const char *text)
{
    char host[INET6_ADDRSTRLEN];
    unsigned char address[sizeof(struct in6_addr)];
    const char *host_end, *port;
    size_t host_length;

    if (strncmp(text, "unix:", 5) == 0) {
        if (text[5] != '/')
            return "the socket path must be absolute";
        if (strlen(text + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return "the socket path is too long";
        return NULL;
    }
    if (text[0] == '[') {
        host_end = strchr(text, ']');
        if (!host_end || host_end[1] != ':')
            return "expected [IPv6]:port";
        host_length = host_end - (text + 1);
        if (host_length >= sizeof(host))
            return "bad IPv6 address";
        memcpy(host, text + 1, host_length);
        host[host_length] = '\0';
        if (inet_pton(AF_INET6, host, address) != 1)
            return "bad IPv6 address";
        return port_problem(host_end + 2);
    }
    port = strrchr(text, ':');
    if (!port)
        return "expected unix:/path, IPv4:port or [IPv6]:port";
    host_length = port - text;
    if (host_length >= sizeof(host))
        return "bad IPv4 address";
    memcpy(host, text, host_length);
    host[host_length] = '\0';
    if (inet_pton(AF_INET, host, address) != 1)
        return "bad IPv4 address (IPv6 goes in brackets, as in [::1]:9000)";
    return port_problem(port + 1);
}

static int set_listen(struct parser *parser, const struct key_spec *key, const char *text,
                      char **field)
{
    const char *problem = listen_problem(text);

    if (problem)
        return fail_at(parser, parser->line_number, "bad %s address \"%s\": %s",
                       key->name, text, problem);
    return set_string(parser, text, field);
}

/* Keeps *argv NULL-terminated; the word is copied. */
static int append_word(char ***argv, size_t *count, const char *word)
{
    char **grown = realloc(*argv, (*count + 2) * sizeof(**argv));
    char *copy;

    if (!grown)
        return -1;
    *argv = grown;
    copy = strdup(word);
    if (!copy)
        return -1;
    grown[(*count)++] = copy;
    grown[*count] = NULL;
    return 0;
}

/*
 * Splits a command line the way a shell splits words, without expanding
 * anything: whitespace separates words; '...' keeps everything literal;
 * "..." keeps everything but \" and \\; elsewhere a backslash makes the
 * next character literal.  NULL on success, else what is wrong.
 */
static const char *split_words(const char *text, char ***argv_out)
{
    const char *problem = "out of memory";
    char *word = malloc(strlen(text) + 1); /* a word is never longer than the text */
    char **argv = NULL;
    size_t count = 0, length;
    const char *at = text, *close;

    if (!word)
        goto fail;
    for (;;) {
        while (isspace((unsigned char)*at))
            at++;
        if (*at == '\0')
            break;
        length = 0;
        while (*at != '\0' && !isspace((unsigned char)*at)) {
            if (*at == '\'') {
                close = strchr(at + 1, '\'');
                if (!close) {
                    problem = "unterminated ' quote";
                    goto fail;
                }
                memcpy(word + length, at + 1, close - at - 1);
                length += close - at - 1;
                at = close + 1;
            } else if (*at == '"') {
                for (at++; *at != '"'; at++) {
                    if (*at == '\0') {
                        problem = "unterminated \" quote";
                        goto fail;
                    }
                    if (at[0] == '\\' && (at[1] == '"' || at[1] == '\\'))
                        at++;
                    word[length++] = *at;
                }
                at++;
            } else if (*at == '\\') {
                if (at[1] == '\0') {
                    problem = "backslash at the end";
                    goto fail;
                }
                word[length++] = at[1];
                at += 2;
            } else {
                word[length++] = *at++;
            }
        }
        word[length] = '\0';
        if (append_word(&argv, &count, word) < 0)
            goto fail;
    }
    if (count == 0) {
        problem = "no program given";
        goto fail;
    }
    free(word);
    *argv_out = argv;
    return NULL;
fail:
    free(word);
    free_argv(argv);
    return problem;
}

static int set_command(struct parser *parser, const struct key_spec *key, const char *text,
                       char ***field)
{
    char **argv;
    const char *problem = split_words(text, &argv);

    if (problem)
        return fail_at(parser, parser->line_number, "bad %s: %s", key->name, problem);
    /* No PATH search: what runs must not depend on detachd's environment. */
    if (argv[0][0] != '/') {
        fail_at(parser, parser->line_number, "%s \"%s\" must be an absolute path",
                key->name, argv[0]);
        free_argv(argv);
        return -1;
    }
    free_argv(*field);
    *field = argv;
    return 0;
}

static int set_mode(struct parser *parser, const char *text, detach_mode *field)
{
    if (strcasecmp(text, "trigger") == 0)
        *field = DETACH_TRIGGER;
    else if (strcasecmp(text, "attached") == 0)
        *field = DETACH_ATTACHED;
    else
        return fail_at(parser, parser->line_number,
                       "bad mode \"%s\" (trigger or attached)", text);
    return 0;
}

static int set_boolean(struct parser *parser, const struct key_spec *key, const char *text,
                       int *field)
{
    static const char *const truths[] = { "on", "true", "yes", "1" };
    static const char *const falsehoods[] = { "off", "false", "no", "0" };

    for (size_t i = 0; i < ARRAY_LENGTH(truths); i++) {
        if (strcasecmp(text, truths[i]) == 0) {
            *field = 1;
            return 0;
        }
        if (strcasecmp(text, falsehoods[i]) == 0) {
            *field = 0;
            return 0;
        }
    }
    return fail_at(parser, parser->line_number,
                   "bad boolean \"%s\" for %s (on/off, true/false, yes/no, 1/0)",
                   text, key->name);
}

/* "127.0.0.1 ::1 10.0.0.0/8": each entry an address or a CIDR range. */
static int set_access_list(struct parser *parser, const struct key_spec *key, const char *text,
                           char **field)
{
    const char *bad = NULL;
    int bad_length = 0;

    if (detach_allow_list_valid(text, &bad, &bad_length) < 0)
        return fail_at(parser, parser->line_number,
                       "bad address \"%.*s\" in %s (IPv4 or IPv6 addresses and ranges, "
                       "as in 127.0.0.1 ::1 10.0.0.0/8)", bad_length, bad, key->name);
    if (text[strspn(text, " \t,")] == '\0')
        return fail_at(parser, parser->line_number, "%s lists no address", key->name);
    return set_string(parser, text, field);
}

static int set_log_target(struct parser *parser, const struct key_spec *key, const char *text,
                          enum config_log_target *field)
{
    if (strcmp(text, "stderr") == 0)
        *field = CONFIG_LOG_STDERR;
    else if (strcmp(text, "syslog") == 0)
        *field = CONFIG_LOG_SYSLOG;
    else if (strcmp(text, "journal") == 0)
        *field = CONFIG_LOG_JOURNAL;
    else
        return fail_at(parser, parser->line_number, "bad %s \"%s\" (stderr, syslog or journal)",
                       key->name, text);
    return 0;
}

static int set_log_format(struct parser *parser, const struct key_spec *key, const char *text,
                          enum config_log_format *field)
{
    if (strcmp(text, "logfmt") == 0)
        *field = CONFIG_LOG_LOGFMT;
    else if (strcmp(text, "json") == 0)
        *field = CONFIG_LOG_JSON;
    else
        return fail_at(parser, parser->line_number, "bad %s \"%s\" (logfmt or json)",
                       key->name, text);
    return 0;
}

/* 1: the user exists, 0: it does not, -1: the lookup failed (errno). */
static int user_exists(const char *name)
{
    long suggested = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t size = suggested > 0 ? (size_t)suggested : 16384;
    struct passwd entry, *found = NULL;
    char *buf = NULL, *grown;
    int error;

    for (;;) {
        grown = realloc(buf, size);
        if (!grown) {
            error = ENOMEM;
            break;
        }
        buf = grown;
        error = getpwnam_r(name, &entry, buf, size, &found);
        if (error != ERANGE)
            break;
        size *= 2;
    }
    free(buf);
    if (error) {
        errno = error;
        return -1;
    }
    return found != NULL;
}

static int set_user(struct parser *parser, const char *text, char **field)
{
    switch (user_exists(text)) {
    case 1:
        return set_string(parser, text, field);
    case 0:
        return fail_at(parser, parser->line_number, "unknown user \"%s\"", text);
    default:
        return fail_at(parser, parser->line_number, "cannot look up user \"%s\": %s",
                       text, strerror(errno));
    }
}

/* "user" or "user:group", both existing: a typo is a config error with
 * its line, not a failure at listen time. */
static int set_owner(struct parser *parser, const char *text, char **field)
{
    const char *colon = strchr(text, ':');
    char user[256];
    size_t length = colon ? (size_t)(colon - text) : strlen(text);

    if (length == 0 || length >= sizeof(user))
        return fail_at(parser, parser->line_number, "bad socket_owner \"%s\" (user or user:group)",
                       text);
    memcpy(user, text, length);
    user[length] = '\0';
    if (user_exists(user) != 1)
        return fail_at(parser, parser->line_number, "unknown user \"%s\"", user);
    if (colon && getgrnam(colon + 1) == NULL)
        return fail_at(parser, parser->line_number, "unknown group \"%s\"", colon + 1);
    return set_string(parser, text, field);
}

static int set_value(struct parser *parser, const struct key_spec *key, const char *text,
                     void *field)
{
    switch (key->kind) {
    case VALUE_UNSIGNED: return set_unsigned(parser, key, text, field);
    case VALUE_SIZE: return set_size(parser, key, text, field);
    case VALUE_FILE_MODE: return set_file_mode(parser, key, text, field);
    case VALUE_STRING: return set_string(parser, text, field);
    case VALUE_URL_PATH: return set_url_path(parser, key, text, field);
    case VALUE_LISTEN: return set_listen(parser, key, text, field);
    case VALUE_COMMAND: return set_command(parser, key, text, field);
    case VALUE_MODE: return set_mode(parser, text, field);
    case VALUE_BOOLEAN: return set_boolean(parser, key, text, field);
    case VALUE_USER: return set_user(parser, text, field);
    case VALUE_ACCESS_LIST: return set_access_list(parser, key, text, field);
    case VALUE_LOG_TARGET: return set_log_target(parser, key, text, field);
    case VALUE_OWNER: return set_owner(parser, text, field);
    case VALUE_LOG_FORMAT: return set_log_format(parser, key, text, field);
    }
    return fail_at(parser, parser->line_number, "internal error: key %s", key->name);
}

/* ---- sections ---- */

/* Checks done once a route's keys are all read; the error names the header. */
static int finish_section(struct parser *parser)
{
    struct config_route *route;

    if (parser->section != SECTION_ROUTE)
        return 0;
    route = current_route(parser);
    if (!route->argv)
        return fail_at(parser, route->line, "[route %s] has no command", route->path);
    if (route->ignore_user_abort < 0)
        route->ignore_user_abort = route->mode == DETACH_TRIGGER;
    return 0;
}

static int check_route_path(struct parser *parser, const char *path)
{
    const char *star = strchr(path, '*');

    if (path[0] != '/')
        return fail_at(parser, parser->line_number, "route path \"%s\" must start with '/'", path);
    if (path[strcspn(path, " \t\v\f")] != '\0')
        return fail_at(parser, parser->line_number, "route path \"%s\" contains whitespace", path);
    if (strpbrk(path, "?#"))
        return fail_at(parser, parser->line_number,
                       "route path \"%s\" must not contain '?' or '#'", path);
    if (star && (star[1] != '\0' || star[-1] != '/'))
        return fail_at(parser, parser->line_number,
                       "route path \"%s\": '*' may only end it, as in \"/jobs/*\"", path);
    if (detach_route_path_refusal(path))   /* no request could ever match it */
        return fail_at(parser, parser->line_number,
                       "route path \"%s\" has a \".\" or \"..\" segment, a backslash or an "
                       "encoded separator", path);
    for (size_t i = 0; i < parser->config->route_count; i++)
        if (strcmp(parser->config->routes[i].path, path) == 0)
            return fail_at(parser, parser->line_number, "duplicate route \"%s\" (first at line %d)",
                           path, parser->config->routes[i].line);
    return 0;
}

static int begin_route(struct parser *parser, const char *path)
{
    struct config *config = parser->config;
    struct config_route *grown;
    char *path_copy;

    if (path[0] == '\0')
        return fail_at(parser, parser->line_number,
                       "[route] needs a path, as in [route /jobs/report]");
    if (check_route_path(parser, path) < 0)
        return -1;
    path_copy = strdup(path);
    grown = path_copy ? realloc(config->routes, (config->route_count + 1) * sizeof(*grown)) : NULL;
    if (!grown) {
        free(path_copy);
        return fail_at(parser, parser->line_number, "%s", strerror(ENOMEM));
    }
    config->routes = grown;
    grown[config->route_count++] = (struct config_route) {
        .path = path_copy,
        .mode = DETACH_TRIGGER,
        .ignore_user_abort = -1, /* the default depends on mode, known at the end */
        .kill_grace = DEFAULT_KILL_GRACE,
        .line = parser->line_number,
    };
    parser->section = SECTION_ROUTE;
    return 0;
}

/* name: what is between the brackets, modifiable. */
static int begin_section(struct parser *parser, char *name)
{
    char *end;

    if (finish_section(parser) < 0)
        return -1;
    memset(parser->key_lines, 0, sizeof(parser->key_lines));
    while (isspace((unsigned char)*name))
        name++;
    end = name + strlen(name);
    while (end > name && isspace((unsigned char)end[-1]))
        *--end = '\0';

    if (strcmp(name, "detachd") == 0) {
        if (parser->daemon_section_seen)
            return fail_at(parser, parser->line_number, "duplicate section [detachd]");
        parser->daemon_section_seen = true;
        parser->config->daemon_line = parser->line_number;
        parser->section = SECTION_DAEMON;
        return 0;
    }
    if (strncmp(name, "route", 5) == 0 && (name[5] == '\0' || isspace((unsigned char)name[5]))) {
        name += 5;
        while (isspace((unsigned char)*name))
            name++;
        return begin_route(parser, name);
    }
    return fail_at(parser, parser->line_number, "unknown section [%s]", name);
}

/*
 * Finds a section header the way inih does, so that we agree on which lines
 * are headers: a '[' after leading whitespace, closed by a ']' that comes
 * before any inline comment (a ';' after whitespace).  Lines inih would
 * reject are left to it, to be reported as syntax errors.
 */
static int read_section_header(struct parser *parser, char *text)
{
    bool after_space = false;
    char *at, *rest;

    while (isspace((unsigned char)*text))
        text++;
    if (*text != '[')
        return 0;
    for (at = text + 1; *at != ']'; at++) {
        if (*at == '\0' || (*at == ';' && after_space))
            return 0;
        after_space = isspace((unsigned char)*at);
    }
    /* inih ignores whatever follows the ']'; a typo there should not pass. */
    rest = at + 1 + strspn(at + 1, " \t\v\f");
    if (*rest != '\0' && *rest != ';')
        return fail_at(parser, parser->line_number, "unexpected text after the section header");
    *at = '\0';
    return begin_section(parser, text + 1);
}

/* ---- inih callbacks ---- */

/* inih's fgets-style reader: one line per call, no newline. */
static char *read_line(char *buffer, int size, void *stream)
{
    struct parser *parser = stream;
    ssize_t length;
    char *text;

    if (parser->failed)
        return NULL; /* looks like the end of the file to inih */
    errno = 0;
    length = getline(&parser->line, &parser->line_capacity, parser->file);
    if (length < 0) {
        if (ferror(parser->file))
            fail_at(parser, 0, "%s", strerror(errno ? errno : EIO));
        return NULL;
    }
    parser->line_number++;
    text = parser->line;
    if (length > 0 && text[length - 1] == '\n')
        text[--length] = '\0';
    if (length > 0 && text[length - 1] == '\r')
        text[--length] = '\0';
    if (parser->line_number == 1 && strncmp(text, UTF8_BOM, 3) == 0) {
        text += 3;
        length -= 3;
    }
    if (strlen(text) != (size_t)length) {
        fail_at(parser, parser->line_number, "the line holds a NUL byte");
        return NULL;
    }
    if (length >= size) {
        fail_at(parser, parser->line_number, "the line is too long (at most %d characters)",
                size - 1);
        return NULL;
    }
    memcpy(buffer, text, length + 1);
    /* Our copy: the one we hand over is inih's to cut up. */
    if (read_section_header(parser, text) < 0)
        return NULL;
    return buffer;
}

static const struct key_spec *find_key(const struct key_spec *keys, size_t count,
                                       const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* The lines later checks name (config_check_spool, ...). */
static void record_key_line(struct config *config, const struct key_spec *key, int line)
{
    if (key->offset == offsetof(struct config, spool))
        config->spool_line = line;
    else if (key->offset == offsetof(struct config, status_path))
        config->status_path_line = line;
    else if (key->offset == offsetof(struct config, max_jobs))
        config->max_jobs_line = line;
    else if (key->offset == offsetof(struct config, log_file))
        config->log_file_line = line;
}

/* inih's handler: nonzero to go on.  inih's section name is not used. */
static int on_key_value(void *user, const char *inih_section, const char *name,
                        const char *value)
{
    struct parser *parser = user;
    char label[CONFIG_MAX_LINE + 16];
    const struct key_spec *keys, *key;
    size_t key_count, index;
    void *target;

    switch (parser->section) {
    case SECTION_DAEMON:
        keys = daemon_keys;
        key_count = ARRAY_LENGTH(daemon_keys);
        target = parser->config;
        break;
    case SECTION_ROUTE:
        keys = route_keys;
        key_count = ARRAY_LENGTH(route_keys);
        target = current_route(parser);
        break;
    default:
        fail_at(parser, parser->line_number,
                "key \"%s\" comes before any section ([detachd] or [route PATH])", name);
        return 0;
    }
    key = find_key(keys, key_count, name);
    if (!key) {
        fail_at(parser, parser->line_number, "unknown key \"%s\" in %s", name,
                section_label(parser, label, sizeof(label)));
        return 0;
    }
    index = key - keys;
    if (parser->key_lines[index]) {
        fail_at(parser, parser->line_number, "duplicate key \"%s\" in %s (first at line %d)",
                name, section_label(parser, label, sizeof(label)), parser->key_lines[index]);
        return 0;
    }
    parser->key_lines[index] = parser->line_number;
    if (parser->section == SECTION_DAEMON)
        record_key_line(parser->config, key, parser->line_number);
    if (value[0] == '\0') {
        fail_at(parser, parser->line_number, "key \"%s\" has no value", name);
        return 0;
    }
    return set_value(parser, key, value, (char *)target + key->offset) == 0;
}

/*
 * inih's options are process-wide variables in this build, and config_load
 * is their one user, so they are simply set before each parse.
 */
static void configure_inih(void)
{
    /*
     * With continuation lines on, an indented stray line would reach the
     * handler as another value for the key above it: a confusing
     * "duplicate key", or a silently changed value.  Off, it is a plain
     * syntax error at its own line.
     */
    ini_allow_multiline = false;
    /* Only the first error is reported, and only then is inih's line ours. */
    ini_stop_on_first_error = true;
    ini_allow_inline_comments = true;
    ini_allow_no_value = false;
    /*
     * 200 bytes, the default, is short for a command line.  Only a heap
     * buffer has a size settable at run time; growing it stays off, since
     * read_line refuses what does not fit.
     */
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_max_line = CONFIG_MAX_LINE + 1;
    ini_initial_alloc = CONFIG_MAX_LINE + 1;
}

/* ---- public ---- */

void config_init_defaults(struct config *config)
{
    *config = (struct config) {
        .workers = DEFAULT_WORKERS,
        .max_jobs = DEFAULT_MAX_JOBS,
        .queue = DEFAULT_QUEUE,
        .max_body = DEFAULT_MAX_BODY,
        .drain_timeout = DEFAULT_DRAIN_TIMEOUT,
        .socket_mode = DEFAULT_SOCKET_MODE,
        .read_timeout = DEFAULT_READ_TIMEOUT,
        .job_log_max = DEFAULT_JOB_LOG_MAX,
        .log_target = CONFIG_LOG_STDERR,
        .job_log_keep = DEFAULT_JOB_LOG_KEEP,
        .job_nice = 10,
        .queue_bytes = DEFAULT_QUEUE_BYTES,
    };
}

int config_load(struct config *config, const char *path, char *errbuf, size_t errbuf_size)
{
    struct config loaded;
    struct parser parser = { .config = &loaded, .errbuf = errbuf, .errbuf_size = errbuf_size };
    int result;

    config_init_defaults(&loaded);
    if (errbuf_size > 0)
        errbuf[0] = '\0';
    loaded.path = strdup(path);
    if (!loaded.path) {
        format_error(errbuf, errbuf_size, path, 0, "%s", strerror(errno));
        goto fail;
    }
    parser.file = fopen(path, "re");
    if (!parser.file) {
        fail_at(&parser, 0, "%s", strerror(errno));
        goto fail;
    }
    configure_inih();
    result = ini_parse_stream(read_line, &parser, on_key_value, &parser);
    if (result > 0)
        fail_at(&parser, result, "syntax error"); /* no-op when the error was ours */
    else if (result < 0)
        fail_at(&parser, 0, "%s", strerror(ENOMEM)); /* inih's -2: no line buffer */
    finish_section(&parser);
    if (parser.failed)
        goto fail;
    loaded.last_line = parser.line_number > 0 ? parser.line_number : 1;
    fclose(parser.file);
    free(parser.line);
    *config = loaded;
    return 0;
fail:
    if (parser.file)
        fclose(parser.file);
    free(parser.line);
    config_free(&loaded);
    return -1;
}

/* errno-style reason why program cannot be run, 0 if it can. */
static int program_unrunnable(const char *program)
{
    struct stat status;

    if (stat(program, &status) < 0)
        return errno;
    if (S_ISDIR(status.st_mode))
        return EISDIR;
    if (!S_ISREG(status.st_mode))
        return EACCES; /* what execve says of a fifo or a device */
    if (access(program, X_OK) < 0)
        return errno;
    return 0;
}

int config_check_commands(const struct config *config, char *errbuf, size_t errbuf_size)
{
    const char *file = config->path ? config->path : "(config)";

    for (size_t i = 0; i < config->route_count; i++) {
        const struct config_route *route = &config->routes[i];
        char **const programs[] = { route->argv, route->on_shutdown_argv };
        static const char *const keys[] = { "command", "on_shutdown" };

        for (size_t k = 0; k < ARRAY_LENGTH(programs); k++) {
            int error;

            if (!programs[k])
                continue;
            error = program_unrunnable(programs[k][0]);
            if (error) {
                format_error(errbuf, errbuf_size, file, route->line,
                             "%s \"%s\" is not executable: %s",
                             keys[k], programs[k][0], strerror(error));
                return -1;
            }
        }
    }
    return 0;
}

/* ---- what the start would refuse ---- */

/* Does text start with the first length bytes of prefix? */
static bool starts_with(const char *text, const char *prefix, size_t length)
{
    return strncmp(text, prefix, length) == 0 && strlen(text) >= length;
}

/*
 * The status page answers status_path and everything under
 * status_path/jobs/ (request.c, is_status_request), before any route.
 * 2: it answers every path of the route; 1: some; 0: none.
 */
static int status_hides_route(const char *status_path, const char *jobs_prefix,
                              const char *route_path)
{
    size_t length = strlen(route_path), jobs_length = strlen(jobs_prefix);

    if (length == 0 || route_path[length - 1] != '*')
        return strcmp(route_path, status_path) == 0 ||
               starts_with(route_path, jobs_prefix, jobs_length) ? 2 : 0;
    /* A prefix route: every path starting with what precedes the '*'. */
    length--;
    if (length >= jobs_length && starts_with(route_path, jobs_prefix, jobs_length))
        return 2;
    return starts_with(status_path, route_path, length) ||
           starts_with(jobs_prefix, route_path, length) ? 1 : 0;
}

int config_check_serving(const struct config *config, char *errbuf, size_t errbuf_size,
                         char *notebuf, size_t notebuf_size)
{
    const char *file = config->path ? config->path : "(config)";
    char *jobs_prefix = NULL;
    int result = -1;

    if (notebuf_size > 0)
        notebuf[0] = '\0';
    if (config->route_count == 0) {
        format_error(errbuf, errbuf_size, file, config->last_line,
                     "no [route PATH] section in the file: nothing to serve");
        return -1;
    }
    if (!config->status_path)
        return 0;
    if (asprintf(&jobs_prefix, "%s/jobs/", config->status_path) < 0) {
        format_error(errbuf, errbuf_size, file, 0, "%s", strerror(ENOMEM));
        return -1;
    }
    for (size_t i = 0; i < config->route_count; i++) {
        const struct config_route *route = &config->routes[i];

        switch (status_hides_route(config->status_path, jobs_prefix, route->path)) {
        case 2:
            format_error(errbuf, errbuf_size, file, config->status_path_line,
                         "status_path \"%s\" hides [route %s] (line %d): the status page "
                         "answers %s and every path under %s",
                         config->status_path, route->path, route->line,
                         config->status_path, jobs_prefix);
            goto out;
        case 1:
            if (notebuf_size > 0 && notebuf[0] == '\0')
                format_error(notebuf, notebuf_size, file, config->status_path_line,
                             "status_path \"%s\" is inside [route %s] (line %d): the status "
                             "page answers %s and %s..., the route the rest",
                             config->status_path, route->path, route->line,
                             config->status_path, jobs_prefix);
            break;
        default:
            break;
        }
    }
    result = 0;
out:
    free(jobs_prefix);
    return result;
}

/* 0 when path is a directory we may write in; else -1 and why. */
static int check_writable_directory(const char *path, char *why, size_t why_size)
{
    struct stat info;

    if (stat(path, &info) < 0) {
        snprintf(why, why_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(info.st_mode)) {
        snprintf(why, why_size, "%s is not a directory", path);
        return -1;
    }
    if (faccessat(AT_FDCWD, path, W_OK | X_OK, AT_EACCESS) < 0) {
        snprintf(why, why_size, "%s is not writable: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* directory's parent, as mkdir() sees it: "a/b/" -> "a", "b" -> ".". */
static void parent_of(const char *directory, char *parent, size_t size)
{
    char *slash;

    snprintf(parent, size, "%s", directory);
    for (size_t length = strlen(parent); length > 1 && parent[length - 1] == '/'; length--)
        parent[length - 1] = '\0';
    slash = strrchr(parent, '/');
    if (!slash)
        snprintf(parent, size, ".");
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
}

/*
 * What dt_spool_open() and the spool's writes would fail on: the directory
 * (made by dt_spool_open() when missing, one level), then its tmp/ and
 * corrupt/.  0, or -1 and why.
 */
static int spool_problem(const char *directory, char *why, size_t why_size)
{
    static const char *const subdirectories[] = { "tmp", "corrupt" };
    char path[PATH_MAX + 16], reason[2 * PATH_MAX];
    struct stat info;

    if (stat(directory, &info) < 0) {
        if (errno != ENOENT) {
            snprintf(why, why_size, "cannot be used: %s", strerror(errno));
            return -1;
        }
        parent_of(directory, path, sizeof(path));
        if (check_writable_directory(path, reason, sizeof(reason)) < 0) {
            snprintf(why, why_size, "does not exist and cannot be made: %s", reason);
            return -1;
        }
        return 0;
    }
    if (check_writable_directory(directory, reason, sizeof(reason)) < 0) {
        snprintf(why, why_size, "cannot be used: %s", reason);
        return -1;
    }
    for (size_t i = 0; i < ARRAY_LENGTH(subdirectories); i++) {
        snprintf(path, sizeof(path), "%s/%s", directory, subdirectories[i]);
        if (lstat(path, &info) < 0 && errno == ENOENT)
            continue;   /* made at start, in a directory we may write in */
        if (check_writable_directory(path, reason, sizeof(reason)) < 0) {
            snprintf(why, why_size, "cannot be used: %s", reason);
            return -1;
        }
    }
    return 0;
}

int config_check_spool(const struct config *config, char *errbuf, size_t errbuf_size)
{
    char why[3 * PATH_MAX];

    if (!config->spool || spool_problem(config->spool, why, sizeof(why)) == 0)
        return 0;
    if (config->spool_line == CONFIG_LINE_FLAG)
        snprintf(errbuf, errbuf_size, "detachd: --spool \"%s\" %s", config->spool, why);
    else
        format_error(errbuf, errbuf_size, config->path ? config->path : "(config)",
                     config->spool_line, "spool \"%s\" %s", config->spool, why);
    return -1;
}

/* Why path could not be opened to append to without creating anything
 * now: 0 when it could.  An existing file must be writable and not a
 * directory; a missing one needs a writable directory to be made in. */
static int log_file_problem(const char *path, char *why, size_t size)
{
    struct stat info;
    char *copy, *directory;
    int rc = 0;

    if (stat(path, &info) == 0) {
        if (S_ISDIR(info.st_mode)) {
            snprintf(why, size, "is a directory");
            return -1;
        }
        if (access(path, W_OK) < 0) {
            snprintf(why, size, "cannot be written: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(why, size, "cannot be used: %s", strerror(errno));
        return -1;
    }
    copy = strdup(path);
    if (!copy) {
        snprintf(why, size, "cannot be checked: out of memory");
        return -1;
    }
    directory = dirname(copy);
    if (access(directory, W_OK) < 0) {
        snprintf(why, size, "cannot be created in %s: %s", directory, strerror(errno));
        rc = -1;
    }
    free(copy);
    return rc;
}

int config_check_log_file(const struct config *config, char *errbuf, size_t errbuf_size)
{
    char why[PATH_MAX + 128];

    if (!config->log_file || config->log_target != CONFIG_LOG_STDERR ||
        log_file_problem(config->log_file, why, sizeof(why)) == 0)
        return 0;
    format_error(errbuf, errbuf_size, config->path ? config->path : "(config)",
                 config->log_file_line, "log_file \"%s\" %s", config->log_file, why);
    return -1;
}

void config_free(struct config *config)
{
    for (size_t i = 0; i < config->route_count; i++)
        free_route(&config->routes[i]);
    free(config->routes);
    free(config->path);
    free(config->listen);
    free(config->spool);
    free(config->socket_owner);
    free(config->status_path);
    free(config->log_dir);
    free(config->log_file);
    free(config->status_allow);
    config_init_defaults(config);
}
