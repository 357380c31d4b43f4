/*
 * test_job_memory.c - the jobs' memory: blocks that do not overlap,
 * chunks reused once empty, a long-lived block holding only its chunk,
 * surplus given back (whole slabs unmapped), a reserve that follows the
 * demand (chunks taken, not refills), a floor kept faulted in, big blocks
 * from malloc(), releases from any thread.
 */
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "sched/job_memory.h"

/* As job_memory.c: an idle server's reserve, the busiest one's, the empty
 * chunks kept past the reserve (16 MiB), and a slab's chunks. */
enum { READY_LEAST = 32, READY_LARGEST = 1024, READY_MOST = 256, CHUNKS_PER_SLAB = 32,
       SLAB_SIZE = 2 * 1024 * 1024, CHUNK_SIZE = 64 * 1024 };

static void sleep_ms(long ms)
{
    struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&pause, NULL);
}

static struct job_memory_counts counts_of(struct job_memory *memory)
{
    struct job_memory_counts counts;

    job_memory_counts(memory, &counts);
    return counts;
}

/* Every chunk is ready, in use, given back, or unmapped with its slab
 * once the memory thread has handled the surplus: the chunks mapped so
 * far. */
static size_t chunks_mapped(struct job_memory *memory)
{
    struct job_memory_counts counts = counts_of(memory);

    return counts.chunks_ready + counts.chunks_in_use + counts.chunks_returned +
           counts.chunks_unmapped;
}

/* The memory thread works on its own: wait (bounded) for it. */
static void wait_until_ready_at_least(struct job_memory *memory, size_t ready)
{
    for (int i = 0; i < 5000 && counts_of(memory).chunks_ready < ready; i++)
        sleep_ms(1);
    assert_true(counts_of(memory).chunks_ready >= ready);
}

/* After a burst: a second after its last refill the memory thread is
 * back to an idle server's reserve, keeps at most READY_MOST empty chunks
 * and gives the rest back.  `mapped`:
 * chunks_mapped() before; a chunk on its way back is counted nowhere, so
 * the count is whole again once the thread is done. */
static void wait_until_given_back(struct job_memory *memory, size_t mapped)
{
    for (int i = 0; i < 5000; i++) {
        struct job_memory_counts counts = counts_of(memory);

        if (counts.chunks_ready <= READY_MOST &&
            counts.chunks_returned + counts.chunks_unmapped > 0 &&
            counts.chunks_reserve == READY_LEAST && chunks_mapped(memory) >= mapped)
            break;
        sleep_ms(1);
    }
}

static void fill(unsigned char *block, size_t size, unsigned seed)
{
    for (size_t i = 0; i < size; i++)
        block[i] = (unsigned char)(seed + i);
}

static int intact(const unsigned char *block, size_t size, unsigned seed)
{
    for (size_t i = 0; i < size; i++)
        if (block[i] != (unsigned char)(seed + i))
            return 0;
    return 1;
}

static void nothing_is_mapped_before_the_first_block(void **state)
{
    struct job_memory *memory = job_memory_new(0);
    void *block;

    assert_non_null(memory);
    assert_int_equal(chunks_mapped(memory), 0);
    block = job_memory_allocate(memory, 100);
    assert_non_null(block);
    wait_until_ready_at_least(memory, 16);   /* asked once: it fills */
    job_memory_release(block);
    job_memory_free(memory);
}

static void blocks_are_aligned_apart_and_keep_their_bytes(void **state)
{
    enum { COUNT = 6000 };
    struct job_memory *memory = job_memory_new(0);
    unsigned char **blocks = calloc(COUNT, sizeof(*blocks));
    size_t *sizes = calloc(COUNT, sizeof(*sizes));

    assert_non_null(memory);
    assert_non_null(blocks);
    assert_non_null(sizes);
    for (unsigned i = 0; i < COUNT; i++) {
        sizes[i] = 1 + (i * 7919u) % 3000;   /* 1 .. 3000 bytes, mixed */
        blocks[i] = job_memory_allocate(memory, sizes[i]);
        assert_non_null(blocks[i]);
        assert_int_equal((uintptr_t)blocks[i] % 16, 0);
        fill(blocks[i], sizes[i], i);
    }
    /* Written all before any is checked: an overlap would show. */
    for (unsigned i = 0; i < COUNT; i++) {
        assert_true(intact(blocks[i], sizes[i], i));
        job_memory_release(blocks[i]);
    }
    free(sizes);
    free(blocks);
    job_memory_free(memory);
}

