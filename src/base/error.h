/*
 * error.h - the per-thread message behind detach_last_error().
 *
 * Functions fail with -1 and errno; the message says what failed and with
 * which file, address or value, so a caller can print it as it is.
 */
#ifndef DETACH_ERROR_H
#define DETACH_ERROR_H

/* Formats the message, keeps errno as it was, and returns -1. */
int dt_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
