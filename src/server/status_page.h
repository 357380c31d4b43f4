/*
 * status_page.h - the status endpoint: what runs, what waits, what ended.
 *
 *   GET <status_path>                     JSON counters
 *   GET <status_path>?format=prometheus   Prometheus text format
 *   GET <status_path>?format=html         a self-contained page, refreshing
 *   GET <status_path>/jobs/<id>           one job as JSON
 *
 * Rendering is a pure function of a registry copy, so unit tests call it
 * directly; request.c decides who may ask (status_allow) and writes it out.
 */
#ifndef DETACH_STATUS_PAGE_H
#define DETACH_STATUS_PAGE_H

#include <stddef.h>
#include "sched/registry.h"

struct status_response {
    char *text;           /* the whole CGI response: head and body; malloc'ed */
    size_t length;
};

/*
 * subpath: what follows status_path ("" or "/jobs/<id>"); query: the
 * QUERY_STRING ("" when none).  Fills response (free response->text).
 * 0 on success, -1 when out of memory.
 */
int dt_status_page_render(struct registry *registry, const char *subpath, const char *query,
                       struct status_response *response);

#endif