static void emptied_chunks_are_carved_again(void **state)
{
    enum { COUNT = 4000, ROUNDS = 30 };   /* about 62 chunks a round */
    struct job_memory *memory = job_memory_new(0);
    void **blocks = calloc(COUNT, sizeof(*blocks));

    assert_non_null(memory);
    assert_non_null(blocks);
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < COUNT; i++)
            assert_non_null(blocks[i] = job_memory_allocate(memory, 1000));
        for (int i = 0; i < COUNT; i++)
            job_memory_release(blocks[i]);
        /* At most the chunk being carved is still in use. */
        assert_true(counts_of(memory).chunks_in_use <= 1);
    }
    /* Without reuse, 1,860 chunks.  With it: a round's worth, the reserve
     * (it may grow while the first round takes chunks fast), a slab of
     * rounding. */
    assert_true(chunks_mapped(memory) <= 62 + READY_LARGEST + CHUNKS_PER_SLAB);
    free(blocks);
    job_memory_free(memory);
}

/* COUNT blocks of 1,000 bytes (63 a chunk), all from chunks: when the
 * memory thread falls behind, blocks come from malloc(); give it a moment
 * and go on. */
static void allocate_from_chunks(struct job_memory *memory, void **blocks, int count)
{
    size_t outside = counts_of(memory).blocks_outside;

    for (int i = 0; i < count; i++) {
        assert_non_null(blocks[i] = job_memory_allocate(memory, 1000));
        if (counts_of(memory).blocks_outside > outside) {
            outside++;
            job_memory_release(blocks[i--]);
            sleep_ms(1);
        }
    }
}

static void a_long_lived_block_holds_only_its_chunk(void **state)
{
    enum { COUNT = 24000, KEEP_EVERY = 600 };   /* a kept block every ~9 chunks */
    struct job_memory *memory = job_memory_new(0);
    void **blocks = calloc(COUNT, sizeof(*blocks));
    size_t kept = 0, mapped;

    assert_non_null(memory);
    assert_non_null(blocks);
    allocate_from_chunks(memory, blocks, COUNT);
    mapped = chunks_mapped(memory);
    for (int i = 0; i < COUNT; i++) {
        if (i % KEEP_EVERY == 0)
            kept++;
        else
            job_memory_release(blocks[i]);
    }
    /* Each kept block's chunk, and the one being carved: nothing else.
     * 370 chunks emptied, more than READY_MOST: once the reserve is back
     * to an idle server's (a second after the last refill), the rest goes
     * back to the system. */
    assert_true(counts_of(memory).chunks_in_use <= kept + 1);
    wait_until_given_back(memory, mapped);
    assert_true(counts_of(memory).chunks_ready <= READY_MOST);
    assert_true(counts_of(memory).chunks_returned > 0);
    for (int i = 0; i < COUNT; i += KEEP_EVERY)
        job_memory_release(blocks[i]);
    assert_true(counts_of(memory).chunks_in_use <= 1);
    /* Given-back chunks serve again: the thread faults them in first. */
    allocate_from_chunks(memory, blocks, COUNT);
    for (int i = 0; i < COUNT; i++) {
        fill(blocks[i], 1000, (unsigned)i);
        assert_true(intact(blocks[i], 1000, (unsigned)i));
        job_memory_release(blocks[i]);
    }
    free(blocks);
    job_memory_free(memory);
}

/* `count` blocks of 1,000 bytes, a chunk's worth (63) a millisecond: a
 * steady demand (64 MiB/s) the thread keeps up with, woken again soon
 * after each refill.  When it falls behind, a block from malloc() is put
 * back and the loop waits a moment.  Returns the largest reserve seen. */
static size_t allocate_steadily(struct job_memory *memory, void **blocks, int count)
{
    size_t largest = 0, outside = counts_of(memory).blocks_outside;

    for (int i = 0; i < count; i++) {
        size_t reserve;

        assert_non_null(blocks[i] = job_memory_allocate(memory, 1000));
        if (counts_of(memory).blocks_outside > outside) {
            outside++;
            job_memory_release(blocks[i--]);
            sleep_ms(1);
        }
        reserve = counts_of(memory).chunks_reserve;
        largest = reserve > largest ? reserve : largest;
        if (i % 63 == 62)
            sleep_ms(1);
    }
    return largest;
}

