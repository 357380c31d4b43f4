/*
 * job_memory.c - memory for jobs, faulted in before the watcher needs it
 * (job_memory.h).
 *
 * Why not malloc(): the watcher allocates every trigger's job (its state,
 * params and body, about 1 KiB), and while jobs pile up, 2-second jobs at
 * 30,000 acks a second, that memory is new.  A page's first touch costs
 * 15-20 us on this class of VM, so malloc() made the watcher take a page
 * fault every few acks, 15% of its time, each one delaying every
 * connection behind it.
 *
 * The layout: 2-MiB slabs, mapped and touched by the "detach-memory"
 * thread ahead of need, as transparent huge pages where the kernel allows
 * (zeroing a huge page under the hypervisor costs about 2.8 ms a MiB,
 * 512 small faults 4.6 ms).  That thread keeps the application's
 * priority: its work is the acks', and niced it fell behind.
 *
 * How much it keeps ready adapts to the demand.  Each time the thread is
 * woken it takes a CPU from nginx, the client or the watcher, whatever its
 * work, so under a steady demand it should be woken seldom, for big
 * batches: with jobs queued at 30,000 a second (30 MiB/s), a slab (2 MiB)
 * a time gave an ack p99 of 3.9-4.5 ms, 32 MiB a time 2.5-3.4 ms, for the
 * same CPU.  So a reserve emptied within QUICK_REFILL_MS of its last
 * refill doubles, up to READY_LARGEST, and the thread is woken when half
 * of it is gone.  It shrinks by the chunks taken, not by the refills:
 * while jobs end as fast as new ones come, the chunks they empty feed the
 * allocators and no refill is needed, yet the demand is as high (2-second
 * jobs end in waves of `max_jobs`: judged by its refills, the reserve fell
 * to its least every 4 s and was built again a slab at a time: by perf
 * sched, the thread took a CPU 329 times in 3 s, now 60).  A reserve that
 * IDLE_MS took none of falls back to what an idle server keeps; one that
 * it took less than half of, to its half.  For the same reason the empty
 * chunks kept are twice the reserve: a wave of jobs ending refills the
 * ready list past the reserve, and memory given back then is faulted in
 * again a moment later, 4 KiB at a time.  It does not grow while chunks
 * given back earlier wait to be faulted in again: they come back as 4-KiB
 * pages, a fault each, and a big batch of those held a CPU long enough to
 * double the p99 (primed 2-s jobs, by hand: 7.9-22.9 ms against 6.0-8.1 ms
 * with small batches).
 *
 * A slab is cut into 64-KiB chunks; the allocator carves blocks from one
 * chunk front to back, and a chunk counts its live blocks, plus one while
 * it is being carved.  Jobs end in about the order they began, so a chunk
 * empties as a whole, and the release that empties it puts it back on the
 * ready list, still faulted in.  A job that runs for days holds its chunk,
 * at most 64 KiB, never a slab: the slab's other chunks go on being used.
 * Past 16 MiB of empty chunks, or past twice the reserve if more, the
 * thread gives the rest back to the system (MADV_DONTNEED) and keeps them
 * mapped for later; a slab whose chunks have all come back is unmapped
 * whole, so that memory comes back as a new slab, a huge page again.
 * When it falls behind, blocks come from malloc() until it catches up.
 *
 * An application that expects a queue can have a floor faulted in at
 * start (detach_options.job_memory) and never given back: on this class
 * of VM every new 2-MiB slab holds a CPU for some milliseconds, whichever
 * thread takes it, so a queue that grows within the floor keeps those
 * stalls out of the acks (by hand, 2-s jobs at a fixed 15,000 triggers a
 * second: ack p99 about halved; docs/benchmarks.md).
 *
 * Locks: allocators take `lock` (the watcher, and seldom a worker or the
 * recovery at start: never a niced thread, so the ack path never waits
 * for one).  Releases, from any thread, take no lock: the ready and
 * surplus lists are lock-free stacks with one popper each (the lock's
 * holder, the memory thread), so the ABA problem cannot arise.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/error.h"
#include "base/log.h"
#include "base/thread.h"
#include "base/timer_heap.h"
#include "base/wakeup.h"
#include "sched/job_memory.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(address, size) ASAN_POISON_MEMORY_REGION(address, size)
#define UNPOISON(address, size) ASAN_UNPOISON_MEMORY_REGION(address, size)
#define NO_SANITIZE_ADDRESS __attribute__((no_sanitize_address))
#else
#define POISON(address, size) ((void)(address), (void)(size))
#define UNPOISON(address, size) ((void)(address), (void)(size))
#define NO_SANITIZE_ADDRESS
#endif

enum {
    SLAB_SIZE = 2 * 1024 * 1024,   /* a transparent huge page */
    CHUNK_SIZE = 64 * 1024,
    CHUNKS_PER_SLAB = SLAB_SIZE / CHUNK_SIZE,
    CHUNK_HEADER_SIZE = 64,
    /* Bigger blocks (a large body) come from malloc(): a chunk's tail left
     * unused is at most this. */
    LARGEST_BLOCK = CHUNK_SIZE / 8,
    READY_LEAST = 32,     /* the reserve of an idle server: one slab */
    READY_LARGEST = 1024, /* at the busiest: 64 MiB, 2 s of 30,000 acks/s */
    READY_MOST = 256,     /* 16 MiB: empty chunks past this (or past twice
                           * the reserve) go back to the system */
    QUICK_REFILL_MS = 500,
    IDLE_MS = 1000,
    PAGE = 4096,
};

