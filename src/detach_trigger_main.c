/*
 * detach_trigger_main.c - the detach-trigger command: a thin shell over
 * detach_trigger() that turns flags into options and the result into an
 * exit status a script can branch on (0 on 2xx, 1 on another status, 2 on
 * a usage or connection error).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detach.h"

#define PROGRAM "detach-trigger"
#define EXIT_OK 0
#define EXIT_HTTP_STATUS 1
#define EXIT_USAGE 2
/* detach_trigger_options.timeout_ms is unsigned milliseconds. */
#define MAX_TIMEOUT_SECONDS 4000000.0

enum { OPTION_NO_WAIT = 256, OPTION_TIMEOUT, OPTION_FCGI, OPTION_HELP, OPTION_VERSION };

static const struct option long_options[] = {
    {"request", required_argument, NULL, 'X'},
    {"data", required_argument, NULL, 'd'},
    {"cookie", required_argument, NULL, 'b'},
    {"header", required_argument, NULL, 'H'},
    {"no-wait", no_argument, NULL, OPTION_NO_WAIT},
    {"timeout", required_argument, NULL, OPTION_TIMEOUT},
    {"fcgi", required_argument, NULL, OPTION_FCGI},
    {"help", no_argument, NULL, OPTION_HELP},
    {"version", no_argument, NULL, OPTION_VERSION},
    {NULL, 0, NULL, 0},
};

static const char usage_text[] =
    "usage: " PROGRAM " [options] http://host[:port]/path?query\n"
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
    "      --timeout SECONDS       limit for connecting and the answer (default 10)\n"
    "      --fcgi ADDR             speak FastCGI to ADDR (unix:/path, HOST:PORT, [v6]:PORT)\n"
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

int main(int argc, char **argv)
{
    char short_name[3];
    detach_trigger_options opts = {0};
    detach_trigger_result result;
    int status = EXIT_USAGE;

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
        int option = getopt_long(argc, argv, ":X:d:b:H:", long_options, NULL);
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
            break;
        case OPTION_FCGI:
            opts.fcgi = optarg;
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
    status = EXIT_OK;

done:
    free(fields);
    free(cookies);
    free(headers);
    return status;
}
