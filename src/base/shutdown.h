/*
 * shutdown.h - a job's shutdown callbacks, as register_shutdown_function().
 *
 * Only the job thread touches the list (handlers and callbacks run there),
 * so it needs no lock.  Running walks by index, so a callback that
 * registers another extends the walk and the new one runs too.
 */
#ifndef DETACH_SHUTDOWN_H
#define DETACH_SHUTDOWN_H

#include <stddef.h>
#include "detach.h"

struct shutdown_callback {
    detach_shutdown_fn fn;
    void *arg;
};

struct shutdown_list {
    struct shutdown_callback *callbacks;
    size_t count;
    size_t capacity;
    size_t next;       /* the first one not run yet */
};

void dt_shutdown_list_init(struct shutdown_list *list);
void dt_shutdown_list_destroy(struct shutdown_list *list);
int dt_shutdown_list_add(struct shutdown_list *list, detach_shutdown_fn fn, void *arg);
/* Runs every callback not run yet, in order, including ones added meanwhile. */
void dt_shutdown_list_run(struct shutdown_list *list, detach_job *job);

#endif