/* Blocks taken steadily from new slabs: the reserve grows past what an
 * idle server keeps, so the thread is woken less often for more at a
 * time; idle, it shrinks back and the surplus is given back, whole slabs
 * unmapped.  Taken again, the memory comes back as new slabs, and the
 * reserve grows again. */
static void the_reserve_follows_the_demand(void **state)
{
    enum { COUNT = 80000 };   /* about 1,270 chunks */
    struct job_memory *memory = job_memory_new(0);
    void **blocks = calloc(COUNT, sizeof(*blocks));
    size_t mapped;

    assert_non_null(memory);
    assert_non_null(blocks);
    assert_int_equal(counts_of(memory).chunks_reserve, READY_LEAST);
    assert_true(allocate_steadily(memory, blocks, COUNT) > READY_LEAST);
    mapped = chunks_mapped(memory);
    for (int i = 0; i < COUNT; i++)
        job_memory_release(blocks[i]);
    wait_until_given_back(memory, mapped);
    assert_true(counts_of(memory).chunks_ready <= READY_MOST);
    assert_int_equal(counts_of(memory).chunks_reserve, READY_LEAST);
    /* Released in the order taken, most slabs emptied whole. */
    assert_true(counts_of(memory).chunks_unmapped >= (size_t)(COUNT / 63 - READY_MOST) / 2);
    assert_true(allocate_steadily(memory, blocks, COUNT) > READY_LEAST);
    for (int i = 0; i < COUNT; i++)
        job_memory_release(blocks[i]);
    free(blocks);
    job_memory_free(memory);
}

/* detach_options.job_memory: that much (whole slabs) is faulted in at
 * start, with nothing asked for, and after a burst past it only the memory
 * above it goes back: READY_MOST (256) chunks would be kept without it,
 * the floor (544) with it. */
static void a_floor_is_faulted_in_at_start_and_kept(void **state)
{
    enum { COUNT = 80000, FLOOR = 17 * CHUNKS_PER_SLAB };   /* 33 MiB, rounded up */
    struct job_memory *memory = job_memory_new(33 * 1024 * 1024);
    void **blocks = calloc(COUNT, sizeof(*blocks));
    struct job_memory_counts counts;
    size_t mapped;

    assert_non_null(memory);
    assert_non_null(blocks);
    assert_int_equal(counts_of(memory).chunks_floor, FLOOR);
    wait_until_ready_at_least(memory, FLOOR);
    assert_int_equal(counts_of(memory).chunks_in_use, 0);
    for (int i = 0; i < COUNT; i++)
        assert_non_null(blocks[i] = job_memory_allocate(memory, 1000));
    wait_until_ready_at_least(memory, 1);   /* past the floor: the reserve refills */
    mapped = chunks_mapped(memory);
    assert_true(mapped > FLOOR);
    for (int i = 0; i < COUNT; i++)
        job_memory_release(blocks[i]);
    for (int i = 0; i < 5000; i++) {
        counts = counts_of(memory);
        if (counts.chunks_reserve == READY_LEAST &&
            counts.chunks_returned + counts.chunks_unmapped > 0 && chunks_mapped(memory) >= mapped &&
            counts.chunks_ready + counts.chunks_in_use == FLOOR)
            break;
        sleep_ms(1);
    }
    counts = counts_of(memory);
    assert_int_equal(counts.chunks_reserve, READY_LEAST);
    assert_true(counts.chunks_in_use <= 1);   /* the chunk being carved */
    assert_true(counts.chunks_returned + counts.chunks_unmapped > 0);
    assert_int_equal(counts.chunks_ready + counts.chunks_in_use, FLOOR);
    free(blocks);
    job_memory_free(memory);
}

/* Jobs that end as fast as new ones come: the chunks they empty feed the
 * allocators, no refill is needed, and the memory thread is not woken.
 * The demand is as high as ever: the reserve holds, and nothing is given
 * back to be faulted in again.  (Judged by its refills, it fell to its
 * least a second after the last one.)  A ring of COUNT blocks, four
 * chunks' worth (63 each) taken and the oldest four chunks' worth
 * released a millisecond, for longer than IDLE_MS (1 s) twice over: even
 * a machine four times slower takes more than half the largest reserve
 * a second. */
