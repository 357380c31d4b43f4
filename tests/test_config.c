/*
 * test_config.c - detachd's config file: defaults, a full valid file, and
 * every kind of error with the exact "FILE:LINE: message" a user sees.
 *
 * Each test gets its own mkdtemp directory, removed afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"

struct fixture {
    char dir[64];
    char path[128]; /* the config file */
};

static int setup(void **state)
{
    struct fixture *fixture = calloc(1, sizeof(*fixture));

    if (!fixture)
        return -1;
    snprintf(fixture->dir, sizeof(fixture->dir), "/tmp/test_config.XXXXXX");
    if (!mkdtemp(fixture->dir)) {
        free(fixture);
        return -1;
    }
    snprintf(fixture->path, sizeof(fixture->path), "%s/detachd.conf", fixture->dir);
    *state = fixture;
    return 0;
}

/* The directory is flat: files, and at most empty directories. */
static int teardown(void **state)
{
    struct fixture *fixture = *state;
    DIR *dir = opendir(fixture->dir);
    struct dirent *entry;
    char path[512];

    while (dir && (entry = readdir(dir))) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", fixture->dir, entry->d_name);
        if (unlink(path) < 0 && errno == EISDIR)
            rmdir(path);
    }
    if (dir)
        closedir(dir);
    rmdir(fixture->dir);
    free(fixture);
    return 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *file = fopen(path, "w");

    assert_non_null(file);
    assert_int_equal(fputs(text, file) >= 0, 1);
    assert_int_equal(fclose(file), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void load_ok(struct fixture *fixture, const char *text, struct config *config)
{
    char error[1024] = "";

    write_file(fixture->path, text, 0644);
    config_init_defaults(config);
    if (config_load(config, fixture->path, error, sizeof(error)) != 0)
        fail_msg("unexpected error: %s", error);
}

static void expect_error(struct fixture *fixture, const char *text, int line, const char *message)
{
    struct config config;
    char error[1024], expected[1024];

    write_file(fixture->path, text, 0644);
    config_init_defaults(&config);
    assert_int_equal(config_load(&config, fixture->path, error, sizeof(error)), -1);
    snprintf(expected, sizeof(expected), "%s:%d: %s", fixture->path, line, message);
    assert_string_equal(error, expected);
    /* A failed load leaves the config as it was. */
    assert_null(config.path);
    assert_int_equal(config.route_count, 0);
    config_free(&config);
}

/*
 * Configurations that must fail, one row each: the group (the test that
 * runs it), the file's text, the line the message names, the message.
 */
static const struct error_case {
    const char *group, *text;
    int line;
    const char *message;
} error_cases[] = {
    { "unknown_key", "[detachd]\nworkers = 2\n\nwokers = 4\n", 4,
             "unknown key \"wokers\" in [detachd]" },
    { "unknown_key", "[route /jobs/report]\ncommand = /bin/true\ntimelimit = 3\n", 3,
             "unknown key \"timelimit\" in [route /jobs/report]" },
    { "unknown_key", "; top\nworkers = 4\n", 2,
             "key \"workers\" comes before any section ([detachd] or [route PATH])" },
    { "unknown_section", "[detachd]\nworkers = 2\n[server]\n", 3, "unknown section [server]" },
    { "unknown_section", "[routes /x]\n", 1, "unknown section [routes /x]" },
    { "unknown_section", "[detachd]\n[route]\n", 2,
             "[route] needs a path, as in [route /jobs/report]" },
    { "unknown_section", "[route jobs]\n", 1, "route path \"jobs\" must start with '/'" },
    { "unknown_section", "[route /a b]\n", 1, "route path \"/a b\" contains whitespace" },
    { "unknown_section", "[route /a*]\n", 1,
             "route path \"/a*\": '*' may only end it, as in \"/jobs/*\"" },
    { "unknown_section", "[route /a?b]\n", 1, "route path \"/a?b\" must not contain '?' or '#'" },
    { "unknown_section", "[detachd] junk\n", 1, "unexpected text after the section header" },
    { "unknown_section", "[detachd]\n[detachd]\n", 2, "duplicate section [detachd]" },
    { "bad_number", "[detachd]\nworkers = 4x\n", 2, "bad number \"4x\" for workers" },
    { "bad_number", "[detachd]\nworkers = -1\n", 2, "bad number \"-1\" for workers" },
    { "bad_number", "[detachd]\nqueue = +5\n", 2, "bad number \"+5\" for queue" },
    { "bad_number", "[detachd]\n\nmax_jobs = 1.5\n", 3, "bad number \"1.5\" for max_jobs" },
    { "bad_number", "[route /x]\ncommand = /bin/true\ntime_limit = 5 s\n", 3,
             "bad number \"5 s\" for time_limit" },
    { "bad_number", "[detachd]\nmax_body = 1MB\n", 2,
             "bad size \"1MB\" for max_body (a number with an optional K, M or G)" },
    { "bad_number", "[detachd]\nsocket_mode = 0680\n", 2,
             "bad socket_mode \"0680\" (octal permissions, as in 0660)" },
    { "bad_number", "[detachd]\nsocket_mode = 01777\n", 2,
             "bad socket_mode \"01777\" (octal permissions, as in 0660)" },
    { "bad_number", "[detachd]\nworkers =\n", 2, "key \"workers\" has no value" },
    { "out_of_range", "[detachd]\nworkers = 0\n", 2, "workers = 0 is out of range (1..1024)" },
    { "out_of_range", "[detachd]\nworkers = 1025\n", 2,
             "workers = 1025 is out of range (1..1024)" },
    { "out_of_range", "[detachd]\nmax_jobs = 100001\n", 2,
             "max_jobs = 100001 is out of range (1..100000)" },
    { "out_of_range", "[detachd]\nqueue = 1000001\n", 2,
             "queue = 1000001 is out of range (0..1000000)" },
    { "out_of_range", "[detachd]\ndrain_timeout = 99999999999999999999999\n", 2,
             "drain_timeout = 99999999999999999999999 is out of range (0..31536000)" },
    { "out_of_range", "[route /x]\nkill_grace = 31536001\n", 2,
             "kill_grace = 31536001 is out of range (0..31536000)" },
    { "out_of_range", "[detachd]\nmax_body = 2G\n", 2,
             "max_body = 2G is out of range (1..1073741824)" },
    { "out_of_range", "[detachd]\nmax_body = 0\n", 2, "max_body = 0 is out of range (1..1073741824)" },
    /* Removed with the private job allocator: a config naming it is told so. */
    { "out_of_range", "[detachd]\njob_memory = 256M\n", 2, "unknown key \"job_memory\" in [detachd]" },
    { "bad_boolean_and_mode", "[route /x]\ncommand = /bin/true\nignore_user_abort = maybe\n", 3,
             "bad boolean \"maybe\" for ignore_user_abort (on/off, true/false, yes/no, 1/0)" },
    { "bad_boolean_and_mode", "[route /x]\nmode = detached\n", 2,
             "bad mode \"detached\" (trigger or attached)" },
    { "duplicates", "[detachd]\nworkers = 2\nqueue = 3\nworkers = 2\n", 4,
             "duplicate key \"workers\" in [detachd] (first at line 2)" },
    { "duplicates", "[route /x]\ncommand = /bin/true\ncommand = /bin/false\n", 3,
             "duplicate key \"command\" in [route /x] (first at line 2)" },
    { "duplicates", "[route /x]\ncommand = /bin/true\n\n[route /y]\ncommand = /bin/true\n"
             "[route /x]   ; again\ncommand = /bin/true\n",
             6, "duplicate route \"/x\" (first at line 1)" },
    { "missing_command", "[detachd]\n\n[route /x]\nmode = attached\n\n[route /y]\ncommand = /bin/true\n",
             3, "[route /x] has no command" },
    /* the last section is checked at the end of the file */
    { "missing_command", "[route /y]\ncommand = /bin/true\n[route /z]\n", 3,
             "[route /z] has no command" },
    { "relative_command", "[route /x]\ncommand = report --monthly\n", 2,
             "command \"report\" must be an absolute path" },
    { "relative_command", "[route /x]\ncommand = /bin/true\non_shutdown = ./notify\n", 3,
             "on_shutdown \"./notify\" must be an absolute path" },
    { "unknown_user", "[route /x]\ncommand = /bin/true\n\nuser = no_such_user_for_detach\n", 4,
             "unknown user \"no_such_user_for_detach\"" },
    { "syntax_error", "[detachd]\nworkers = 2\njust some words\nqueue = 1\n", 3,
             "syntax error" },
    /* no continuation lines: an indented stray line is an error at its line */
    { "syntax_error", "[route /x]\ncommand = /bin/echo\n    --more\n", 3, "syntax error" },
    { "syntax_error", "[detachd]\n\n[route /x\n", 3, "syntax error" },
    { "syntax_error", "[detachd]\n[route /x ; comment]\n", 2, "syntax error" },
    { "command_quoting", "[route /q]\ncommand = /bin/echo \"open\n", 2,
             "bad command: unterminated \" quote" },
    { "command_quoting", "[route /q]\ncommand = /bin/echo 'open\n", 2,
             "bad command: unterminated ' quote" },
    { "command_quoting", "[route /q]\ncommand = /bin/echo \\\n", 2,
             "bad command: backslash at the end" },
    { "queue_bytes", "[detachd]\nqueue_bytes = 0\n", 2,
             "queue_bytes = 0 is out of range (1..1099511627776)" },
    { "log_keys", "[detachd]\nlog_format = xml\n", 2, "bad log_format \"xml\" (logfmt or json)" },
    { "log_keys", "[detachd]\nlog = file\n", 2,
             "bad log \"file\" (stderr, syslog or journal)" },
};

/* Every row of the group, each checked by expect_error(); the row's text
 * is printed first when one fails, so the case is named. */
static void run_errors(struct fixture *fixture, const char *group)
{
    int ran = 0;

    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        if (strcmp(error_cases[i].group, group) != 0)
            continue;
        print_message("[ CASE     ] %s #%d\n", group, ran);
        expect_error(fixture, error_cases[i].text, error_cases[i].line, error_cases[i].message);
        ran++;
    }
    assert_true(ran > 0);
}

