/*
 * timer_heap.c - the binary min-heap behind every deadline.
 *
 * Thousands of jobs each hold a time limit; a heap keeps arming, moving
 * and cancelling one at O(log n), and the watcher only ever needs the
 * earliest to compute its epoll timeout.
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "base/timer_heap.h"

void dt_timer_init(struct timer *timer, timer_fn fire)
{
    timer->deadline_ms = 0;
    timer->slot = SIZE_MAX;
    timer->fire = fire;
}

int dt_timer_armed(const struct timer *timer)
{
    return timer->slot != SIZE_MAX;
}

void dt_timer_heap_init(struct timer_heap *heap)
{
    heap->items = NULL;
    heap->count = 0;
    heap->capacity = 0;
}

void dt_timer_heap_destroy(struct timer_heap *heap)
{
    free(heap->items);
    dt_timer_heap_init(heap);
}

static void place(struct timer_heap *heap, size_t slot, struct timer *timer)
{
    heap->items[slot] = timer;
    timer->slot = slot;
}

static void sift_up(struct timer_heap *heap, size_t slot)
{
    struct timer *timer = heap->items[slot];

    while (slot > 0) {
        size_t parent = (slot - 1) / 2;
        if (heap->items[parent]->deadline_ms <= timer->deadline_ms)
            break;
        place(heap, slot, heap->items[parent]);
        slot = parent;
    }
    place(heap, slot, timer);
}

static void sift_down(struct timer_heap *heap, size_t slot)
{
    struct timer *timer = heap->items[slot];

    for (;;) {
        size_t child = 2 * slot + 1;
        if (child >= heap->count)
            break;
        if (child + 1 < heap->count &&
            heap->items[child + 1]->deadline_ms < heap->items[child]->deadline_ms)
            child++;
        if (timer->deadline_ms <= heap->items[child]->deadline_ms)
            break;
        place(heap, slot, heap->items[child]);
        slot = child;
    }
    place(heap, slot, timer);
}

int dt_timer_heap_arm(struct timer_heap *heap, struct timer *timer, uint64_t deadline_ms)
{
    if (dt_timer_armed(timer)) {
        uint64_t old = timer->deadline_ms;
        timer->deadline_ms = deadline_ms;
        if (deadline_ms < old)
            sift_up(heap, timer->slot);
        else
            sift_down(heap, timer->slot);
        return 0;
    }
    if (heap->count == heap->capacity) {
        size_t capacity = heap->capacity ? heap->capacity * 2 : 64;
        struct timer **items = realloc(heap->items, capacity * sizeof(*items));
        if (!items)
            return -1;
        heap->items = items;
        heap->capacity = capacity;
    }
    timer->deadline_ms = deadline_ms;
    place(heap, heap->count++, timer);
    sift_up(heap, timer->slot);
    return 0;
}

void dt_timer_heap_disarm(struct timer_heap *heap, struct timer *timer)
{
    size_t slot = timer->slot;
    struct timer *last;

    if (!dt_timer_armed(timer))
        return;
    timer->slot = SIZE_MAX;
    last = heap->items[--heap->count];
    if (last == timer)
        return;
    place(heap, slot, last);
    /* The moved timer may belong above or below its new slot. */
    sift_up(heap, slot);
    sift_down(heap, last->slot);
}

struct timer *dt_timer_heap_first(const struct timer_heap *heap)
{
    return heap->count ? heap->items[0] : NULL;
}

uint64_t dt_monotonic_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}
