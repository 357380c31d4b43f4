/*
 * memory_load.c - a bare process that holds and takes memory the way the
 * 2-second-jobs case does, so bench/run can measure what that much memory
 * costs the machine's other processes, detach not involved.
 *
 *     memory_load HOLD_MIB GROW_MIB_PER_S SECONDS [BATCH_MIB]
 *
 * Takes HOLD_MIB in 1 KiB pieces, each written once (as queued jobs are),
 * prints "ready" on stdout, then takes GROW_MIB_PER_S more, paced every
 * millisecond, for SECONDS, and exits 0.  With BATCH_MIB it takes the
 * memory as detach's former memory thread did (job_memory.c, removed):
 * 2-MiB-aligned mappings advised MADV_HUGEPAGE, a page written at a time,
 * BATCH_MIB at once whenever the growth is due.  Exit status 1 on bad
 * arguments or when memory runs out.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { PIECE = 1024 };

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The pieces are never freed: the process exits with them. */
static int take(size_t bytes)
{
    for (size_t taken = 0; taken < bytes; taken += PIECE) {
        char *piece = malloc(PIECE - 16);   /* 1 KiB with malloc's header */

        if (!piece) {
            fprintf(stderr, "memory_load: out of memory\n");
            return -1;
        }
        memset(piece, 1, PIECE - 16);
    }
    return 0;
}

/* BATCH_MIB mode: one huge-page-aligned mapping, every page written. */
static int take_huge(size_t bytes)
{
    const size_t huge = 2 * 1048576;
    char *mapping = mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
    char *base;

    if (mapping == MAP_FAILED) {
        fprintf(stderr, "memory_load: mmap: %s\n", strerror(errno));
        return -1;
    }
    base = (char *)(((uintptr_t)mapping + huge - 1) & ~(uintptr_t)(huge - 1));
    madvise(base, bytes, MADV_HUGEPAGE);   /* a hint: THP may be off */
    for (size_t offset = 0; offset < bytes; offset += 4096)
        ((volatile char *)base)[offset] = 0;
    return 0;
}

static int parse(const char *text, double *value)
{
    char *end;

    errno = 0;
    *value = strtod(text, &end);
    return errno || end == text || *end || *value < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    double hold_mib, grow_mib_per_s, seconds, batch_mib = 0, begin, grown = 0;
    const struct timespec millisecond = { 0, 1000000 };
    size_t batch;

    if ((argc != 4 && argc != 5) || parse(argv[1], &hold_mib) < 0 ||
        parse(argv[2], &grow_mib_per_s) < 0 || parse(argv[3], &seconds) < 0 ||
        (argc == 5 && (parse(argv[4], &batch_mib) < 0 || batch_mib < 2))) {
        fprintf(stderr, "usage: memory_load HOLD_MIB GROW_MIB_PER_S SECONDS [BATCH_MIB >= 2]\n");
        return 1;
    }
    batch = (size_t)(batch_mib * 1048576);
    if ((batch ? take_huge((size_t)(hold_mib * 1048576)) : take((size_t)(hold_mib * 1048576))) < 0)
        return 1;
    printf("ready\n");
    fflush(stdout);
    begin = now();
    while (now() - begin < seconds) {
        double due = (now() - begin) * grow_mib_per_s * 1048576;

        if (batch && due > grown) {
            if (take_huge(batch) < 0)
                return 1;
            grown += (double)batch;
        } else if (due > grown) {
            if (take((size_t)(due - grown)) < 0)
                return 1;
            grown = due;
        }
        nanosleep(&millisecond, NULL);
    }
    return 0;
}