static void test_defaults(void **state)
{
    struct config config;

    config_init_defaults(&config);
    assert_null(config.path);
    assert_null(config.listen);
    assert_int_equal(config.workers, 4);
    assert_int_equal(config.max_jobs, 64);
    assert_int_equal(config.queue, 1024);
    assert_int_equal(config.max_body, 1024 * 1024);
    assert_int_equal(config.drain_timeout, 30);
    assert_int_equal(config.socket_mode, 0660);
    assert_null(config.spool);
    assert_null(config.status_path);
    assert_null(config.log_dir);
    assert_int_equal(config.read_timeout, 10);
    assert_null(config.routes);
    assert_int_equal(config.route_count, 0);
    config_free(&config);
    config_free(&config);
}

static void test_empty_file_gives_defaults(void **state)
{
    struct config config;

    load_ok(*state, "; nothing but a comment\n# and another\n\n", &config);
    assert_string_equal(config.path, ((struct fixture *)*state)->path);
    assert_int_equal(config.workers, 4);
    assert_int_equal(config.route_count, 0);
    config_free(&config);
}

static const char full_config[] =
    "[detachd]\n"
    "listen = unix:/run/detach/detachd.sock\n"
    "workers = 8                  ; threads accepting FastCGI requests\n"
    "max_jobs = 100               ; jobs running at once\n"
    "queue = 0                    ; jobs waiting beyond that; past it: 503\n"
    "spool = /var/spool/detach    ; optional\n"
    "status_path = /detach-status ; optional\n"
    "max_body = 2M\n"
    "drain_timeout = 45\n"
    "socket_mode = 0600\n"
    "log_dir = /var/log/detach\n"
    "read_timeout = 20\n"
    "\n"
    "[route /jobs/report]         ; exact path; \"/jobs/*\" matches a prefix\n"
    "command = /usr/local/bin/report --monthly  ; argv, run without a shell\n"
    "mode = trigger               ; trigger (default) | attached\n"
    "ignore_user_abort = off\n"
    "time_limit = 300             ; seconds, 0 = none\n"
    "kill_grace = 7\n"
    "on_shutdown = /usr/local/bin/notify-done --job   ; runs once\n"
    "user = nobody                ; optional\n"
    "\n"
    "[route /jobs/*]\n"
    "command = /usr/local/bin/any\n"
    "mode = attached\n";