static void the_reserve_holds_while_released_chunks_feed_the_demand(void **state)
{
    enum { COUNT = 80000, PER_STEP = 4 * 63, STEPS = COUNT / PER_STEP, RING_MS = 2500 };
    struct job_memory *memory = job_memory_new(0);
    void **blocks = calloc(COUNT, sizeof(*blocks));
    size_t reserve, returned;
    struct timespec begin, now;

    assert_non_null(memory);
    assert_non_null(blocks);
    allocate_steadily(memory, blocks, COUNT);
    reserve = counts_of(memory).chunks_reserve;
    assert_true(reserve > READY_LEAST);
    wait_until_ready_at_least(memory, reserve / 2);   /* no refill under way */
    returned = counts_of(memory).chunks_returned;
    clock_gettime(CLOCK_MONOTONIC, &begin);
    for (int step = 0;; step = (step + 1) % STEPS) {
        void **ring = blocks + (size_t)step * PER_STEP;
        void *taken[PER_STEP];

        for (int i = 0; i < PER_STEP; i++)
            assert_non_null(taken[i] = job_memory_allocate(memory, 1000));
        for (int i = 0; i < PER_STEP; i++) {
            job_memory_release(ring[i]);
            ring[i] = taken[i];
        }
        assert_true(counts_of(memory).chunks_reserve >= reserve);
        sleep_ms(1);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - begin.tv_sec) * 1000 + (now.tv_nsec - begin.tv_nsec) / 1000000 > RING_MS)
            break;
    }
    assert_int_equal(counts_of(memory).chunks_returned, returned);
    for (int i = 0; i < COUNT; i++)
        job_memory_release(blocks[i]);
    free(blocks);
    job_memory_free(memory);
}

/* Slabs are 2-MiB aligned: is this block in the first chunk of its slab? */
static int in_first_chunk(const void *block)
{
    return ((uintptr_t)block & (SLAB_SIZE - 1)) < CHUNK_SIZE;
}

/* The blocks of each slab's first chunk kept: the slabs' other chunks are
 * given back one by one, kept mapped.  Taken again, they are faulted in
 * again in small batches (4-KiB pages, a fault each): the reserve does not
 * grow while they last. */
static void given_back_chunks_come_back_in_small_batches(void **state)
{
    enum { COUNT = 80000, AGAIN = 40000 };   /* about 1,270 and 635 chunks */
    struct job_memory *memory = job_memory_new(0);
    void **blocks = calloc(COUNT, sizeof(*blocks));
    void **again = calloc(AGAIN, sizeof(*again));
    size_t mapped;

    assert_non_null(memory);
    assert_non_null(blocks);
    assert_non_null(again);
    allocate_steadily(memory, blocks, COUNT);
    mapped = chunks_mapped(memory);
    for (int i = 0; i < COUNT; i++)
        if (!in_first_chunk(blocks[i]))
            job_memory_release(blocks[i]);
    wait_until_given_back(memory, mapped);
    /* Enough for the next round, a slab of margin. */
    assert_true(counts_of(memory).chunks_returned > AGAIN / 63 + CHUNKS_PER_SLAB);
    assert_int_equal(allocate_steadily(memory, again, AGAIN), READY_LEAST);
    assert_true(counts_of(memory).chunks_returned > 0);   /* they lasted throughout */
    for (int i = 0; i < AGAIN; i++)
        job_memory_release(again[i]);
    for (int i = 0; i < COUNT; i++)
        if (in_first_chunk(blocks[i]))
            job_memory_release(blocks[i]);
    free(again);
    free(blocks);
    job_memory_free(memory);
}

static void a_big_block_comes_from_malloc(void **state)
{
    struct job_memory *memory = job_memory_new(0);
    unsigned char *big, *small;
    size_t outside;

    assert_non_null(memory);
    small = job_memory_allocate(memory, 10);
    wait_until_ready_at_least(memory, 16);
    outside = counts_of(memory).blocks_outside;   /* the first may be: nothing was ready */
    big = job_memory_allocate(memory, 1 << 20);
    assert_non_null(big);
    assert_non_null(small);
    assert_int_equal(counts_of(memory).blocks_outside, outside + 1);
    fill(big, 1 << 20, 3);
    assert_true(intact(big, 1 << 20, 3));
    job_memory_release(big);
    job_memory_release(small);
    job_memory_release(NULL);   /* ignored, as free(NULL) */
    assert_null(job_memory_allocate(memory, SIZE_MAX - 8));
    job_memory_free(memory);
}

