/*
 * route.c - the route table.
 *
 * Routes are few and fixed after start, so a linear scan is fast and
 * keeps matching rules obvious: exact beats prefix, longer prefix beats
 * shorter.  A path is matched as sent, never normalized: one that would
 * need normalizing ("..", an encoded "/") is refused instead.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "server/route.h"

void dt_route_table_init(struct route_table *table)
{
    table->routes = NULL;
    table->count = 0;
    table->retired = NULL;
}

void dt_route_table_destroy(struct route_table *table)
{
    for (size_t i = 0; i < table->count; i++)
        free(table->routes[i].kind.path);
    free(table->routes);
    dt_route_table_init(table);
}

int dt_route_table_add(struct route_table *table, const char *path, detach_mode mode,
                    detach_abort_policy on_abort, detach_handler handler, void *arg)
{
    struct route *routes, *route;
    size_t length;

    if (!path || path[0] != '/' || !handler) {
        errno = EINVAL;
        return dt_error_set("route \"%s\": a route is a path starting with '/' and a handler",
                         path ? path : "(null)");
    }
    if (dt_route_path_refusal(path)) {
        /* Such a route could never match: say so at start, not by 404s. */
        errno = EINVAL;
        return dt_error_set("route \"%s\": a route path cannot have a \".\" or \"..\" segment, "
                         "a backslash or an encoded separator (%s)", path, dt_route_path_refusal(path));
    }
    if (mode != DETACH_TRIGGER && mode != DETACH_ATTACHED) {
        errno = EINVAL;
        return dt_error_set("route \"%s\": unknown mode %d", path, (int)mode);
    }
    for (size_t i = 0; i < table->count; i++) {
        if (strcmp(table->routes[i].kind.path, path) == 0) {
            errno = EEXIST;
            return dt_error_set("route \"%s\" is defined twice", path);
        }
    }
    routes = realloc(table->routes, (table->count + 1) * sizeof(*routes));
    if (!routes)
        return dt_error_set("route \"%s\": out of memory", path);
    table->routes = routes;
    route = &routes[table->count];
    route->kind.path = strdup(path);
    if (!route->kind.path)
        return dt_error_set("route \"%s\": out of memory", path);
    length = strlen(path);
    route->is_prefix = length >= 2 && path[length - 1] == '*' && path[length - 2] == '/';
    route->match_length = route->is_prefix ? length - 1 : length;
    route->kind.mode = mode;
    route->kind.ignore_user_abort = on_abort == DETACH_ABORT_DEFAULT ? mode == DETACH_TRIGGER
                                                                : on_abort == DETACH_ABORT_IGNORE;
    route->kind.handler = handler;
    route->kind.arg = arg;
    table->count++;
    return 0;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* "%" and two hex digits at text spelling `byte` (either case)? */
static int is_escape_of(const char *text, char byte)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char high = (unsigned char)byte >> 4, low = (unsigned char)byte & 0xf;

    return text[0] == '%' && text[1] && text[2] && lower(text[1]) == hex[high] &&
           lower(text[2]) == hex[low];
}

/* One or two dots, each plain or "%2e", and nothing else, from segment
 * to its end ('/' or NUL). */
static int is_dot_segment(const char *segment)
{
    int dots = 0;

    while (*segment && *segment != '/') {
        if (*segment == '.')
            segment++;
        else if (is_escape_of(segment, '.'))
            segment += 3;
        else
            return 0;
        if (++dots > 2)
            return 0;
    }
    return dots > 0;
}

const char *dt_route_path_refusal(const char *path)
{
    for (const char *at = path; *at; at++) {
        if (*at == '\\')
            return "backslash";
        if (is_escape_of(at, '/') || is_escape_of(at, '\\'))
            return "encoded_separator";
        if ((at == path || at[-1] == '/') && is_dot_segment(at))
            return "dot_segment";
    }
    return NULL;
}

const struct route *dt_route_table_match(const struct route_table *table, const char *path)
{
    const struct route *best = NULL;

    /* A path with dot segments would let a prefix route answer for what
     * lies outside its prefix; the caller answers 400 before it gets here,
     * this is the last line. */
    if (!path || dt_route_path_refusal(path))
        return NULL;
    for (size_t i = 0; i < table->count; i++) {
        const struct route *route = &table->routes[i];
        if (!route->is_prefix) {
            if (strcmp(route->kind.path, path) == 0)
                return route;
            continue;
        }
        if (strncmp(route->kind.path, path, route->match_length) == 0 &&
            (!best || route->match_length > best->match_length))
            best = route;
    }
    return best;
}

const char *detach_route_path_refusal(const char *path)
{
    return dt_route_path_refusal(path);
}