static void test_full_config(void **state)
{
    struct config config;
    struct config_route *route;

    load_ok(*state, full_config, &config);
    assert_string_equal(config.listen, "unix:/run/detach/detachd.sock");
    assert_int_equal(config.workers, 8);
    assert_int_equal(config.max_jobs, 100);
    assert_int_equal(config.queue, 0);
    assert_string_equal(config.spool, "/var/spool/detach");
    assert_string_equal(config.status_path, "/detach-status");
    assert_int_equal(config.max_body, 2 * 1024 * 1024);
    assert_int_equal(config.drain_timeout, 45);
    assert_int_equal(config.socket_mode, 0600);
    assert_string_equal(config.log_dir, "/var/log/detach");
    assert_int_equal(config.read_timeout, 20);
    assert_int_equal(config.route_count, 2);

    route = &config.routes[0];
    assert_string_equal(route->path, "/jobs/report");
    assert_int_equal(route->line, 14);
    assert_string_equal(route->argv[0], "/usr/local/bin/report");
    assert_string_equal(route->argv[1], "--monthly");
    assert_null(route->argv[2]);
    assert_int_equal(route->mode, DETACH_TRIGGER);
    assert_int_equal(route->ignore_user_abort, 0);
    assert_int_equal(route->time_limit, 300);
    assert_int_equal(route->kill_grace, 7);
    assert_string_equal(route->on_shutdown_argv[0], "/usr/local/bin/notify-done");
    assert_string_equal(route->on_shutdown_argv[1], "--job");
    assert_null(route->on_shutdown_argv[2]);
    assert_string_equal(route->user, "nobody");

    route = &config.routes[1];
    assert_string_equal(route->path, "/jobs/*");
    assert_int_equal(route->line, 23);
    assert_int_equal(route->mode, DETACH_ATTACHED);
    assert_int_equal(route->ignore_user_abort, 0);
    assert_int_equal(route->time_limit, 0);
    assert_int_equal(route->kill_grace, 5);
    assert_null(route->on_shutdown_argv);
    assert_null(route->user);
    config_free(&config);
    assert_null(config.routes);
    config_free(&config);
}

