/*
 * watcher.c - epoll plus a timer heap on one thread.
 *
 * The classic epoll hazard is a stale event: epoll_wait() returned an
 * event for a watch that another thread removed (and freed) before the
 * event was dispatched.  Events here carry (generation, fd), not pointers;
 * dispatch looks the fd up in a table under the lock and skips any event
 * whose generation no longer matches.  So a watch can be freed as soon as
 * dt_watcher_unwatch() returns, and a reused descriptor number is harmless.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"
#include "base/thread.h"
#include "io/watcher.h"

struct watcher {
    pthread_mutex_t lock;
    int epoll_fd;
    int wake_fd;               /* eventfd: a new earliest deadline, or stop */
    struct timer_heap timers;
    struct watch **by_fd;      /* registered watches, indexed by descriptor */
    size_t by_fd_size;
    uint32_t next_generation;
    watcher_round_fn round_end;  /* NULL: none */
    void *round_end_arg;
    int stopping;
    int started;
    pthread_t thread;
    watcher_clock_fn clock;      /* NULL: dt_monotonic_ms */
    void *clock_arg;
    /* dt_watcher_clock_moved(): requests, and the last one whose due
     * timers the thread ran; moved_cond signals that. */
    uint64_t clock_moves, clock_moves_served;
    pthread_cond_t moved_cond;
};

#define WAKE_TAG UINT64_MAX

struct watcher *dt_watcher_new(void)
{
    struct watcher *watcher = calloc(1, sizeof(*watcher));
    struct epoll_event event = { .events = EPOLLIN, .data.u64 = WAKE_TAG };

