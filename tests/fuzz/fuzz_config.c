/*
 * fuzz_config.c - config_load() on arbitrary file contents, then
 * config_free().
 *
 * The input goes into one temporary file, made once per process with
 * mkstemp in /tmp and unlinked at once: it is opened by its /proc/self/fd
 * name, so nothing is left behind even when the fuzzer dies.
 *
 * Checked beyond "no crash": a loaded config obeys the rules config.h
 * promises, and a refused one says where, as "FILE:LINE: message" or
 * "FILE: message".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"

#include "fuzz_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int file_fd = -1;
static char file_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char template[] = "/tmp/detach-fuzz-config-XXXXXX";

    file_fd = mkstemp(template);
    CHECK(file_fd >= 0);
    unlink(template);
    snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
    return 0;
}

static void check_argv(char **argv)
{
    CHECK(argv && argv[0] && argv[0][0] == '/');
}

static void check_loaded(const struct config *config)
{
    CHECK(config->path && strcmp(config->path, file_path) == 0);
    CHECK(config->workers >= 1 && config->workers <= 1024);
    CHECK(config->max_jobs >= 1);
    CHECK(config->max_body >= 1);
    CHECK(config->socket_mode <= 0777);
    CHECK(config->read_timeout >= 1);
    CHECK(!config->status_path || config->status_path[0] == '/');
    CHECK(config->route_count == 0 || config->routes);
    for (size_t i = 0; i < config->route_count; i++) {
        const struct config_route *route = &config->routes[i];
        CHECK(route->path && route->path[0] == '/');
        CHECK(!strpbrk(route->path, " \t?#"));
        const char *star = strchr(route->path, '*');
        CHECK(!star || (star[1] == '\0' && star[-1] == '/'));
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(config->routes[j].path, route->path) != 0);
        check_argv(route->argv);
        if (route->on_shutdown_argv)
            check_argv(route->on_shutdown_argv);
        CHECK(route->mode == DETACH_TRIGGER || route->mode == DETACH_ATTACHED);
        CHECK(route->ignore_user_abort == 0 || route->ignore_user_abort == 1);
        CHECK(route->line >= 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config config;
    char errbuf[512];

    CHECK(ftruncate(file_fd, 0) == 0);
    CHECK(pwrite(file_fd, data, size, 0) == (ssize_t)size);

    config_init_defaults(&config);
    if (config_load(&config, file_path, errbuf, sizeof(errbuf)) == 0) {
        check_loaded(&config);
        /* Only stat()s and access()es the named programs. */
        (void)config_check_commands(&config, errbuf, sizeof(errbuf));
        config_free(&config);
        config_free(&config);   /* documented as harmless */
    } else {
        size_t prefix = strlen(file_path);
        CHECK(strncmp(errbuf, file_path, prefix) == 0);
        CHECK(errbuf[prefix] == ':');
        CHECK(strlen(errbuf) > prefix + 2);
        /* Refused: the defaults are untouched and own nothing. */
        CHECK(config.path == NULL && config.route_count == 0 && config.routes == NULL);
    }
    return 0;
}
