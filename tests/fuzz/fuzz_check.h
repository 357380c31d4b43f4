/*
 * fuzz_check.h - CHECK(): an invariant of a fuzz target.  A failed one
 * aborts, which libFuzzer reports as a crash with the input that did it.
 */
#ifndef DETACH_FUZZ_CHECK_H
#define DETACH_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(condition)                                                              \
    do {                                                                              \
        if (!(condition)) {                                                           \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,      \
                    #condition);                                                      \
            abort();                                                                  \
        }                                                                             \
    } while (0)

#endif
