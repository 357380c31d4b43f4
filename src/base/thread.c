/*
 * thread.c - starting the library's own threads (thread.h).
 *
 * The new thread inherits the creator's signal mask, so the creator
 * blocks everything around pthread_create() and then puts its own mask
 * back: the new thread never runs a moment with signals open.
 */
#include <signal.h>

#include "base/thread.h"

int dt_thread_start(pthread_t *id, void *(*start_routine)(void *), void *arg)
{
    sigset_t all, previous;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    rc = pthread_create(id, NULL, start_routine, arg);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return rc;
}
