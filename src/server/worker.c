/*
 * worker.c - the worker threads and their queue of readable connections.
 *
 * The watcher pushes a connection once it is readable; a worker pops it
 * and serves one request.  The queue is intrusive (next_ready), so a push
 * from the watcher thread allocates nothing and never fails.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "base/thread.h"
#include "io/connection.h"
#include "server/request.h"
#include "server/server_core.h"
#include "server/worker.h"

struct worker_pool {
    struct server_core *core;
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct connection *head, *tail;
    int stopping;
    unsigned count;
    pthread_t *threads;
};

static void *worker_main(void *arg)
{
    struct worker_pool *pool = arg;

    pthread_setname_np(pthread_self(), "detach-worker");   /* for top -H and perf */
    for (;;) {
        struct connection *connection;

        pthread_mutex_lock(&pool->lock);
        while (!pool->head && !pool->stopping)
            pthread_cond_wait(&pool->ready, &pool->lock);
        if (pool->stopping) {
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
        connection = pool->head;
        pool->head = connection->next_ready;
        if (!pool->head)
            pool->tail = NULL;
        connection->next_ready = NULL;
        pthread_mutex_unlock(&pool->lock);

        dt_request_serve(pool->core, connection);
    }
}

struct worker_pool *dt_worker_pool_new(struct server_core *core, unsigned count)
{
    struct worker_pool *pool = calloc(1, sizeof(*pool));

    if (!pool || !(pool->threads = calloc(count, sizeof(*pool->threads)))) {
        free(pool);
        dt_error_set("workers: out of memory");
        return NULL;
    }
    pool->core = core;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->ready, NULL);
    for (pool->count = 0; pool->count < count; pool->count++) {
        int rc = dt_thread_start(&pool->threads[pool->count], worker_main, pool);
        if (rc != 0) {
            errno = rc;
            dt_error_set("workers: pthread_create: %s", strerror(rc));
            dt_worker_pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

void dt_worker_pool_push(struct worker_pool *pool, struct connection *connection)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping) {
        /* The watcher read it as the server stopped: nobody will answer. */
        pthread_mutex_unlock(&pool->lock);
        dt_connection_close(connection);
        return;
    }
    connection->next_ready = NULL;
    if (pool->tail)
        pool->tail->next_ready = connection;
    else
        pool->head = connection;
    pool->tail = connection;
    pthread_cond_signal(&pool->ready);
    pthread_mutex_unlock(&pool->lock);
}

void dt_worker_pool_stop(struct worker_pool *pool)
{
    struct connection *connection;

    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping) {
        pthread_mutex_unlock(&pool->lock);
        return;
    }
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->ready);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->count; i++)
        pthread_join(pool->threads[i], NULL);
    /* Read but never served: the web server sees a closed connection. */
    pthread_mutex_lock(&pool->lock);
    while ((connection = pool->head)) {
        pool->head = connection->next_ready;
        pthread_mutex_unlock(&pool->lock);
        dt_connection_close(connection);
        pthread_mutex_lock(&pool->lock);
    }
    pool->tail = NULL;
    pthread_mutex_unlock(&pool->lock);
}

void dt_worker_pool_free(struct worker_pool *pool)
{
    if (!pool)
        return;
    dt_worker_pool_stop(pool);
    pthread_cond_destroy(&pool->ready);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
}
