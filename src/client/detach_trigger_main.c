/*
 * detach_trigger_main.c - the detach-trigger command: a thin shell over
 * detach_trigger() that turns flags into options and the result into an
 * exit status a script can branch on (0 on 2xx, 1 on another status, 2 on
 * a usage or connection error).
 *
 * With --wait-done it then follows the job on the status page
 * (<status>/jobs/<id>, every 200 ms) until it ends, drawing its progress,
 * and exits 0 only when the job succeeded.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "detach_trigger.h"

#define PROGRAM "detach-trigger"
#define EXIT_OK 0
#define EXIT_HTTP_STATUS 1
#define EXIT_JOB_FAILED 1
#define EXIT_USAGE 2
#define DEFAULT_STATUS_PATH "/detach-status"
#define POLL_INTERVAL_MS 200
#define POLL_REQUEST_TIMEOUT_MS 10000u
#define BAR_WIDTH 20
/* detach_trigger_options.timeout_ms is unsigned milliseconds. */
#define MAX_TIMEOUT_SECONDS 4000000.0

enum { OPTION_NO_WAIT = 256, OPTION_TIMEOUT, OPTION_FCGI, OPTION_WAIT_DONE, OPTION_STATUS,
       OPTION_HELP, OPTION_VERSION, OPTION_CACERT };

static const struct option long_options[] = {
    {"request", required_argument, NULL, 'X'},
    {"data", required_argument, NULL, 'd'},
    {"cookie", required_argument, NULL, 'b'},
    {"header", required_argument, NULL, 'H'},
    {"no-wait", no_argument, NULL, OPTION_NO_WAIT},
    {"timeout", required_argument, NULL, OPTION_TIMEOUT},
    {"fcgi", required_argument, NULL, OPTION_FCGI},
    {"wait-done", no_argument, NULL, OPTION_WAIT_DONE},
    {"status", required_argument, NULL, OPTION_STATUS},
    {"user", required_argument, NULL, 'u'},
    {"cacert", required_argument, NULL, OPTION_CACERT},
    {"insecure", no_argument, NULL, 'k'},
    {"help", no_argument, NULL, OPTION_HELP},
    {"version", no_argument, NULL, OPTION_VERSION},
    {NULL, 0, NULL, 0},
};

static const char usage_text[] =
    "usage: " PROGRAM " [options] http[s]://host[:port]/path?query\n"
    "       " PROGRAM " --fcgi unix:/path|HOST:PORT [options] /path?query\n"
    "\n"
    "Sends a trigger request, prints the job id (X-Detach-Job) and exits 0 on a\n"
    "2xx status, 1 on any other status, 2 on a usage or connection error.\n"
    "\n"
    "  -X, --request METHOD        request method (default GET, or POST with -d)\n"
    "  -d, --data NAME=VALUE       form field; makes a form-encoded POST (repeatable)\n"
    "  -b, --cookie NAME=VALUE     cookie to send (repeatable)\n"
    "  -H, --header 'NAME: VALUE'  extra request header (repeatable)\n"
    "      --no-wait               return as soon as the request is sent\n"
    "      --timeout SECONDS       limit for connecting and the answer (default 10);\n"
    "                              given with --wait-done, also the limit for the\n"
    "                              whole wait (without it, the wait lasts as long as\n"
    "                              the job runs)\n"
    "      --fcgi ADDR             speak FastCGI to ADDR (unix:/path, HOST:PORT, [v6]:PORT)\n"
    "      --wait-done             wait until the job ends, showing its progress; exit 0\n"
    "                              if it succeeded, 1 if it failed\n"
    "      --status URL            the status page to follow (default: /detach-status on\n"
    "                              the same server or FastCGI address)\n"
    "  -u, --user NAME:PASSWORD    HTTP basic auth (or user:password@ in the URL)\n"
    "      --cacert FILE           trust the certificates in FILE (PEM) for https://\n"
    "  -k, --insecure              do not verify the server's certificate\n"
    "\n"
    "HTTP(S) follows redirects and takes proxies from the environment (http_proxy,\n"
    "https_proxy, no_proxy), as curl does.\n"
    "      --help                  show this help and exit\n"
    "      --version               show the version and exit\n";

/* Every failure: one "detach-trigger: ..." line and exit status 2. */
static int report_error(const char *message, const char *detail)
{
    fprintf(stderr, PROGRAM ": %s%s\n", message, detail != NULL ? detail : "");
    return EXIT_USAGE;
}

