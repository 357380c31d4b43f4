/*
 * shutdown.c - running shutdown callbacks exactly once each.
 *
 * "next" only moves forward, so however often the list is run (a second
 * run after a late registration, say) no callback runs twice.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/error.h"
#include "base/shutdown.h"

void dt_shutdown_list_init(struct shutdown_list *list)
{
    list->callbacks = NULL;
    list->count = 0;
    list->capacity = 0;
    list->next = 0;
}

void dt_shutdown_list_destroy(struct shutdown_list *list)
{
    free(list->callbacks);
    dt_shutdown_list_init(list);
}

int dt_shutdown_list_add(struct shutdown_list *list, detach_shutdown_fn fn, void *arg)
{
    if (!fn) {
        errno = EINVAL;
        return dt_error_set("detach_register_shutdown: no function given");
    }
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 4;
        struct shutdown_callback *callbacks =
            realloc(list->callbacks, capacity * sizeof(*callbacks));
        if (!callbacks)
            return dt_error_set("detach_register_shutdown: out of memory");
        list->callbacks = callbacks;
        list->capacity = capacity;
    }
    list->callbacks[list->count].fn = fn;
    list->callbacks[list->count].arg = arg;
    list->count++;
    return 0;
}

void dt_shutdown_list_run(struct shutdown_list *list, detach_job *job)
{
    while (list->next < list->count) {
        /* Copy first: the callback may grow (move) the array. */
        struct shutdown_callback callback = list->callbacks[list->next++];
        callback.fn(job, callback.arg);
    }
}