static void test_route_defaults_follow_mode(void **state)
{
    struct config config;

    load_ok(*state,
            "[route /t]\ncommand = /bin/true\n"
            "[route /a]\ncommand = /bin/true\nmode = attached\n"
            "[route /a2]\nmode = ATTACHED\nignore_user_abort = yes\ncommand = /bin/true\n",
            &config);
    assert_int_equal(config.route_count, 3);
    assert_int_equal(config.routes[0].ignore_user_abort, 1);
    assert_int_equal(config.routes[1].ignore_user_abort, 0);
    assert_int_equal(config.routes[2].ignore_user_abort, 1);
    config_free(&config);
}

static void test_values(void **state)
{
    struct config config;

    load_ok(*state,
            "\xEF\xBB\xBF[detachd]\r\n"
            "listen = 127.0.0.1:9000\r\n"
            "max_body = 512k\r\n"
            "socket_mode = 660\r\n"
            "   workers=1024\r\n"
            "max_jobs = 100000\r\n"
            "queue = 1000000\r\n"
            "drain_timeout = 0\r\n",
            &config);
    assert_string_equal(config.listen, "127.0.0.1:9000");
    assert_int_equal(config.max_body, 512 * 1024);
    assert_int_equal(config.socket_mode, 0660);
    assert_int_equal(config.workers, 1024);
    assert_int_equal(config.max_jobs, 100000);
    assert_int_equal(config.queue, 1000000);
    assert_int_equal(config.drain_timeout, 0);
    config_free(&config);

    load_ok(*state, "[detachd]\nlisten = [::1]:9000\nmax_body = 1G\n", &config);
    assert_string_equal(config.listen, "[::1]:9000");
    assert_int_equal(config.max_body, 1024 * 1024 * 1024);
    config_free(&config);
}

static void test_long_route_path_kept_whole(void **state)
{
    static const char path[] =
        "/a/route/path/well/over/the/fifty/bytes/inih/keeps/of/a/section/name";
    char text[512];
    struct config config;

    snprintf(text, sizeof(text), "[route %s]\ncommand = /bin/true\n", path);
    load_ok(*state, text, &config);
    assert_string_equal(config.routes[0].path, path);
    config_free(&config);
}

static void test_command_quoting(void **state)
{
    struct config config;
    char **argv;

    load_ok(*state,
            "[route /q]\n"
            "command = /bin/echo \"hello world\" 'it''s' a\\ b \"q\\\"x\\\\\" '' 'a;b' x;y"
            " \"sin'gle\" 'back\\slash'\n",
            &config);
    argv = config.routes[0].argv;
    assert_string_equal(argv[0], "/bin/echo");
    assert_string_equal(argv[1], "hello world");
    assert_string_equal(argv[2], "its");
    assert_string_equal(argv[3], "a b");
    assert_string_equal(argv[4], "q\"x\\");
    assert_string_equal(argv[5], "");
    assert_string_equal(argv[6], "a;b");
    assert_string_equal(argv[7], "x;y");
    assert_string_equal(argv[8], "sin'gle");
    assert_string_equal(argv[9], "back\\slash");
    assert_null(argv[10]);
    config_free(&config);

    load_ok(*state, "[route /q]\ncommand = \"/opt/my tools/run\"\n", &config);
    assert_string_equal(config.routes[0].argv[0], "/opt/my tools/run");
    assert_null(config.routes[0].argv[1]);
    config_free(&config);
    run_errors(*state, "command_quoting");
}

