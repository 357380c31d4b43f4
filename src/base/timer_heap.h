/*
 * timer_heap.h - a binary min-heap of deadlines, the watcher's clock.
 *
 * Timers are intrusive: the owner embeds a struct timer and keeps it alive
 * while armed.  Each timer remembers its heap slot, so removing one is
 * O(log n) and needs no search.  Not thread-safe: the watcher locks it.
 */
#ifndef DETACH_TIMER_HEAP_H
#define DETACH_TIMER_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct timer;
typedef void (*timer_fn)(struct timer *timer);

struct timer {
    uint64_t deadline_ms;   /* monotonic milliseconds */
    size_t slot;            /* index in the heap; SIZE_MAX when not armed */
    timer_fn fire;
};

struct timer_heap {
    struct timer **items;
    size_t count;
    size_t capacity;
};

void dt_timer_init(struct timer *timer, timer_fn fire);
int dt_timer_armed(const struct timer *timer);

void dt_timer_heap_init(struct timer_heap *heap);
void dt_timer_heap_destroy(struct timer_heap *heap);
/* Arms or re-arms: a timer already in the heap moves to its new deadline. */
int dt_timer_heap_arm(struct timer_heap *heap, struct timer *timer, uint64_t deadline_ms);
void dt_timer_heap_disarm(struct timer_heap *heap, struct timer *timer);
/* The earliest timer, or NULL. */
struct timer *dt_timer_heap_first(const struct timer_heap *heap);

/* Monotonic clock in milliseconds. */
uint64_t dt_monotonic_ms(void);

#endif