struct chunk {
    struct chunk *next;             /* on a list */
    struct chunk *previous_cold;    /* on the cold list, which is doubly linked */
    struct job_memory *owner;
    struct slab *slab;
    _Atomic size_t references;      /* live blocks, +1 while carved */
};

/* Before every block. */
struct block_header {
    struct chunk *chunk;            /* NULL: from malloc() */
    size_t size;                    /* as asked (the sanitizer's extent) */
};

/* The memory thread's alone. */
struct slab {
    struct slab *next;
    void *base;
    unsigned given_back;            /* its chunks on the cold list */
};

struct job_memory {
    pthread_mutex_t lock;           /* allocators */
    struct chunk *carving;          /* guarded by lock */
    size_t carved;                  /* guarded by lock: its next block's offset */

    _Atomic(struct chunk *) ready;  /* faulted in and empty */
    _Atomic size_t ready_count;     /* counted before a push, after a pop */
    _Atomic size_t taken;           /* chunks popped by the allocators, ever */
    _Atomic(struct chunk *) surplus; /* empty past keep_limit: to give back */
    _Atomic size_t in_use, returned, outside;
    _Atomic size_t low_mark;        /* fewer ready: the thread is woken */
    _Atomic size_t keep_limit;      /* more empty: the surplus is given back */

    _Atomic size_t reserve;         /* it faults in up to this many (it alone writes) */
    size_t floor;                   /* chunks always faulted in, in use or ready */

    /* The memory thread's alone. */
    uint64_t last_refill_ms;
    size_t taken_seen;              /* `taken` at the last refill or idle look */
    struct chunk *cold;             /* given back, mapped, not faulted in */
    struct slab *slabs;
    _Atomic size_t unmapped;        /* chunks of whole slabs given back (counts) */
    int failing;                    /* mmap() failed; logged */

    struct wakeup wakeup;           /* the memory thread sleeps here */
    _Atomic int wanted;             /* a first chunk was asked for: fill */
    _Atomic int stopping;
    int has_thread;
    pthread_t thread;
};

static void push(_Atomic(struct chunk *) *list, struct chunk *chunk)
{
    struct chunk *head = atomic_load_explicit(list, memory_order_relaxed);

    do
        chunk->next = head;
    while (!atomic_compare_exchange_weak_explicit(list, &head, chunk, memory_order_release,
                                                  memory_order_relaxed));
}

/* The list's only popper: nobody else can take `head` (and push it
 * again) between the load and the exchange. */
static struct chunk *pop(_Atomic(struct chunk *) *list)
{
    struct chunk *head = atomic_load_explicit(list, memory_order_acquire);

