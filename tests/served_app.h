/*
 * served_app.h - a libdetach application inside a unit test: handlers
 * that record what they saw, or hold their job until told, a wait on
 * what they recorded, and the thread that serves.  Shared by
 * test_server.c and test_trigger.c.
 */
#ifndef DETACH_TEST_SERVED_APP_H
#define DETACH_TEST_SERVED_APP_H

#include <pthread.h>

#include "detach.h"

/* What the handlers saw; a test waits on `changed`. */
struct seen_state {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int ran;
    int hold;                   /* blocking_handler waits while set */
    int holding;
    char query[128];
    char body[128];
};
extern struct seen_state seen;

struct served {
    char dir[48];
    char path[96];
    detach_server *server;
    pthread_t thread;
    int rc;
};

/* Records QUERY_STRING and the body, then counts the run. */
void recording_handler(detach_job *job, void *arg);
/* Counts itself holding, waits while seen.hold, then counts the run. */
void blocking_handler(detach_job *job, void *arg);
/* Until *counter reaches target (5 s at most); fails the test if not. */
void wait_seen(const int *counter, int target);
/* A thread's body: detach_serve(served->server) into served->rc. */
void *serve_main(void *arg);

#endif