static void test_longest_line_accepted(void **state)
{
    char *text = malloc(CONFIG_MAX_LINE + 64);
    struct config config;
    int prefix;

    assert_non_null(text);
    prefix = sprintf(text, "[route /x]\n");
    /* exactly CONFIG_MAX_LINE characters on line 2 */
    memcpy(text + prefix, "command = /", 11);
    memset(text + prefix + 11, 'a', CONFIG_MAX_LINE - 11);
    strcpy(text + prefix + CONFIG_MAX_LINE, "\n");
    load_ok(*state, text, &config);
    assert_int_equal(strlen(config.routes[0].argv[0]), CONFIG_MAX_LINE - 10);
    config_free(&config);
    free(text);
}

static void test_too_long_line(void **state)
{
    char *text = malloc(CONFIG_MAX_LINE + 64);
    char message[128];
    int prefix;

    assert_non_null(text);
    prefix = sprintf(text, "[route /x]\ncommand = /bin/true\n");
    memcpy(text + prefix, "user = ", 7);
    memset(text + prefix + 7, 'u', CONFIG_MAX_LINE + 1 - 7);
    strcpy(text + prefix + CONFIG_MAX_LINE + 1, "\nbad line\n");
    snprintf(message, sizeof(message), "the line is too long (at most %d characters)",
             CONFIG_MAX_LINE);
    expect_error(*state, text, 3, message);
    free(text);
}

static void test_unknown_key(void **state)
{
    run_errors(*state, "unknown_key");
}

static void test_unknown_section(void **state)
{
    run_errors(*state, "unknown_section");
}

static void test_bad_number(void **state)
{
    run_errors(*state, "bad_number");
}

static void test_out_of_range(void **state)
{
    run_errors(*state, "out_of_range");
}

static void test_bad_boolean_and_mode(void **state)
{
    run_errors(*state, "bad_boolean_and_mode");
}

static void test_duplicates(void **state)
{
    run_errors(*state, "duplicates");
}

static void test_missing_command(void **state)
{
    run_errors(*state, "missing_command");
}

static void test_relative_command(void **state)
{
    run_errors(*state, "relative_command");
}

static void test_bad_listen(void **state)
{
    static const struct {
        const char *value, *message;
    } cases[] = {
        { "localhost:9000", "bad IPv4 address (IPv6 goes in brackets, as in [::1]:9000)" },
        { "::1:9000", "bad IPv4 address (IPv6 goes in brackets, as in [::1]:9000)" },
        { "127.0.0.1:0", "the port must be a number from 1 to 65535" },
        { "127.0.0.1:65536", "the port must be a number from 1 to 65535" },
        { "127.0.0.1:", "the port must be a number from 1 to 65535" },
        { "127.0.0.1", "expected unix:/path, IPv4:port or [IPv6]:port" },
        { "[::1]9000", "expected [IPv6]:port" },
        { "[::g]:9000", "bad IPv6 address" },
        { "unix:run/x.sock", "the socket path must be absolute" },
    };
    char text[256], message[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "[detachd]\nworkers = 1\nlisten = %s\n", cases[i].value);
        snprintf(message, sizeof(message), "bad listen address \"%s\": %s", cases[i].value,
                 cases[i].message);
        expect_error(*state, text, 3, message);
    }
    expect_error(*state, "[detachd]\nstatus_path = status\n", 2,
                 "status_path \"status\" must start with '/'");
}

static void test_unknown_user(void **state)
{
    run_errors(*state, "unknown_user");
}

static void test_syntax_error(void **state)
{
    run_errors(*state, "syntax_error");
}

static void test_missing_file(void **state)
{
    struct fixture *fixture = *state;
    struct config config;
    char error[512], expected[512];

    config_init_defaults(&config);
    assert_int_equal(config_load(&config, fixture->path, error, sizeof(error)), -1);
    snprintf(expected, sizeof(expected), "%s: No such file or directory", fixture->path);
    assert_string_equal(error, expected);
    config_free(&config);
}

