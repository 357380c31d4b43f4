/*
 * error.c - detach_last_error(): the message of this thread's last failure.
 *
 * Thread-local so that concurrent callers never see each other's messages;
 * errno stays the caller's to inspect.
 *
 * libdetach and libdetach-trigger both carry this file.  So that a program
 * linking both reads the message either one set, dt_error_set() finds the
 * buffer through the exported detach_last_error(), which the dynamic linker
 * binds to one definition for the whole program (a shared library's
 * default-visibility function is interposable: it is called through the
 * PLT, never inlined).  Statically linked, the archives bring one error.o.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "base/error.h"
#include "detach.h"

static _Thread_local char last_error[512];

int dt_error_set(const char *fmt, ...)
{
    int saved_errno = errno;
    va_list args;

    /* The program's one buffer: see above.  Ours, so writable. */
    char *buffer = (char *)detach_last_error();

    va_start(args, fmt);
    vsnprintf(buffer, sizeof(last_error), fmt, args);
    va_end(args);
    errno = saved_errno;
    return -1;
}

const char *detach_last_error(void)
{
    return last_error;
}
