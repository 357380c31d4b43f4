/*
 * memory_load.c - a bare process that holds and takes memory the way the
 * 2-second-jobs case does, so bench/run can measure what that much memory
 * costs the machine's other processes, detach not involved.
 *
 *     memory_load HOLD_MIB GROW_MIB_PER_S SECONDS
 *
 * Takes HOLD_MIB in 1 KiB pieces, each written once (as queued jobs are),
 * prints "ready" on stdout, then takes GROW_MIB_PER_S more, paced every
 * millisecond, for SECONDS, and exits 0.  Exit status 1 on bad arguments or
 * when memory runs out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int parse(const char *text, double *value)
{
    char *end;

    errno = 0;
    *value = strtod(text, &end);
    return errno || end == text || *end || *value < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    double hold_mib, grow_mib_per_s, seconds, begin, grown = 0;
    const struct timespec millisecond = { 0, 1000000 };

    if (argc != 4 || parse(argv[1], &hold_mib) < 0 || parse(argv[2], &grow_mib_per_s) < 0 ||
        parse(argv[3], &seconds) < 0) {
        fprintf(stderr, "usage: memory_load HOLD_MIB GROW_MIB_PER_S SECONDS\n");
        return 1;
    }
    if (take((size_t)(hold_mib * 1048576)) < 0)
        return 1;
    printf("ready\n");
    fflush(stdout);
    begin = now();
    while (now() - begin < seconds) {
        double due = (now() - begin) * grow_mib_per_s * 1048576;

        if (due > grown) {
            if (take((size_t)(due - grown)) < 0)
                return 1;
            grown = due;
        }
        nanosleep(&millisecond, NULL);
    }
    return 0;
}