static void test_failed_load_keeps_old_config(void **state)
{
    struct fixture *fixture = *state;
    struct config config;
    char error[512];

    load_ok(fixture, "[detachd]\nworkers = 9\n", &config);
    write_file(fixture->path, "[detachd]\nworkers = nine\n", 0644);
    assert_int_equal(config_load(&config, fixture->path, error, sizeof(error)), -1);
    assert_int_equal(config.workers, 9);
    assert_string_equal(config.path, fixture->path);
    config_free(&config);
}

static void expect_check_error(struct fixture *fixture, const char *key, const char *program,
                               const char *reason)
{
    struct config config;
    char text[512], error[512], expected[512];
    const char *command = strcmp(key, "command") == 0 ? program : "/bin/true";

    snprintf(text, sizeof(text), "[detachd]\n\n[route /x]\ncommand = %s\n%s%s\n", command,
             strcmp(key, "on_shutdown") == 0 ? "on_shutdown = " : "; ",
             strcmp(key, "on_shutdown") == 0 ? program : "");
    load_ok(fixture, text, &config);
    assert_int_equal(config_check_commands(&config, error, sizeof(error)), -1);
    snprintf(expected, sizeof(expected), "%s:3: %s \"%s\" is not executable: %s", fixture->path,
             key, program, reason);
    assert_string_equal(error, expected);
    config_free(&config);
}

static void test_check_commands(void **state)
{
    struct fixture *fixture = *state;
    char program[256], missing[256], text[1024], error[512] = "";
    struct config config;

    snprintf(program, sizeof(program), "%s/job.sh", fixture->dir);
    snprintf(missing, sizeof(missing), "%s/missing", fixture->dir);
    /* no execute bit at all, so even root is refused */
    write_file(program, "#!/bin/sh\nexit 0\n", 0644);

    expect_check_error(fixture, "command", program, "Permission denied");
    expect_check_error(fixture, "on_shutdown", program, "Permission denied");
    expect_check_error(fixture, "command", missing, "No such file or directory");
    expect_check_error(fixture, "command", fixture->dir, "Is a directory");

    assert_int_equal(chmod(program, 0755), 0);
    snprintf(text, sizeof(text), "[route /x]\ncommand = %s --flag\non_shutdown = %s\n", program,
             program);
    load_ok(fixture, text, &config);
    assert_int_equal(config_check_commands(&config, error, sizeof(error)), 0);
    config_free(&config);
}

/* config_check_serving(): what the start refuses (no route, a route the
 * status page hides whole) and what it only notes (a status page inside
 * a prefix route), each naming the line --check-config and the start
 * print.  line 0: accepted; a note, when expected, starts with its line. */
static const struct serving_case {
    const char *text;
    int line;             /* of the error; 0: none */
    const char *message;  /* the error, or the note when line is 0; NULL none */
} serving_cases[] = {
    { "[detachd]\nworkers = 2\n", 2, "no [route PATH] section in the file: nothing to serve" },
    { "; nothing\n", 1, "no [route PATH] section in the file: nothing to serve" },
    { "[route /a]\ncommand = /bin/true\n", 0, NULL },
    { "[detachd]\nstatus_path = /s\n[route /a]\ncommand = /bin/true\n", 0, NULL },
    { "[detachd]\nstatus_path = /a\n[route /a]\ncommand = /bin/true\n", 2,
      "status_path \"/a\" hides [route /a] (line 3): the status page answers /a and every "
      "path under /a/jobs/" },
    { "[detachd]\nworkers = 1\nstatus_path = /s\n[route /b]\ncommand = /bin/true\n"
      "[route /s/jobs/x]\ncommand = /bin/true\n", 3,
      "status_path \"/s\" hides [route /s/jobs/x] (line 6): the status page answers /s and "
      "every path under /s/jobs/" },
    { "[detachd]\nstatus_path = /s\n[route /s/jobs/*]\ncommand = /bin/true\n", 2,
      "status_path \"/s\" hides [route /s/jobs/*] (line 3): the status page answers /s and "
      "every path under /s/jobs/" },
    /* Not whole: the route keeps its other paths.  Noted, not refused. */
    { "[detachd]\nstatus_path = /x/st\n[route /x/*]\ncommand = /bin/true\n", 0,
      "status_path \"/x/st\" is inside [route /x/*] (line 3): the status page answers /x/st "
      "and /x/st/jobs/..., the route the rest" },
    { "[detachd]\nstatus_path = /s\n[route /s/*]\ncommand = /bin/true\n", 0,
      "status_path \"/s\" is inside [route /s/*] (line 3): the status page answers /s "
      "and /s/jobs/..., the route the rest" },
    { "[detachd]\nstatus_path = /s\n[route /*]\ncommand = /bin/true\n", 0,
      "status_path \"/s\" is inside [route /*] (line 3): the status page answers /s "
      "and /s/jobs/..., the route the rest" },
    /* Near misses: no overlap. */
    { "[detachd]\nstatus_path = /s\n[route /st]\ncommand = /bin/true\n"
      "[route /s/job]\ncommand = /bin/true\n[route /st/*]\ncommand = /bin/true\n", 0, NULL },
};

