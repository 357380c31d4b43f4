/*
 * served_app.c - the shared test application of served_app.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <cmocka.h>

#include "served_app.h"

struct seen_state seen = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, "", "" };

void recording_handler(detach_job *job, void *arg)
{
    size_t length = 0;
    const char *body = detach_body(job, &length);
    const char *query = detach_param(job, "QUERY_STRING");

    (void)arg;
    pthread_mutex_lock(&seen.lock);
    snprintf(seen.query, sizeof seen.query, "%s", query ? query : "");
    snprintf(seen.body, sizeof seen.body, "%.*s", (int)length, body ? body : "");
    seen.ran++;
    pthread_cond_broadcast(&seen.changed);
    pthread_mutex_unlock(&seen.lock);
}

void blocking_handler(detach_job *job, void *arg)
{
    (void)job;
    (void)arg;
    pthread_mutex_lock(&seen.lock);
    seen.holding++;
    pthread_cond_broadcast(&seen.changed);
    while (seen.hold)
        pthread_cond_wait(&seen.changed, &seen.lock);
    seen.holding--;
    seen.ran++;
    pthread_cond_broadcast(&seen.changed);
    pthread_mutex_unlock(&seen.lock);
}

/* Until *counter reaches target (5 s at most). */
void wait_seen(const int *counter, int target)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&seen.lock);
    while (*counter < target)
        if (pthread_cond_timedwait(&seen.changed, &seen.lock, &deadline) != 0)
            break;
    int reached = *counter >= target;
    pthread_mutex_unlock(&seen.lock);
    assert_true(reached);
}

void *serve_main(void *arg)
{
    struct served *served = arg;

    served->rc = detach_serve(served->server);
    return NULL;
}