/* Seconds, fractions allowed, as a positive count of milliseconds. */
static int parse_timeout(const char *text, unsigned *timeout_ms)
{
    char *end;

    errno = 0;
    double seconds = strtod(text, &end);
    /* Written this way round so NaN and infinity fail too. */
    if (errno != 0 || end == text || *end != '\0' ||
        !(seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS))
        return -1;
    /* Rounded up, so a tiny timeout is still one millisecond, not "default". */
    double milliseconds = seconds * 1000.0;
    unsigned whole = (unsigned)milliseconds;
    *timeout_ms = whole < milliseconds ? whole + 1 : whole;
    return 0;
}

/* Prints the help on stdout; a failed write is still an error to report. */
static int print_and_exit_status(const char *text)
{
    if (fputs(text, stdout) == EOF || fflush(stdout) == EOF)
        return report_error("cannot write to stdout: ", strerror(errno));
    return EXIT_OK;
}

/*
 * getopt reports a bad short option in optopt, which argv alone cannot
 * show when options are grouped ("-vZ"); a bad long one is argv[optind-1].
 */
static const char *offending_option(char **argv, char short_name[3])
{
    if (optopt > 0 && optopt < 256) {
        short_name[0] = '-';
        short_name[1] = (char)optopt;
        short_name[2] = '\0';
        return short_name;
    }
    return argv[optind - 1];
}

/* ---- --wait-done ---- */

static uint64_t dt_monotonic_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* Where the job's JSON is: the URL (or, with fcgi, the path) to GET. */
static char *job_status_url(const char *trigger_url, const char *fcgi, const char *status,
                            const char *job_id)
{
    const char *base = status != NULL ? status : DEFAULT_STATUS_PATH;
    char *url = NULL;
    int n;

    if (strchr(base, '?') != NULL || strchr(base, '#') != NULL) {
        report_error("--status takes a URL or path without a query: ", base);
        return NULL;
    }
    size_t length = strlen(base);
    while (length > 1 && base[length - 1] == '/')
        length--;
    if (base[0] == '/' && fcgi == NULL) {
        /* A path on the server the trigger went to (scheme, user and port kept). */
        char *path;
        if (asprintf(&path, "%.*s/jobs/%s", (int)length, base, job_id) < 0) {
            report_error("out of memory", NULL);
            return NULL;
        }
        url = detach_trigger_url_with_path(trigger_url, path);
        free(path);
        if (url == NULL)
            report_error(detach_last_error(), NULL);
        return url;
    } else if (base[0] == '/' || strncmp(base, "http://", 7) == 0 ||
               strncmp(base, "https://", 8) == 0) {
        n = asprintf(&url, "%.*s/jobs/%s", (int)length, base, job_id);
    } else {
        report_error("--status wants an http(s):// URL or a path starting with '/': ", base);
        return NULL;
    }
    if (n < 0) {
        report_error("out of memory", NULL);
        return NULL;
    }
    return url;
}