static void test_check_serving(void **state)
{
    struct fixture *fixture = *state;

    for (size_t i = 0; i < sizeof(serving_cases) / sizeof(serving_cases[0]); i++) {
        const struct serving_case *c = &serving_cases[i];
        char error[1024] = "", note[1024] = "x", expected[1024];
        struct config config;
        int rc;

        load_ok(fixture, c->text, &config);
        rc = config_check_serving(&config, error, sizeof(error), note, sizeof(note));
        if (c->line) {
            snprintf(expected, sizeof(expected), "%s:%d: %s", fixture->path, c->line, c->message);
            if (rc != -1 || strcmp(error, expected) != 0)
                fail_msg("case %zu: rc %d \"%s\", expected \"%s\"", i, rc, error, expected);
        } else {
            if (c->message)
                snprintf(expected, sizeof(expected), "%s:2: %s", fixture->path, c->message);
            else
                expected[0] = '\0';
            if (rc != 0 || strcmp(note, expected) != 0)
                fail_msg("case %zu: rc %d error \"%s\" note \"%s\", expected note \"%s\"", i,
                         rc, error, note, expected);
        }
        config_free(&config);
    }
}

static void remove_spool_tree(const char *dir)
{
    static const char *const names[] = { "file", "sp/tmp", "sp/corrupt", "sp", "made/tmp",
                                         "made", "ro" };
    char path[512];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (unlink(path) < 0)
            rmdir(path);
    }
}

/* config_check_spool(): a spool the start could not use is an error at
 * the spool key's line (or naming --spool); nothing is created. */
static void test_check_spool(void **state)
{
    struct fixture *fixture = *state;
    const char *dir = fixture->dir;
    struct spool_case {
        const char *spool;     /* under dir */
        const char *why;       /* NULL: usable; "%s" is dir */
    } cases[] = {
        { "made", NULL },                        /* missing, its parent writable */
        { "sp", NULL },                          /* a directory with tmp/ */
        { "made/deeper", "does not exist and cannot be made: %s/made: No such file or directory" },
        { "file", "cannot be used: %s/file is not a directory" },
        { "file/x", "cannot be used: Not a directory" },
        { "made/", NULL },
    };
    char path[512], text[1024], error[1024], expected[1024], why[512];
    struct config config;

    remove_spool_tree(dir);
    snprintf(path, sizeof(path), "%s/file", dir);
    write_file(path, "", 0644);
    snprintf(path, sizeof(path), "%s/sp", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/sp/tmp", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "[detachd]\nworkers = 1\nspool = %s/%s\n", dir, cases[i].spool);
        load_ok(fixture, text, &config);
        error[0] = '\0';
        if (!cases[i].why) {
            if (config_check_spool(&config, error, sizeof(error)) != 0)
                fail_msg("case %zu: %s", i, error);
        } else {
            snprintf(why, sizeof(why), cases[i].why, dir);
            snprintf(expected, sizeof(expected), "%s:3: spool \"%s/%s\" %s", fixture->path, dir,
                     cases[i].spool, why);
            assert_int_equal(config_check_spool(&config, error, sizeof(error)), -1);
            assert_string_equal(error, expected);
        }
        config_free(&config);
    }
    /* Nothing was made. */
    snprintf(path, sizeof(path), "%s/made", dir);
    assert_int_equal(access(path, F_OK), -1);

    /* tmp/ that is not a directory: the start could not write a job. */
    snprintf(path, sizeof(path), "%s/sp/corrupt", dir);
    write_file(path, "", 0644);
    snprintf(text, sizeof(text), "[detachd]\nspool = %s/sp\n", dir);
    load_ok(fixture, text, &config);
    snprintf(expected, sizeof(expected), "%s:2: spool \"%s/sp\" cannot be used: %s/sp/corrupt "
             "is not a directory", fixture->path, dir, dir);
    assert_int_equal(config_check_spool(&config, error, sizeof(error)), -1);
    assert_string_equal(error, expected);

    /* Given by the flag: the message names the flag, not a line. */
    config.spool_line = CONFIG_LINE_FLAG;
    snprintf(expected, sizeof(expected), "detachd: --spool \"%s/sp\" cannot be used: %s/sp/corrupt "
             "is not a directory", dir, dir);
    assert_int_equal(config_check_spool(&config, error, sizeof(error)), -1);
    assert_string_equal(error, expected);
    config_free(&config);

    /* Not writable: root may write anywhere, so only others see it. */
    if (geteuid() != 0) {
        snprintf(path, sizeof(path), "%s/ro", dir);
        assert_int_equal(mkdir(path, 0500), 0);
        snprintf(text, sizeof(text), "[detachd]\nspool = %s/ro\n", dir);
        load_ok(fixture, text, &config);
        assert_int_equal(config_check_spool(&config, error, sizeof(error)), -1);
        assert_non_null(strstr(error, "is not writable: Permission denied"));
        config_free(&config);
    }
    /* No spool: nothing to check. */
    load_ok(fixture, "[detachd]\nworkers = 1\n", &config);
    assert_int_equal(config_check_spool(&config, error, sizeof(error)), 0);
    config_free(&config);
    remove_spool_tree(dir);
}

