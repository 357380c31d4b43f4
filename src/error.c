/*
 * error.c - detach_last_error(): the message of this thread's last failure.
 *
 * Thread-local so that concurrent callers never see each other's messages;
 * errno stays the caller's to inspect.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "detach.h"
#include "error.h"

static _Thread_local char last_error[512];

int error_set(const char *fmt, ...)
{
    int saved_errno = errno;
    va_list args;

    va_start(args, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, args);
    va_end(args);
    errno = saved_errno;
    return -1;
}

const char *detach_last_error(void)
{
    return last_error;
}
