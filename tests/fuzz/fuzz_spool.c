/*
 * fuzz_spool.c - dt_spool_decode() on arbitrary file contents, and the round
 * trip: whatever decodes re-encodes to the very same bytes (the format has
 * one encoding per record) and decodes to the same record again.
 *
 * A spool file ends in a checksum of everything before it, which a fuzzer
 * cannot guess, so each input is also decoded again with the magic and the
 * checksum made right, once as each format: that reaches the field parsing.
 *
 * "DSPOOL1" files (no acceptance time) are still read but written as
 * "DSPOOL2", so for them the round trip is not byte for byte: their
 * re-encoding is the same record in the new format, its time 0 (unknown).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/request_reader.h"
#include "sched/spool.h"

#include "fuzz_check.h"

#define MAGIC "DSPOOL2\n"
#define MAGIC_V1 "DSPOOL1\n"
#define MAGIC_LENGTH 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FNV-1a, 32 bits: the checksum the format specifies. */
static uint32_t checksum(const uint8_t *data, size_t length)
{
    uint32_t hash = 2166136261u;

    for (size_t i = 0; i < length; i++) {
        hash ^= data[i];
        hash *= 16777619u;
    }
    return hash;
}

static void check_record(const struct spool_record *record)
{
    size_t id_length = strnlen(record->id, sizeof(record->id));

    CHECK(id_length > 0 && id_length < sizeof(record->id));
    CHECK(!strchr(record->id, '/'));
    CHECK(record->route && record->params && record->body);
    CHECK(record->body[record->body_length] == '\0');
}

static void same_record(const struct spool_record *a, const struct spool_record *b)
{
    CHECK(strcmp(a->id, b->id) == 0);
    CHECK(strcmp(a->route, b->route) == 0);
    CHECK(dt_request_params_size(a->params) == dt_request_params_size(b->params));
    CHECK(memcmp(a->params, b->params, dt_request_params_size(a->params)) == 0);
    CHECK(a->accepted_unix_ms == b->accepted_unix_ms);
    CHECK(a->body_length == b->body_length);
    CHECK(memcmp(a->body, b->body, a->body_length) == 0);
}

static void decode_and_round_trip(const uint8_t *data, size_t size)
{
    struct spool_record record, again;
    uint8_t *encoded = NULL;
    size_t length = 0;

    if (dt_spool_decode(data, size, &record) < 0) {
        CHECK(record.route == NULL && record.params == NULL && record.body == NULL);
        return;
    }
    check_record(&record);
    CHECK(dt_spool_encode(&record, &encoded, &length) == 0);
    if (size >= MAGIC_LENGTH && memcmp(data, MAGIC_V1, MAGIC_LENGTH) == 0) {
        /* An old file: same fields after the 8-byte time, new magic and sum. */
        CHECK(record.accepted_unix_ms == 0);
        CHECK(length == size + 8 && memcmp(encoded, MAGIC, MAGIC_LENGTH) == 0);
        CHECK(memcmp(encoded + MAGIC_LENGTH + 8, data + MAGIC_LENGTH, size - MAGIC_LENGTH - 4) == 0);
    } else {
        CHECK(length == size && memcmp(encoded, data, size) == 0);
    }
    CHECK(dt_spool_decode(encoded, length, &again) == 0);
    same_record(&record, &again);
    dt_spool_record_free(&again);
    dt_spool_record_free(&record);
    dt_spool_record_free(&record);   /* leaves NULLs: harmless twice */
    free(encoded);
}

/* The payload framed right: magic in front, checksum behind. */
static void decode_framed(const char *magic, const uint8_t *data, size_t size)
{
    uint8_t *framed = malloc(MAGIC_LENGTH + size + 4);
    CHECK(framed);
    memcpy(framed, magic, MAGIC_LENGTH);
    if (size)
        memcpy(framed + MAGIC_LENGTH, data, size);
    uint32_t sum = checksum(framed, MAGIC_LENGTH + size);
    for (int i = 0; i < 4; i++)
        framed[MAGIC_LENGTH + size + i] = (uint8_t)(sum >> (8 * i));
    decode_and_round_trip(framed, MAGIC_LENGTH + size + 4);
    free(framed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_and_round_trip(data, size);
    decode_framed(MAGIC, data, size);
    decode_framed(MAGIC_V1, data, size);
    return 0;
}
