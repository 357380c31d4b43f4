/*
 * route.c - the route table.
 *
 * Routes are few and fixed after start, so a linear scan is fast and
 * keeps matching rules obvious: exact beats prefix, longer prefix beats
 * shorter.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "route.h"

void route_table_init(struct route_table *table)
{
    table->routes = NULL;
    table->count = 0;
    table->retired = NULL;
}

void route_table_destroy(struct route_table *table)
{
    for (size_t i = 0; i < table->count; i++)
        free(table->routes[i].path);
    free(table->routes);
    route_table_init(table);
}

int route_table_add(struct route_table *table, const char *path, detach_mode mode,
                    detach_abort_policy on_abort, detach_handler handler, void *arg)
{
    struct route *routes, *route;
    size_t length;

    if (!path || path[0] != '/' || !handler) {
        errno = EINVAL;
        return error_set("route \"%s\": a route is a path starting with '/' and a handler",
                         path ? path : "(null)");
    }
    if (mode != DETACH_TRIGGER && mode != DETACH_ATTACHED) {
        errno = EINVAL;
        return error_set("route \"%s\": unknown mode %d", path, (int)mode);
    }
    for (size_t i = 0; i < table->count; i++) {
        if (strcmp(table->routes[i].path, path) == 0) {
            errno = EEXIST;
            return error_set("route \"%s\" is defined twice", path);
        }
    }
    routes = realloc(table->routes, (table->count + 1) * sizeof(*routes));
    if (!routes)
        return error_set("route \"%s\": out of memory", path);
    table->routes = routes;
    route = &routes[table->count];
    route->path = strdup(path);
    if (!route->path)
        return error_set("route \"%s\": out of memory", path);
    length = strlen(path);
    route->is_prefix = length >= 2 && path[length - 1] == '*' && path[length - 2] == '/';
    route->match_length = route->is_prefix ? length - 1 : length;
    route->mode = mode;
    route->ignore_user_abort = on_abort == DETACH_ABORT_DEFAULT ? mode == DETACH_TRIGGER
                                                                : on_abort == DETACH_ABORT_IGNORE;
    route->handler = handler;
    route->arg = arg;
    table->count++;
    return 0;
}

const struct route *route_table_match(const struct route_table *table, const char *path)
{
    const struct route *best = NULL;

    if (!path)
        return NULL;
    for (size_t i = 0; i < table->count; i++) {
        const struct route *route = &table->routes[i];
        if (!route->is_prefix) {
            if (strcmp(route->path, path) == 0)
                return route;
            continue;
        }
        if (strncmp(route->path, path, route->match_length) == 0 &&
            (!best || route->match_length > best->match_length))
            best = route;
    }
    return best;
}