#if !defined(__SANITIZE_ADDRESS__)
static double process_cpu_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return (double)now.tv_sec * 1000 + (double)now.tv_nsec / 1e6;
}
#endif

/* In a child whose address space is nearly full: no slab can be mapped,
 * blocks come from malloc(), and the memory thread waits between tries
 * instead of spinning.  (AddressSanitizer reserves terabytes: skipped.) */
static void with_no_memory_to_map_blocks_come_from_malloc(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
    skip();
#else
    pid_t child = fork();
    int status;

    assert_true(child >= 0);
    if (child == 0) {
        struct job_memory *memory = job_memory_new(0);
        struct rlimit limit;
        void *blocks[100];
        double before;
        long pages = 0;
        FILE *statm = fopen("/proc/self/statm", "r");

        if (!memory || !statm || fscanf(statm, "%ld", &pages) != 1)
            _exit(2);
        fclose(statm);
        /* 1 MiB more than now: a slab takes 4 MiB of address space. */
        limit.rlim_cur = limit.rlim_max = (rlim_t)pages * 4096 + (1 << 20);
        if (setrlimit(RLIMIT_AS, &limit) < 0)
            _exit(3);
        for (int i = 0; i < 100; i++)
            if (!(blocks[i] = job_memory_allocate(memory, 64)))
                _exit(4);
        before = process_cpu_ms();
        sleep_ms(300);
        if (process_cpu_ms() - before > 100)
            _exit(5);   /* the thread spun */
        if (counts_of(memory).blocks_outside != 100 || chunks_mapped(memory) != 0)
            _exit(6);
        for (int i = 0; i < 100; i++)
            job_memory_release(blocks[i]);
        job_memory_free(memory);
        _exit(0);
    }
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

/* One thread allocates, as the watcher does; others release, as job
 * threads do, while it goes on. */
struct relay {
    struct job_memory *memory;
    unsigned char **blocks;
    size_t count;
    _Atomic size_t published, taken;
};

enum { RELAY_BLOCKS = 60000, RELAY_SIZE = 700 };

static void *release_published(void *arg)
{
    struct relay *relay = arg;
    size_t index;

    while ((index = atomic_fetch_add(&relay->taken, 1)) < relay->count) {
        while (atomic_load(&relay->published) <= index)
            ;   /* the allocator is ahead in a moment */
        assert_true(intact(relay->blocks[index], RELAY_SIZE, (unsigned)index));
        job_memory_release(relay->blocks[index]);
    }
    return NULL;
}

static void releases_from_other_threads_while_allocating(void **state)
{
    struct relay relay = { .count = RELAY_BLOCKS };
    pthread_t releasers[3];

    relay.memory = job_memory_new(0);
    relay.blocks = calloc(RELAY_BLOCKS, sizeof(*relay.blocks));
    assert_non_null(relay.memory);
    assert_non_null(relay.blocks);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&releasers[i], NULL, release_published, &relay), 0);
    for (size_t i = 0; i < RELAY_BLOCKS; i++) {
        relay.blocks[i] = job_memory_allocate(relay.memory, RELAY_SIZE);
        assert_non_null(relay.blocks[i]);
        fill(relay.blocks[i], RELAY_SIZE, (unsigned)i);
        atomic_store(&relay.published, i + 1);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(releasers[i], NULL);
    assert_true(counts_of(relay.memory).chunks_in_use <= 1);
    free(relay.blocks);
    job_memory_free(relay.memory);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_is_mapped_before_the_first_block),
        cmocka_unit_test(blocks_are_aligned_apart_and_keep_their_bytes),
        cmocka_unit_test(emptied_chunks_are_carved_again),
        cmocka_unit_test(a_long_lived_block_holds_only_its_chunk),
        cmocka_unit_test(the_reserve_follows_the_demand),
        cmocka_unit_test(the_reserve_holds_while_released_chunks_feed_the_demand),
        cmocka_unit_test(a_floor_is_faulted_in_at_start_and_kept),
        cmocka_unit_test(given_back_chunks_come_back_in_small_batches),
        cmocka_unit_test(a_big_block_comes_from_malloc),
        cmocka_unit_test(with_no_memory_to_map_blocks_come_from_malloc),
        cmocka_unit_test(releases_from_other_threads_while_allocating),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
