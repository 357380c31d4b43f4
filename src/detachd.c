/*
 * detachd.c - the daemon: routes from an INI file, each a command run as
 * a detached (or attached) job.
 *
 * Exit status: 0 after a clean stop, 1 on a runtime failure, 2 on a usage
 * or configuration error (the message names file:line).
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "detach.h"
#include "script.h"

#define DEFAULT_CONFIG "/etc/detach/detachd.conf"
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* The one server a signal handler may stop. */
static detach_server *running_server;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    if (running_server)
        detach_server_stop(running_server);
}

static const char usage_text[] =
    "Usage: detachd [OPTION]...\n"
    "Run configured commands as FastCGI jobs: a trigger gets an empty 200 at once\n"
    "and its job runs on, whatever the client does.\n"
    "\n"
    "  -c, --config FILE     INI configuration (default " DEFAULT_CONFIG ")\n"
    "  -l, --listen ADDR     unix:/path, IPv4:port or [IPv6]:port; none: the\n"
    "                        socket inherited on fd 0 or from systemd\n"
    "  -w, --workers N       threads reading requests\n"
    "  -j, --max-jobs N      jobs running at once\n"
    "  -q, --queue N         jobs waiting beyond that; past it: 503\n"
    "  -s, --spool DIR       keep accepted triggers on disk until they ran, so a\n"
    "                        crash or restart loses none\n"
    "      --check-config    check the configuration and the commands, then exit\n"
    "  -V, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "Signals: SIGTERM or SIGINT stop accepting and drain running jobs for up to\n"
    "drain_timeout seconds.  Exit status: 0 clean stop, 1 runtime failure,\n"
    "2 usage or configuration error.\n";

struct overrides {
    const char *listen;
    const char *spool;
    long workers, max_jobs, queue;   /* -1: not given */
};

static long parse_count(const char *option, const char *text, long minimum, long maximum)
{
    char *end;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (errno || *end || end == text || value < minimum || value > maximum) {
        fprintf(stderr, "detachd: %s: \"%s\" is not a number from %ld to %ld\n", option, text,
                minimum, maximum);
        exit(EXIT_USAGE);
    }
    return value;
}

static int build_script_routes(const struct config *config, struct script_route *routes)
{
    for (size_t i = 0; i < config->route_count; i++) {
        const struct config_route *from = &config->routes[i];
        struct script_route *to = &routes[i];

        memset(to, 0, sizeof(*to));
        to->argv = from->argv;
        to->on_shutdown_argv = from->on_shutdown_argv;
        to->ignore_user_abort = from->ignore_user_abort;
        to->time_limit = from->time_limit;
        to->kill_grace = from->kill_grace;
        to->log_dir = config->log_dir;
        if (from->user) {
            struct passwd *entry = getpwnam(from->user);
            if (!entry) {
                fprintf(stderr, "%s:%d: user \"%s\" does not exist\n", config->path, from->line,
                        from->user);
                return -1;
            }
            if (geteuid() != 0)
                fprintf(stderr, "detachd: route %s: not running as root, so jobs run as "
                                "this user, not as \"%s\"\n", from->path, from->user);
            to->user = from->user;
            to->uid = entry->pw_uid;
            to->gid = entry->pw_gid;
        }
    }
    return 0;
}