    while (head && !atomic_compare_exchange_weak_explicit(list, &head, head->next,
                                                          memory_order_acquire,
                                                          memory_order_acquire))
        ;
    return head;
}

/* One write per page makes the kernel fault it in (a whole huge page at
 * the first write, where it can); poisoned memory to the sanitizer, hence
 * the attribute. */
NO_SANITIZE_ADDRESS static void fault_in(void *start, size_t size)
{
    for (volatile char *page = start; page < (char *)start + size; page += PAGE)
        *page = 0;
}

/* With `ready` chunks ready, fewer are faulted in than the application
 * asked to keep (detach_options.job_memory). */
static int below_floor(struct job_memory *memory, size_t ready)
{
    return ready + atomic_load_explicit(&memory->in_use, memory_order_relaxed) < memory->floor;
}

/* Empty, faulted in: back on the ready list, or given back past the keep
 * limit. */
static void chunk_recycle(struct job_memory *memory, struct chunk *chunk)
{
    size_t ready = atomic_load_explicit(&memory->ready_count, memory_order_relaxed);

    POISON((char *)chunk + CHUNK_HEADER_SIZE, CHUNK_SIZE - CHUNK_HEADER_SIZE);
    if (ready < atomic_load_explicit(&memory->keep_limit, memory_order_relaxed) ||
        below_floor(memory, ready)) {
        atomic_fetch_add(&memory->ready_count, 1);
        push(&memory->ready, chunk);
    } else {
        push(&memory->surplus, chunk);
        wakeup_one(&memory->wakeup);
    }
}

static void chunk_unreference(struct chunk *chunk)
{
    struct job_memory *memory = chunk->owner;

    if (atomic_fetch_sub_explicit(&chunk->references, 1, memory_order_acq_rel) != 1)
        return;
    atomic_fetch_sub(&memory->in_use, 1);
    chunk_recycle(memory, chunk);
}

/* Memory thread.  A new slab, its chunks on the ready list; -1 when the
 * system has no memory to map (the allocators fall back to malloc()). */
static int add_slab(struct job_memory *memory)
{
    struct slab *slab = malloc(sizeof(*slab));
    char *mapping, *base;
    size_t head;

    if (!slab)
        return -1;
    /* Twice the size, to cut a slab-aligned one out: a huge page needs
     * one. */
    mapping = mmap(NULL, 2 * SLAB_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) {
        int error = errno;

        free(slab);
        errno = error;
        return -1;
    }
    base = (char *)(((uintptr_t)mapping + SLAB_SIZE - 1) & ~(uintptr_t)(SLAB_SIZE - 1));
    head = (size_t)(base - mapping);
    if (head)
        munmap(mapping, head);
    munmap(base + SLAB_SIZE, SLAB_SIZE - head);
    madvise(base, SLAB_SIZE, MADV_HUGEPAGE);   /* only a hint: THP may be off */
    fault_in(base, SLAB_SIZE);
    slab->base = base;
    slab->given_back = 0;
    slab->next = memory->slabs;
    memory->slabs = slab;
    for (int i = 0; i < CHUNKS_PER_SLAB; i++) {
        struct chunk *chunk = (struct chunk *)(base + (size_t)i * CHUNK_SIZE);

        chunk->owner = memory;
        chunk->slab = slab;
        atomic_init(&chunk->references, 0);
        POISON((char *)chunk + CHUNK_HEADER_SIZE, CHUNK_SIZE - CHUNK_HEADER_SIZE);
        atomic_fetch_add(&memory->ready_count, 1);
        push(&memory->ready, chunk);
    }
    return 0;
}

static void cold_unlink(struct job_memory *memory, struct chunk *chunk)
{
    if (chunk->previous_cold)
        chunk->previous_cold->next = chunk->next;
    else
        memory->cold = chunk->next;
    if (chunk->next)
        chunk->next->previous_cold = chunk->previous_cold;
    chunk->slab->given_back--;
    atomic_fetch_sub(&memory->returned, 1);
}

