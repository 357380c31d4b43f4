/*
 * job_status.h - what detach-trigger --wait-done reads of the status
 * page's job object (GET <status_path>/jobs/<id>), with json-c.
 */
#ifndef DETACH_JOB_STATUS_H
#define DETACH_JOB_STATUS_H

#include <stddef.h>

#include "detach_trigger.h"   /* detach_job_status */

#define JOB_STATUS_MESSAGE_SIZE DETACH_JOB_STATUS_MESSAGE_SIZE

/* Deeper JSON is refused, not recursed into. */
#define JOB_STATUS_MAX_DEPTH 16

/*
 * The whole text must be one JSON object (whitespace around it allowed,
 * nesting at most JOB_STATUS_MAX_DEPTH) with a string "state"; picks out
 * state, connection_status, progress.percent (clamped to 0..100),
 * progress.message and exit.code / exit.signal; other keys are ignored.
 * Strings are cut to fit, never inside a UTF-8 character.  0 on success;
 * -1 with a message otherwise.
 */
int dt_job_status_parse(const char *json, size_t length, detach_job_status *out);

#endif
