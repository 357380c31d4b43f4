/*
 * route.h - the route table: which handler answers which path.
 *
 * "/a/b" matches that path only; "/a/" plus "*" matches every path under "/a/".
 * An exact route wins over a prefix one, and a longer prefix over a
 * shorter one.  Nothing in a request can name what runs: only the routes
 * configured here can.
 */
#ifndef DETACH_ROUTE_H
#define DETACH_ROUTE_H

#include <stddef.h>
#include "detach.h"
#include "sched/job.h"

struct route {
    /* What a job made for it reads: path (as configured, with any
     * trailing "*"), mode, ignore_user_abort, handler and arg. */
    struct job_kind kind;
    size_t match_length;  /* prefix routes: length without the '*' */
    int is_prefix;
};

struct route_table {
    struct route *routes;
    size_t count;
    struct route_table *retired;   /* older tables, kept while jobs may use them */
};

void dt_route_table_init(struct route_table *table);
void dt_route_table_destroy(struct route_table *table);
/* -1 with a message for a path that does not start with '/' or a duplicate. */
int dt_route_table_add(struct route_table *table, const char *path, detach_mode mode,
                    detach_abort_policy on_abort, detach_handler handler, void *arg);
/* NULL as well for a path dt_route_path_refusal() refuses. */
const struct route *dt_route_table_match(const struct route_table *table, const char *path);

/*
 * Why a request path must not be matched at all, or NULL when it may be.
 * Refused: a "." or ".." segment, spelled plainly or percent-encoded
 * ("%2e", ".%2E", ...) -- "/jobs/pre/../../etc" must not run the
 * "/jobs/pre/" job; a backslash, or a percent-encoded "/" or "\", which
 * some later decoding would make a separator.  The reasons are short
 * words for the log: "dot_segment", "backslash", "encoded_separator".
 */
const char *dt_route_path_refusal(const char *path);

#endif
