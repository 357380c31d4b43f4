/*
 * thread.h - starting the library's own threads.
 *
 * Signals belong to the application: every thread libdetach starts
 * blocks them all, from its first instruction on, so a SIGTERM reaches
 * the application's handler and never one of ours.
 */
#ifndef DETACH_THREAD_H
#define DETACH_THREAD_H

#include <pthread.h>

/* pthread_create() with every signal blocked in the new thread; returns
 * 0 or pthread_create()'s error.  The caller's mask is left as it was. */
int dt_thread_start(pthread_t *id, void *(*start_routine)(void *), void *arg);

#endif