static void test_queue_bytes(void **state)
{
    struct config config;

    config_init_defaults(&config);
    assert_int_equal(config.queue_bytes, 64 * 1024 * 1024);
    load_ok(*state, "[detachd]\nqueue_bytes = 8M\n", &config);
    assert_int_equal(config.queue_bytes, 8 * 1024 * 1024);
    config_free(&config);
    run_errors(*state, "queue_bytes");
}

/* The log keys: log_format, log_file, log = journal, job_log_keep (a week
 * unless set; 0 keeps job logs for ever). */
static void test_log_keys(void **state)
{
    struct config config;

    config_init_defaults(&config);
    assert_int_equal(config.log_format, CONFIG_LOG_LOGFMT);
    assert_int_equal(config.job_log_keep, 7 * 86400);
    assert_null(config.log_file);
    load_ok(*state,
            "[detachd]\nlog_format = json\nlog_file = /var/log/detach/detachd.log\n"
            "job_log_keep = 0\nlog = journal\n",
            &config);
    assert_int_equal(config.log_format, CONFIG_LOG_JSON);
    assert_string_equal(config.log_file, "/var/log/detach/detachd.log");
    assert_int_equal(config.job_log_keep, 0);
    assert_int_equal(config.log_target, CONFIG_LOG_JOURNAL);
    config_free(&config);
    run_errors(*state, "log_keys");
}

/* config_check_log_file(): what the start could not open is an error at
 * the log_file line, for --check-config and the start alike. */
static void test_check_log_file(void **state)
{
    struct fixture *fixture = *state;
    struct log_file_case {
        const char *name;     /* under the fixture's dir; "%s" is the dir */
        const char *why;      /* NULL: usable */
    } cases[] = {
        { "%s/detachd.log", NULL },
        { "%s", "is a directory" },
        { "%s/missing/detachd.log", "cannot be created in %s/missing: No such file or directory" },
    };
    char text[512], error[1024], expected[1024], name[256], why[512];
    struct config config;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(name, sizeof(name), cases[i].name, fixture->dir);
        snprintf(text, sizeof(text), "[detachd]\nworkers = 1\nlog_file = %s\n", name);
        load_ok(fixture, text, &config);
        error[0] = '\0';
        if (!cases[i].why) {
            if (config_check_log_file(&config, error, sizeof(error)) != 0)
                fail_msg("case %zu: %s", i, error);
        } else {
            snprintf(why, sizeof(why), cases[i].why, fixture->dir);
            snprintf(expected, sizeof(expected), "%s:3: log_file \"%s\" %s", fixture->path, name,
                     why);
            assert_int_equal(config_check_log_file(&config, error, sizeof(error)), -1);
            assert_string_equal(error, expected);
        }
        config_free(&config);
    }
    /* Nothing was created. */
    snprintf(name, sizeof(name), "%s/detachd.log", fixture->dir);
    assert_int_equal(access(name, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_empty_file_gives_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_defaults_follow_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_route_path_kept_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_quoting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_longest_line_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_long_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_boolean_and_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_listen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_load_keeps_old_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_serving, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_spool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_log_file, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
