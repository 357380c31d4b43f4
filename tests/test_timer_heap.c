/*
 * test_timer_heap.c - the deadline heap: order, re-arming, cancelling.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "base/timer_heap.h"

static void no_op(struct timer *timer)
{
    (void)timer;
}

static void pops_in_deadline_order(void **state)
{
    struct timer_heap heap;
    struct timer timers[200];
    uint64_t last = 0;

    dt_timer_heap_init(&heap);
    srand(7);
    for (int i = 0; i < 200; i++) {
        dt_timer_init(&timers[i], no_op);
        assert_int_equal(dt_timer_heap_arm(&heap, &timers[i], (uint64_t)(rand() % 1000)), 0);
    }
    for (int i = 0; i < 200; i++) {
        struct timer *first = dt_timer_heap_first(&heap);
        assert_non_null(first);
        assert_true(first->deadline_ms >= last);
        last = first->deadline_ms;
        dt_timer_heap_disarm(&heap, first);
        assert_false(dt_timer_armed(first));
    }
    assert_null(dt_timer_heap_first(&heap));
    dt_timer_heap_destroy(&heap);
}

static void rearm_moves_the_deadline(void **state)
{
    struct timer_heap heap;
    struct timer a, b;

    dt_timer_heap_init(&heap);
    dt_timer_init(&a, no_op);
    dt_timer_init(&b, no_op);
    dt_timer_heap_arm(&heap, &a, 100);
    dt_timer_heap_arm(&heap, &b, 200);
    assert_ptr_equal(dt_timer_heap_first(&heap), &a);
    /* A restarted time limit: the same timer, later. */
    dt_timer_heap_arm(&heap, &a, 300);
    assert_ptr_equal(dt_timer_heap_first(&heap), &b);
    assert_int_equal(heap.count, 2);
    dt_timer_heap_arm(&heap, &a, 50);
    assert_ptr_equal(dt_timer_heap_first(&heap), &a);
    dt_timer_heap_destroy(&heap);
}

static void disarm_from_the_middle(void **state)
{
    struct timer_heap heap;
    struct timer timers[10];

    dt_timer_heap_init(&heap);
    for (int i = 0; i < 10; i++) {
        dt_timer_init(&timers[i], no_op);
        dt_timer_heap_arm(&heap, &timers[i], (uint64_t)(10 - i) * 10);
    }
    dt_timer_heap_disarm(&heap, &timers[4]);
    dt_timer_heap_disarm(&heap, &timers[4]);   /* twice is harmless */
    assert_int_equal(heap.count, 9);
    for (uint64_t last = 0; dt_timer_heap_first(&heap);) {
        struct timer *first = dt_timer_heap_first(&heap);
        assert_ptr_not_equal(first, &timers[4]);
        assert_true(first->deadline_ms >= last);
        last = first->deadline_ms;
        dt_timer_heap_disarm(&heap, first);
    }
    dt_timer_heap_destroy(&heap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pops_in_deadline_order),
        cmocka_unit_test(rearm_moves_the_deadline),
        cmocka_unit_test(disarm_from_the_middle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
