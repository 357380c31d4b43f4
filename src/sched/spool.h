/*
 * spool.h - the durable spool: an acknowledged trigger survives a crash.
 *
 * Each accepted trigger is one file, written to tmp/, fsync'ed, renamed
 * into place and the directory fsync'ed before its 200 goes out.  It is
 * removed only after the job's shutdown callbacks ran.  On start, what is
 * left is run again (at least once; same id).  A file that does not decode
 * is moved to corrupt/ and logged, never fatal.
 */
#ifndef DETACH_SPOOL_H
#define DETACH_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct spool;

struct spool_record {
    char id[64];
    uint64_t accepted_unix_ms;   /* when first accepted; 0: unknown (old file) */
    char *route;          /* the configured route path */
    char *params;         /* packed "NAME=value" strings (request_reader.h) */
    char *body;
    size_t body_length;
};

/* Creates the directory (and tmp/, corrupt/) when missing. */
struct spool *dt_spool_open(const char *directory);
void dt_spool_close(struct spool *spool);

/* 0 once the record is on disk for good; -1 with a message otherwise. */
int dt_spool_write(struct spool *spool, const struct spool_record *record);
int dt_spool_remove(struct spool *spool, const char *id);

/*
 * Calls found() for every stored record, oldest id first.  found() takes
 * ownership of params and body (and route).  Undecodable files go to
 * corrupt/.  Returns the number of records handed over, -1 on an error.
 */
int dt_spool_recover(struct spool *spool, void (*found)(void *context, struct spool_record *record),
                  void *context);

/* The file format, exposed for tests and fuzzing. */
int dt_spool_encode(const struct spool_record *record, uint8_t **data, size_t *length);
/* 0 and a record owning fresh allocations, or -1 for anything malformed. */
int dt_spool_decode(const uint8_t *data, size_t length, struct spool_record *record);
void dt_spool_record_free(struct spool_record *record);

#endif