/* Memory thread.  The last empty chunk of a slab whose others are all
 * cold: the whole slab goes back, unmapped.  A chunk given back alone
 * keeps its header page, so its slab's huge page is split and it comes
 * back as 15 faults of 4 KiB; memory given back a slab at a time comes
 * back as a new slab, one huge page. */
static void unmap_slab(struct job_memory *memory, struct chunk *last)
{
    struct slab *slab = last->slab;

    for (int i = 0; i < CHUNKS_PER_SLAB; i++) {
        struct chunk *chunk = (struct chunk *)((char *)slab->base + (size_t)i * CHUNK_SIZE);

        if (chunk != last)
            cold_unlink(memory, chunk);
    }
    /* A walk: slabs are unmapped seldom, a few hundred at the most. */
    for (struct slab **link = &memory->slabs; *link; link = &(*link)->next)
        if (*link == slab) {
            *link = slab->next;
            break;
        }
    UNPOISON(slab->base, SLAB_SIZE);   /* the sanitizer keeps its own map */
    if (munmap(slab->base, SLAB_SIZE) < 0)
        log_line(LOG_ERROR, "job_memory", "error=\"unmapping a slab: %s\"", strerror(errno));
    free(slab);
    atomic_fetch_add(&memory->unmapped, CHUNKS_PER_SLAB);
}

/* Memory thread: the surplus goes back to the system.  A chunk stays
 * mapped, on the cold list, to be faulted in again before a new slab is
 * mapped; a slab whose chunks are all back is unmapped. */
static void give_back_surplus(struct job_memory *memory)
{
    struct chunk *chunk = atomic_exchange(&memory->surplus, NULL), *next;

    for (; chunk; chunk = next) {
        next = chunk->next;
        if (chunk->slab->given_back == CHUNKS_PER_SLAB - 1) {
            unmap_slab(memory, chunk);
            continue;
        }
        /* The header stays: the first page is kept. */
        madvise((char *)chunk + PAGE, CHUNK_SIZE - PAGE, MADV_DONTNEED);
        chunk->previous_cold = NULL;
        chunk->next = memory->cold;
        if (memory->cold)
            memory->cold->previous_cold = chunk;
        memory->cold = chunk;
        chunk->slab->given_back++;
        atomic_fetch_add(&memory->returned, 1);
    }
}

/* Memory thread.  The reserve, and the marks that follow from it. */
static void set_reserve(struct job_memory *memory, size_t reserve)
{
    atomic_store(&memory->reserve, reserve);
    atomic_store(&memory->low_mark, reserve / 2);
    atomic_store(&memory->keep_limit, 2 * reserve > READY_MOST ? 2 * reserve : READY_MOST);
}

/* Memory thread: a smaller reserve, and what the ready list holds past
 * the new keep limit is given back.  Popping takes the allocators' lock:
 * pop() wants one popper. */
static void shrink_reserve(struct job_memory *memory, size_t reserve)
{
    set_reserve(memory, reserve > READY_LEAST ? reserve : READY_LEAST);
    pthread_mutex_lock(&memory->lock);
    while (atomic_load(&memory->ready_count) > atomic_load(&memory->keep_limit) &&
           !below_floor(memory, atomic_load(&memory->ready_count) - 1)) {
        struct chunk *chunk = pop(&memory->ready);

        if (!chunk)
            break;
        atomic_fetch_sub(&memory->ready_count, 1);
        push(&memory->surplus, chunk);
    }
    pthread_mutex_unlock(&memory->lock);
}

/* Memory thread, not woken for IDLE_MS: the chunks taken since the last
 * refill or the last look say whether the reserve is more than the demand
 * needs (none taken: an idle server's; under half of it: its half). */
static void shrink_if_idle(struct job_memory *memory)
{
    size_t taken = atomic_load(&memory->taken), recent = taken - memory->taken_seen;
    size_t reserve = atomic_load(&memory->reserve);

    memory->taken_seen = taken;
    if (monotonic_ms() - memory->last_refill_ms < IDLE_MS)
        return;
    if (recent == 0)
        shrink_reserve(memory, READY_LEAST);
    else if (recent < reserve / 2)
        shrink_reserve(memory, reserve / 2);
}

