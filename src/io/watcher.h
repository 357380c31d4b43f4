/*
 * watcher.h - the one thread that owns every deadline and watched socket.
 *
 * epoll for descriptors, a timer heap for deadlines, so no other thread
 * ever polls or sleeps to notice anything.  Callbacks run on the watcher
 * thread with the watcher's lock held: they must be short, never block,
 * and use the *_locked calls.  Holding the lock during dispatch is what
 * makes dt_watcher_unwatch() and dt_watcher_disarm() final: once they return,
 * the callback is not running and never will, so the owner may free it.
 * A callback may release the lock for work on what it alone owns (the
 * connection whose one-shot watch fired reads and answers its request
 * so) and must take it again before it returns; events of the same batch
 * are checked against their watch's generation, so nothing stale fires.
 */
#ifndef DETACH_WATCHER_H
#define DETACH_WATCHER_H

#include <stdint.h>
#include "base/timer_heap.h"

struct watcher;
struct watch;
typedef void (*watch_fn)(struct watch *watch, uint32_t events);
typedef void (*watcher_round_fn)(void *arg);

struct watch {
    int fd;
    uint32_t generation;   /* 0 while not registered */
    uint32_t events;       /* as registered */
    watch_fn ready;
};

struct watcher *dt_watcher_new(void);
/* fn(arg) runs on the watcher thread, its lock held, after the events of
 * each epoll round are dispatched and after timers fire, for work their
 * callbacks put off to do once for all of them.  fn NULL: none.  Like
 * dt_watcher_unwatch(), final once it returns: the fn replaced is not
 * running and never will. */
void dt_watcher_on_round_end(struct watcher *watcher, watcher_round_fn fn, void *arg);
/* Starts the thread. */
int dt_watcher_start(struct watcher *watcher);
/* Stops and joins the thread; nothing may be watched or armed any more. */
void dt_watcher_free(struct watcher *watcher);

void dt_watch_init(struct watch *watch, int fd, watch_fn ready);

/* events: EPOLLIN, EPOLLRDHUP, EPOLLONESHOT...; re-arms one registered.
 * Watching again for the same events without EPOLLONESHOT costs nothing:
 * such a registration stays armed. */
int dt_watcher_watch(struct watcher *watcher, struct watch *watch, uint32_t events);
int dt_watcher_watch_locked(struct watcher *watcher, struct watch *watch, uint32_t events);
void dt_watcher_unwatch(struct watcher *watcher, struct watch *watch);
void dt_watcher_unwatch_locked(struct watcher *watcher, struct watch *watch);

/* Fires after_ms from now; re-arming moves the deadline. */
void dt_watcher_arm(struct watcher *watcher, struct timer *timer, uint64_t after_ms);
void dt_watcher_arm_locked(struct watcher *watcher, struct timer *timer, uint64_t after_ms);
void dt_watcher_disarm(struct watcher *watcher, struct timer *timer);
void dt_watcher_disarm_locked(struct watcher *watcher, struct timer *timer);

/*
 * The clock deadlines are read on, for tests that must not wait out real
 * time: now(arg) in milliseconds, never going back; NULL restores
 * dt_monotonic_ms().  Set it before anything is armed.  After moving a fake
 * clock, dt_watcher_clock_moved() has the watcher thread fire what is now
 * due and returns once it did (at once when the thread is not started:
 * then it fires them itself), so a test can assert what fired and what
 * did not.
 */
typedef uint64_t (*watcher_clock_fn)(void *arg);
void dt_watcher_set_clock(struct watcher *watcher, watcher_clock_fn now, void *arg);
void dt_watcher_clock_moved(struct watcher *watcher);

/* For state that callbacks share with other threads. */
void dt_watcher_lock(struct watcher *watcher);
void dt_watcher_unlock(struct watcher *watcher);

#endif