/* A message from the job, made safe for a terminal: no escape sequences. */
static void printable(char *text)
{
    for (unsigned char *p = (unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

static int terminal_columns(void)
{
    struct winsize size;

    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col >= 20)
        return size.ws_col;
    return 80;
}

/* "[#####-----]  50% message": redrawn in place on a terminal, one line
 * per change otherwise. */
static void show_progress(const detach_job_status *job, int tty)
{
    char bar[BAR_WIDTH + 1];
    char line[512];
    int percent = job->progress < 0 ? 0 : job->progress;
    int filled = percent * BAR_WIDTH / 100;
    char message[DETACH_JOB_STATUS_MESSAGE_SIZE];

    snprintf(message, sizeof message, "%s", job->message);
    printable(message);
    if (!tty) {
        fprintf(stderr, "%d%%%s%s\n", percent, message[0] ? " " : "", message);
        return;
    }
    memset(bar, '#', (size_t)filled);
    memset(bar + filled, '-', (size_t)(BAR_WIDTH - filled));
    bar[BAR_WIDTH] = '\0';
    snprintf(line, sizeof line, "[%s] %3d%%%s%s%s", bar, percent,
             job->state[0] == 'q' ? " (queued)" : "", message[0] ? " " : "", message);
    /* A line that wraps could not be redrawn with \r: cut it to the width. */
    int columns = terminal_columns() - 1;
    if ((int)strlen(line) > columns)
        line[columns] = '\0';
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
}

static int job_succeeded(const char *job_id, const detach_job_status *job)
{
    static const char *const status_names[] = { "normal", "aborted", "timeout",
                                                "aborted and timeout" };

    if (job->exit_signal >= 0) {
        fprintf(stderr, PROGRAM ": job %s failed: killed by signal %d", job_id, job->exit_signal);
    } else if (job->exit_code > 0) {
        fprintf(stderr, PROGRAM ": job %s failed: exit code %d", job_id, job->exit_code);
    } else if (job->connection_status != 0) {
        fprintf(stderr, PROGRAM ": job %s failed", job_id);
    } else {
        return 1;
    }
    if (job->connection_status > 0)
        fprintf(stderr, " (connection status %d, %s)", job->connection_status,
                status_names[job->connection_status & 3]);
    fputc('\n', stderr);
    return 0;
}

/*
 * Polls the job until it ends.  timeout_ms: 0 for no bound, else the
 * whole wait's, from started_ms.
 */
static int wait_done(const char *status_url, const detach_trigger_options *opts,
                     const char *job_id, unsigned timeout_ms, uint64_t started_ms)
{
    detach_job_status last = { .progress = -2 };
    int tty = isatty(STDERR_FILENO), drawn = 0, polls = 0;

    for (;; polls++) {
        detach_job_status job;
        int status;
        unsigned request_timeout = POLL_REQUEST_TIMEOUT_MS;

        if (timeout_ms) {
            uint64_t spent = dt_monotonic_ms() - started_ms;
            if (spent >= timeout_ms) {
                if (drawn)
                    fputc('\n', stderr);
                fprintf(stderr, PROGRAM ": job %s has not ended after --timeout\n", job_id);
                return EXIT_JOB_FAILED;
            }
            if (timeout_ms - spent < request_timeout)
                request_timeout = (unsigned)(timeout_ms - spent);
        }
        /* In FastCGI mode an http(s):// --status is fetched over HTTP.  -1: no
         * answer, or a 200 that is not a job's JSON (EPROTO). */
        if (detach_trigger_job_status(status_url, opts, request_timeout, &status, &job) < 0) {
            if (drawn)
                fputc('\n', stderr);
            if (errno == ETIMEDOUT && timeout_ms && dt_monotonic_ms() - started_ms >= timeout_ms) {
                fprintf(stderr, PROGRAM ": job %s has not ended after --timeout\n", job_id);
                return EXIT_JOB_FAILED;
            }
            fprintf(stderr, PROGRAM ": %s: %s\n", status_url, detach_last_error());
            return EXIT_USAGE;
        }
        if (status != 200) {
            if (drawn)
                fputc('\n', stderr);
            if (status == 404 && polls > 0) {
                fprintf(stderr, PROGRAM ": job %s is no longer on the status page\n", job_id);
                return EXIT_JOB_FAILED;
            }
            fprintf(stderr, PROGRAM ": %s: HTTP %d%s\n", status_url, status,
                    status == 403 ? " (not in status_allow?)"
                    : status == 404 ? " (is status_path set? see --status)" : "");
            return EXIT_USAGE;
        }
        int ended = strcmp(job.state, "ended") == 0;
        int changed = job.progress != last.progress || strcmp(job.message, last.message) != 0;
        /* A terminal gets the bar redrawn; a log gets a line per change. */
        if (tty ? (job.progress >= 0 || !ended) : (changed && job.progress >= 0)) {
            show_progress(&job, tty);
            drawn = tty;
        }
        if (ended) {
            if (drawn)
                fputc('\n', stderr);
            return job_succeeded(job_id, &job) ? EXIT_OK : EXIT_JOB_FAILED;
        }
        last = job;
        poll(NULL, 0, POLL_INTERVAL_MS);
    }
}

int main(int argc, char **argv)
{
    char short_name[3];
    detach_trigger_options opts;
    detach_trigger_result result;
    int status = EXIT_USAGE, wait_for_end = 0, timeout_given = 0;
    const char *status_base = NULL;
    uint64_t started_ms = dt_monotonic_ms();

    detach_trigger_options_init(&opts);
    /* No option can repeat more than argc times, so these never grow. */
    const char **fields = calloc((size_t)argc, sizeof *fields);
    const char **cookies = calloc((size_t)argc, sizeof *cookies);
    const char **headers = calloc((size_t)argc, sizeof *headers);
    if (fields == NULL || cookies == NULL || headers == NULL) {
        status = report_error("out of memory", NULL);
        goto done;
    }

    opterr = 0;  /* our own messages keep the "detach-trigger: " form */
    for (;;) {
        int option = getopt_long(argc, argv, ":X:d:b:H:u:k", long_options, NULL);
        if (option == -1)
            break;
        switch (option) {
        case 'X':
            opts.method = optarg;
            break;
        case 'd':
            fields[opts.field_count++] = optarg;
            break;
        case 'b':
            if (strchr(optarg, '=') == NULL) {
                status = report_error("cookies are NAME=VALUE: ", optarg);
                goto done;
            }
            cookies[opts.cookie_count++] = optarg;
            break;
        case 'H':
            if (strchr(optarg, ':') == NULL) {
                status = report_error("headers are 'NAME: VALUE': ", optarg);
                goto done;
            }
            headers[opts.header_count++] = optarg;
            break;
        case OPTION_NO_WAIT:
            opts.no_wait = 1;
            break;
        case OPTION_TIMEOUT:
            if (parse_timeout(optarg, &opts.timeout_ms) < 0) {
                status = report_error("--timeout wants a positive number of seconds: ", optarg);
                goto done;
            }
            timeout_given = 1;
            break;
        case OPTION_WAIT_DONE:
            wait_for_end = 1;
            break;
        case OPTION_STATUS:
            status_base = optarg;
            break;
        case OPTION_FCGI:
            opts.fcgi = optarg;
            break;
        case 'u':
            if (strchr(optarg, ':') == NULL) {
                status = report_error("--user is NAME:PASSWORD: ", optarg);
                goto done;
            }
            opts.user = optarg;
            break;
        case OPTION_CACERT:
            opts.ca_file = optarg;
            break;
        case 'k':
            opts.insecure = 1;
            break;
        case OPTION_HELP:
            status = print_and_exit_status(usage_text);
            goto done;
        case OPTION_VERSION:
            status = print_and_exit_status(PROGRAM " " DETACH_VERSION "\n");
            goto done;
        case ':':
            status = report_error("missing value for ", offending_option(argv, short_name));
            goto done;
        default:
            status = report_error("unknown option ", offending_option(argv, short_name));
            goto done;
        }
    }
    if (optind >= argc) {
        status = report_error("no URL given (see --help)", NULL);
        goto done;
    }
    if (optind + 1 < argc) {
        status = report_error("more than one URL: ", argv[optind + 1]);
        goto done;
    }
    if (wait_for_end && opts.no_wait) {
        status = report_error("--wait-done needs the job id: it cannot go with --no-wait", NULL);
        goto done;
    }
    if (status_base != NULL && !wait_for_end) {
        status = report_error("--status goes with --wait-done", NULL);
        goto done;
    }
    opts.fields = fields;
    opts.cookies = cookies;
    opts.headers = headers;

    if (detach_trigger(argv[optind], &opts, &result) < 0) {
        status = report_error(detach_last_error(), NULL);
        goto done;
    }
    if (opts.no_wait) {
        status = EXIT_OK;
        goto done;
    }
    if (result.status < 200 || result.status > 299) {
        fprintf(stderr, PROGRAM ": HTTP %d\n", result.status);
        status = EXIT_HTTP_STATUS;
        goto done;
    }
    if (result.job_id[0] != '\0' && (printf("%s\n", result.job_id) < 0 || fflush(stdout) == EOF)) {
        status = report_error("cannot write to stdout: ", strerror(errno));
        goto done;
    }
    if (wait_for_end) {
        char *url;
        if (result.job_id[0] == '\0') {
            status = report_error("no X-Detach-Job in the answer: nothing to wait for", NULL);
            goto done;
        }
        url = job_status_url(argv[optind], opts.fcgi, status_base, result.job_id);
        if (url == NULL)
            goto done;   /* status is EXIT_USAGE; the message is out */
        status = wait_done(url, &opts, result.job_id, timeout_given ? opts.timeout_ms : 0,
                           started_ms);
        free(url);
        goto done;
    }
    status = EXIT_OK;

done:
    free(fields);
    free(cookies);
    free(headers);
    return status;
}