/* Memory thread, woken below the low mark: a reserve gone this soon after
 * its last refill was too small for the demand.  Only for new slabs:
 * chunks given back are faulted in again in small batches. */
static void grow_reserve_if_quick(struct job_memory *memory)
{
    uint64_t now = monotonic_ms();

    if (memory->last_refill_ms && now - memory->last_refill_ms < QUICK_REFILL_MS &&
        atomic_load(&memory->reserve) < READY_LARGEST && !memory->cold)
        set_reserve(memory, atomic_load(&memory->reserve) * 2);
    memory->last_refill_ms = now;
    memory->taken_seen = atomic_load(&memory->taken);
}

/* -1: no memory to map; the caller waits before it tries again. */
static int fill_ready(struct job_memory *memory)
{
    while ((atomic_load(&memory->ready_count) < atomic_load(&memory->reserve) ||
            below_floor(memory, atomic_load(&memory->ready_count))) &&
           !atomic_load(&memory->stopping)) {
        struct chunk *chunk = memory->cold;

        if (chunk) {
            cold_unlink(memory, chunk);
            fault_in((char *)chunk + PAGE, CHUNK_SIZE - PAGE);
            atomic_fetch_add(&memory->ready_count, 1);
            push(&memory->ready, chunk);
        } else if (add_slab(memory) < 0) {
            if (!memory->failing)   /* once, until a slab is mapped again */
                log_line(LOG_ERROR, "job_memory", "error=\"mapping a slab: %s\" note=\"jobs use malloc() meanwhile\"",
                         strerror(errno));
            memory->failing = 1;
            return -1;
        }
        memory->failing = 0;
    }
    return 0;
}

static void *memory_main(void *arg)
{
    struct job_memory *memory = arg;
    int floor_logged = 0;

    pthread_setname_np(pthread_self(), "detach-memory");   /* for top -H and perf */
    while (!atomic_load(&memory->stopping)) {
        /* Out of memory: try again when an allocator needs a chunk, at
         * most every 100 ms otherwise, rather than spin.  A grown reserve
         * is looked at again after IDLE_MS. */
        const struct timespec retry = { 0, 100 * 1000 * 1000 };
        const struct timespec idle = { IDLE_MS / 1000, (IDLE_MS % 1000) * 1000 * 1000 };
        int failed = 0, woken = 0;
        uint32_t seen;

        give_back_surplus(memory);
        if (atomic_load(&memory->wanted)) {
            if (atomic_load(&memory->ready_count) < atomic_load(&memory->low_mark))
                grow_reserve_if_quick(memory);
            failed = fill_ready(memory) < 0;
            if (!failed && memory->floor && !floor_logged) {
                log_line(LOG_INFO, "job_memory_ready", "mib=%zu",
                         memory->floor * CHUNK_SIZE / (1024 * 1024));
                floor_logged = 1;
            }
        }
        seen = wakeup_prepare(&memory->wakeup);
        if (failed) {
            woken = wakeup_wait(&memory->wakeup, seen, &retry);
        } else if (!atomic_load(&memory->surplus) && !atomic_load(&memory->stopping) &&
                   (!atomic_load(&memory->wanted) ||
                    atomic_load(&memory->ready_count) >= atomic_load(&memory->low_mark))) {
            woken = wakeup_wait(&memory->wakeup, seen,
                                atomic_load(&memory->reserve) > READY_LEAST ? &idle : NULL);
            if (!woken)
                shrink_if_idle(memory);
        }
        wakeup_done(&memory->wakeup, woken);
    }
    return NULL;
}

struct job_memory *job_memory_new(size_t floor_bytes)
{
    struct job_memory *memory = calloc(1, sizeof(*memory));
    int rc;

    if (!memory) {
        error_set("job memory: out of memory");
        return NULL;
    }
    pthread_mutex_init(&memory->lock, NULL);
    wakeup_init(&memory->wakeup);
    set_reserve(memory, READY_LEAST);
    /* Whole slabs, as the thread maps them; faulted in from the start. */
    memory->floor = (floor_bytes / SLAB_SIZE + (floor_bytes % SLAB_SIZE != 0)) * CHUNKS_PER_SLAB;
    if (memory->floor)
        atomic_init(&memory->wanted, 1);
    rc = thread_start(&memory->thread, memory_main, memory);
    if (rc != 0) {
        error_set("job memory: pthread_create: %s", strerror(rc));
        job_memory_free(memory);
        return NULL;
    }
    memory->has_thread = 1;
    return memory;
}