static int install_signals(void)
{
    struct sigaction stop = { .sa_handler = on_stop_signal };
    struct sigaction ignore = { .sa_handler = SIG_IGN };

    sigemptyset(&stop.sa_mask);
    sigemptyset(&ignore.sa_mask);
    if (sigaction(SIGTERM, &stop, NULL) < 0 || sigaction(SIGINT, &stop, NULL) < 0 ||
        sigaction(SIGPIPE, &ignore, NULL) < 0 || sigaction(SIGHUP, &ignore, NULL) < 0) {
        fprintf(stderr, "detachd: sigaction: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "listen", required_argument, NULL, 'l' },
        { "workers", required_argument, NULL, 'w' },
        { "max-jobs", required_argument, NULL, 'j' },
        { "queue", required_argument, NULL, 'q' },
        { "spool", required_argument, NULL, 's' },
        { "check-config", no_argument, NULL, 'C' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct overrides given = { NULL, NULL, -1, -1, -1 };
    const char *config_path = DEFAULT_CONFIG;
    struct config config;
    struct script_route *script_routes = NULL;
    detach_options server_options;
    detach_server *server = NULL;
    char message[1024];
    int check_only = 0, option, status = EXIT_RUNTIME;

    while ((option = getopt_long(argc, argv, "c:l:w:j:q:s:Vh", options, NULL)) != -1) {
        switch (option) {
        case 'c': config_path = optarg; break;
        case 'l': given.listen = optarg; break;
        case 'w': given.workers = parse_count("--workers", optarg, 1, 1024); break;
        case 'j': given.max_jobs = parse_count("--max-jobs", optarg, 1, 100000); break;
        case 'q': given.queue = parse_count("--queue", optarg, 0, 1000000); break;
        case 's': given.spool = optarg; break;
        case 'C': check_only = 1; break;
        case 'V': printf("detachd %s\n", DETACH_VERSION); return 0;
        case 'h': fputs(usage_text, stdout); return 0;
        default:
            fputs("Try 'detachd --help'.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "detachd: unexpected argument \"%s\"\nTry 'detachd --help'.\n", argv[optind]);
        return EXIT_USAGE;
    }

    config_init_defaults(&config);
    if (config_load(&config, config_path, message, sizeof(message)) < 0) {
        fprintf(stderr, "%s\n", message);
        return EXIT_USAGE;
    }
    if (given.listen) {
        free(config.listen);
        config.listen = strdup(given.listen);
    }
    if (given.spool) {
        free(config.spool);
        config.spool = strdup(given.spool);
    }
    if (given.workers > 0)
        config.workers = (unsigned)given.workers;
    if (given.max_jobs > 0)
        config.max_jobs = (unsigned)given.max_jobs;
    if (given.queue >= 0)
        config.queue = (unsigned)given.queue;
    if (check_only) {
        if (config_check_commands(&config, message, sizeof(message)) < 0) {
            fprintf(stderr, "%s\n", message);
            status = EXIT_USAGE;
            goto out;
        }
        printf("%s: ok, %zu route%s\n", config.path, config.route_count,
               config.route_count == 1 ? "" : "s");
        status = 0;
        goto out;
    }
    if (config.route_count == 0) {
        fprintf(stderr, "%s: no [route ...] section: nothing to serve\n", config.path);
        status = EXIT_USAGE;
        goto out;
    }
    script_routes = calloc(config.route_count, sizeof(*script_routes));
    if (!script_routes) {
        fprintf(stderr, "detachd: out of memory\n");
        goto out;
    }
    if (build_script_routes(&config, script_routes) < 0) {
        status = EXIT_USAGE;
        goto out;
    }

    detach_options_init(&server_options);
    server_options.workers = config.workers;
    server_options.max_jobs = config.max_jobs;
    server_options.queue = config.queue;
    server_options.max_body = config.max_body;
    server_options.drain_timeout = config.drain_timeout;
    server_options.socket_mode = config.socket_mode;
    server_options.read_timeout_ms = config.read_timeout * 1000;
    server_options.spool = config.spool;
    server = detach_server_new(config.listen, &server_options);
    if (!server) {
        fprintf(stderr, "detachd: %s\n", detach_last_error());
        goto out;
    }
    for (size_t i = 0; i < config.route_count; i++) {
        if (detach_route(server, config.routes[i].path, config.routes[i].mode, script_run_job,
                         &script_routes[i]) < 0) {
            fprintf(stderr, "%s:%d: %s\n", config.path, config.routes[i].line, detach_last_error());
            status = EXIT_USAGE;
            goto out;
        }
    }
    running_server = server;
    if (install_signals() < 0)
        goto out;
    if (detach_serve(server) < 0) {
        fprintf(stderr, "detachd: %s\n", detach_last_error());
        goto out;
    }
    status = 0;
out:
    running_server = NULL;
    detach_server_free(server);
    free(script_routes);
    config_free(&config);
    return status;
}