    if (!watcher) {
        dt_error_set("watcher: out of memory");
        return NULL;
    }
    pthread_mutex_init(&watcher->lock, NULL);
    pthread_cond_init(&watcher->moved_cond, NULL);
    dt_timer_heap_init(&watcher->timers);
    watcher->wake_fd = -1;
    watcher->next_generation = 1;
    watcher->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (watcher->epoll_fd < 0) {
        dt_error_set("watcher: epoll_create1: %s", strerror(errno));
        goto fail;
    }
    watcher->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (watcher->wake_fd < 0) {
        dt_error_set("watcher: eventfd: %s", strerror(errno));
        goto fail;
    }
    if (epoll_ctl(watcher->epoll_fd, EPOLL_CTL_ADD, watcher->wake_fd, &event) < 0) {
        dt_error_set("watcher: epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    return watcher;
fail:
    if (watcher->epoll_fd >= 0)
        close(watcher->epoll_fd);
    if (watcher->wake_fd >= 0)
        close(watcher->wake_fd);
    dt_timer_heap_destroy(&watcher->timers);
    pthread_cond_destroy(&watcher->moved_cond);
    pthread_mutex_destroy(&watcher->lock);
    free(watcher);
    return NULL;
}

static uint64_t now_ms(const struct watcher *watcher)
{
    return watcher->clock ? watcher->clock(watcher->clock_arg) : dt_monotonic_ms();
}

static void wake(struct watcher *watcher)
{
    uint64_t one = 1;

    /* EAGAIN means a wake-up is already pending: as good as ours. */
    if (write(watcher->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        dt_log_line(LOG_ERROR, "watcher_wake", "error=\"%s\"", strerror(errno));
}

void dt_watcher_lock(struct watcher *watcher)
{
    pthread_mutex_lock(&watcher->lock);
}

void dt_watcher_unlock(struct watcher *watcher)
{
    pthread_mutex_unlock(&watcher->lock);
}

void dt_watch_init(struct watch *watch, int fd, watch_fn ready)
{
    watch->fd = fd;
    watch->generation = 0;
    watch->events = 0;
    watch->ready = ready;
}

static int ensure_slot(struct watcher *watcher, int fd)
{
    size_t size = watcher->by_fd_size;
    struct watch **table;

    if ((size_t)fd < size)
        return 0;
    while (size <= (size_t)fd)
        size = size ? size * 2 : 1024;
    table = realloc(watcher->by_fd, size * sizeof(*table));
    if (!table)
        return -1;
    memset(table + watcher->by_fd_size, 0, (size - watcher->by_fd_size) * sizeof(*table));
    watcher->by_fd = table;
    watcher->by_fd_size = size;
    return 0;
}

int dt_watcher_watch_locked(struct watcher *watcher, struct watch *watch, uint32_t events)
{
    struct epoll_event event;
    int op = watch->generation ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

    /* A level-triggered registration never disarms: nothing to do. */
    if (watch->generation && watch->events == events && !(events & EPOLLONESHOT))
        return 0;
    if (!watch->generation) {
        if (ensure_slot(watcher, watch->fd) < 0) {
            errno = ENOMEM;
            return dt_error_set("watcher: out of memory for fd %d", watch->fd);
        }
        if (++watcher->next_generation == 0)
            watcher->next_generation = 1;
        watch->generation = watcher->next_generation;
    }
    event.events = events;
    event.data.u64 = ((uint64_t)watch->generation << 32) | (uint32_t)watch->fd;
    if (epoll_ctl(watcher->epoll_fd, op, watch->fd, &event) < 0) {
        int saved = errno;
        if (op == EPOLL_CTL_ADD)
            watch->generation = 0;
        errno = saved;
        return dt_error_set("watcher: epoll_ctl fd %d: %s", watch->fd, strerror(errno));
    }
    watcher->by_fd[watch->fd] = watch;
    watch->events = events;
    return 0;
}

int dt_watcher_watch(struct watcher *watcher, struct watch *watch, uint32_t events)
{
    int result;

    pthread_mutex_lock(&watcher->lock);
    result = dt_watcher_watch_locked(watcher, watch, events);
    pthread_mutex_unlock(&watcher->lock);
    return result;
}

void dt_watcher_unwatch_locked(struct watcher *watcher, struct watch *watch)
{
    if (!watch->generation)
        return;
    /* ENOENT/EBADF only if the owner closed first; the table entry still goes. */
    epoll_ctl(watcher->epoll_fd, EPOLL_CTL_DEL, watch->fd, NULL);
    if (watcher->by_fd[watch->fd] == watch)
        watcher->by_fd[watch->fd] = NULL;
    watch->generation = 0;
}

void dt_watcher_unwatch(struct watcher *watcher, struct watch *watch)
{
    pthread_mutex_lock(&watcher->lock);
    dt_watcher_unwatch_locked(watcher, watch);
    pthread_mutex_unlock(&watcher->lock);
}

void dt_watcher_arm_locked(struct watcher *watcher, struct timer *timer, uint64_t after_ms)
{
    struct timer *first = dt_timer_heap_first(&watcher->timers);

    if (dt_timer_heap_arm(&watcher->timers, timer, now_ms(watcher) + after_ms) < 0) {
        /* Cannot happen short of memory exhaustion; firing now is the safe side. */
        dt_log_line(LOG_ERROR, "watcher_arm", "error=\"out of memory\"");
        return;
    }
    /* The watcher thread recomputes its timeout before it sleeps again. */
    if (dt_timer_heap_first(&watcher->timers) != first &&
        !(watcher->started && pthread_equal(pthread_self(), watcher->thread)))
        wake(watcher);
}

void dt_watcher_arm(struct watcher *watcher, struct timer *timer, uint64_t after_ms)
{
    pthread_mutex_lock(&watcher->lock);
    dt_watcher_arm_locked(watcher, timer, after_ms);
    pthread_mutex_unlock(&watcher->lock);
}

void dt_watcher_disarm_locked(struct watcher *watcher, struct timer *timer)
{
    dt_timer_heap_disarm(&watcher->timers, timer);
}

void dt_watcher_disarm(struct watcher *watcher, struct timer *timer)
{
    pthread_mutex_lock(&watcher->lock);
    dt_watcher_disarm_locked(watcher, timer);
    pthread_mutex_unlock(&watcher->lock);
}

/* Fires due timers, counting them in *fired; returns the epoll timeout
 * until the next one. */
static int run_timers_locked(struct watcher *watcher, unsigned *fired)
{
    for (;;) {
        struct timer *first = dt_timer_heap_first(&watcher->timers);
        uint64_t now;

        if (!first)
            return -1;
        now = now_ms(watcher);
        if (first->deadline_ms > now) {
            uint64_t wait = first->deadline_ms - now;
            return wait > INT32_MAX ? INT32_MAX : (int)wait;
        }
        dt_timer_heap_disarm(&watcher->timers, first);
        first->fire(first);
        ++*fired;
    }
}

static void dispatch_locked(struct watcher *watcher, const struct epoll_event *event)
{
    uint32_t fd = (uint32_t)event->data.u64;
    uint32_t generation = (uint32_t)(event->data.u64 >> 32);
    struct watch *watch;

    if (event->data.u64 == WAKE_TAG) {
        uint64_t count;
        if (read(watcher->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
            dt_log_line(LOG_ERROR, "watcher_wake", "error=\"%s\"", strerror(errno));
        return;
    }
    if (fd >= watcher->by_fd_size)
        return;
    watch = watcher->by_fd[fd];
    if (!watch || watch->generation != generation)
        return;   /* removed after epoll_wait() returned: stale */
    watch->ready(watch, event->events);
}

static void *watcher_main(void *arg)
{
    struct watcher *watcher = arg;
    struct epoll_event events[64];
    int timeout;

    pthread_setname_np(pthread_self(), "detach-watcher");   /* for top -H and perf */
    pthread_mutex_lock(&watcher->lock);
    while (!watcher->stopping) {
        unsigned fired = 0;
        uint64_t moves = watcher->clock_moves;

        timeout = run_timers_locked(watcher, &fired);
        if (watcher->clock_moves_served != moves) {
            watcher->clock_moves_served = moves;
            pthread_cond_broadcast(&watcher->moved_cond);
        }
        /* A timer's callback may put work off as an event's does (one
         * serves a pipelined request): it must not wait for an event. */
        if (watcher->round_end && fired > 0)
            watcher->round_end(watcher->round_end_arg);
        pthread_mutex_unlock(&watcher->lock);
        int count = epoll_wait(watcher->epoll_fd, events, 64, timeout);
        int saved = errno;
        pthread_mutex_lock(&watcher->lock);
        if (count < 0) {
            if (saved != EINTR)
                dt_log_line(LOG_ERROR, "watcher_epoll_wait", "error=\"%s\"", strerror(saved));
            continue;
        }
        for (int i = 0; i < count; i++)
            dispatch_locked(watcher, &events[i]);
        if (watcher->round_end && count > 0)
            watcher->round_end(watcher->round_end_arg);
    }
    pthread_mutex_unlock(&watcher->lock);
    return NULL;
}

void dt_watcher_set_clock(struct watcher *watcher, watcher_clock_fn now, void *arg)
{
    pthread_mutex_lock(&watcher->lock);
    watcher->clock = now;
    watcher->clock_arg = arg;
    pthread_mutex_unlock(&watcher->lock);
}

void dt_watcher_clock_moved(struct watcher *watcher)
{
    unsigned fired = 0;

    pthread_mutex_lock(&watcher->lock);
    if (!watcher->started) {
        run_timers_locked(watcher, &fired);
        pthread_mutex_unlock(&watcher->lock);
        return;
    }
    uint64_t moves = ++watcher->clock_moves;
    wake(watcher);
    while (watcher->clock_moves_served < moves && !watcher->stopping)
        pthread_cond_wait(&watcher->moved_cond, &watcher->lock);
    pthread_mutex_unlock(&watcher->lock);
}

void dt_watcher_on_round_end(struct watcher *watcher, watcher_round_fn fn, void *arg)
{
    pthread_mutex_lock(&watcher->lock);
    watcher->round_end = fn;
    watcher->round_end_arg = arg;
    pthread_mutex_unlock(&watcher->lock);
}

int dt_watcher_start(struct watcher *watcher)
{
    int rc = dt_thread_start(&watcher->thread, watcher_main, watcher);

    if (rc != 0) {
        errno = rc;
        return dt_error_set("watcher: pthread_create: %s", strerror(rc));
    }
    watcher->started = 1;
    return 0;
}

void dt_watcher_free(struct watcher *watcher)
{
    if (!watcher)
        return;
    if (watcher->started) {
        pthread_mutex_lock(&watcher->lock);
        watcher->stopping = 1;
        wake(watcher);
        pthread_mutex_unlock(&watcher->lock);
        pthread_join(watcher->thread, NULL);
    }
    close(watcher->epoll_fd);
    close(watcher->wake_fd);
    dt_timer_heap_destroy(&watcher->timers);
    free(watcher->by_fd);
    pthread_cond_destroy(&watcher->moved_cond);
    pthread_mutex_destroy(&watcher->lock);
    free(watcher);
}