void job_memory_free(struct job_memory *memory)
{
    struct slab *slab, *next;

    if (!memory)
        return;
    atomic_store(&memory->stopping, 1);
    if (memory->has_thread) {
        wakeup_all(&memory->wakeup);
        pthread_join(memory->thread, NULL);
    }
    for (slab = memory->slabs; slab; slab = next) {
        next = slab->next;
        UNPOISON(slab->base, SLAB_SIZE);   /* the sanitizer keeps its own map */
        munmap(slab->base, SLAB_SIZE);
        free(slab);
    }
    pthread_mutex_destroy(&memory->lock);
    free(memory);
}

/* Lock held.  The chunk being carved is full: the next ready one. */
static void next_chunk(struct job_memory *memory)
{
    struct chunk *full = memory->carving;

    if (!full && !atomic_load_explicit(&memory->wanted, memory_order_relaxed))
        atomic_store(&memory->wanted, 1);   /* a server that never acks maps nothing */
    memory->carving = pop(&memory->ready);
    if (memory->carving) {
        atomic_fetch_sub(&memory->ready_count, 1);
        atomic_fetch_add_explicit(&memory->taken, 1, memory_order_relaxed);
        atomic_fetch_add(&memory->in_use, 1);
        atomic_store_explicit(&memory->carving->references, 1, memory_order_relaxed);
        memory->carved = CHUNK_HEADER_SIZE;
    }
    if (atomic_load_explicit(&memory->ready_count, memory_order_relaxed) <
        atomic_load_explicit(&memory->low_mark, memory_order_relaxed))
        wakeup_one(&memory->wakeup);
    if (full)
        chunk_unreference(full);
}

void *job_memory_allocate(struct job_memory *memory, size_t size)
{
    struct block_header *header = NULL;
    struct chunk *chunk = NULL;
    size_t need;

    if (size > SIZE_MAX - 32) {
        errno = ENOMEM;
        return NULL;
    }
    need = sizeof(struct block_header) + ((size + 15) & ~(size_t)15);
    if (need <= LARGEST_BLOCK) {
        pthread_mutex_lock(&memory->lock);
        if (!memory->carving || memory->carved + need > CHUNK_SIZE)
            next_chunk(memory);
        chunk = memory->carving;
        if (chunk) {
            header = (struct block_header *)((char *)chunk + memory->carved);
            memory->carved += need;
            atomic_fetch_add_explicit(&chunk->references, 1, memory_order_relaxed);
        }
        pthread_mutex_unlock(&memory->lock);
    }
    if (header) {
        UNPOISON(header, sizeof(*header) + size);
    } else {
        header = malloc(sizeof(*header) + size);
        if (!header)
            return NULL;
        atomic_fetch_add_explicit(&memory->outside, 1, memory_order_relaxed);
    }
    header->chunk = chunk;
    header->size = size;
    return header + 1;
}

void job_memory_release(void *block)
{
    struct block_header *header;
    struct chunk *chunk;

    if (!block)
        return;
    header = (struct block_header *)block - 1;
    chunk = header->chunk;
    if (!chunk) {
        free(header);
        return;
    }
    POISON(header, sizeof(*header) + header->size);
    chunk_unreference(chunk);
}

void job_memory_counts(struct job_memory *memory, struct job_memory_counts *counts)
{
    counts->chunks_ready = atomic_load(&memory->ready_count);
    counts->chunks_in_use = atomic_load(&memory->in_use);
    counts->chunks_returned = atomic_load(&memory->returned);
    counts->blocks_outside = atomic_load(&memory->outside);
    counts->chunks_reserve = atomic_load(&memory->reserve);
    counts->chunks_floor = memory->floor;
    counts->chunks_unmapped = atomic_load(&memory->unmapped);
}
