/*
 * job_memory.h - memory for jobs, faulted in before the watcher needs it.
 *
 * A job (its state, params and body) is allocated on the watcher thread,
 * on the ack path.  While jobs pile up that memory is new, and a page's
 * first touch is a page fault: 15-20 us each on a VM, every few acks,
 * delaying every connection behind it.  Here blocks are carved from
 * chunks a thread of its own has already faulted in; allocating is a
 * pointer bump and releasing an atomic decrement.
 */
#ifndef DETACH_JOB_MEMORY_H
#define DETACH_JOB_MEMORY_H

#include <stddef.h>

struct job_memory;

/* Starts the thread that faults chunks in.  With `floor_bytes` 0 it maps
 * nothing before the first block is asked for; else it faults that much
 * in at once, in whole 2-MiB slabs, logs event=job_memory_ready, and never
 * gives back what would leave less faulted in.  NULL with the error set. */
struct job_memory *job_memory_new(size_t floor_bytes);
/* Every block must have been released. */
void job_memory_free(struct job_memory *memory);

/* `size` bytes, 16-byte aligned, not zeroed; NULL when out of memory.  Any
 * thread; the watcher is the one it is fast for. */
void *job_memory_allocate(struct job_memory *memory, size_t size);
/* Any thread, lock-free.  NULL is ignored. */
void job_memory_release(void *block);

struct job_memory_counts {
    size_t chunks_ready;      /* faulted in, empty, waiting to be carved */
    size_t chunks_in_use;     /* being carved, or holding a live block */
    size_t chunks_returned;   /* given back to the system, kept mapped */
    size_t chunks_unmapped;   /* so far, in whole slabs given back and unmapped */
    size_t blocks_outside;    /* from malloc(): too big, or no chunk ready */
    size_t chunks_reserve;    /* how many it keeps ready now: grows with the demand */
    size_t chunks_floor;      /* how many it keeps faulted in, in use or ready, always */
};
void job_memory_counts(struct job_memory *memory, struct job_memory_counts *counts);

#endif
