/*
 * fuzz_spool.c - spool_decode() on arbitrary file contents, and the round
 * trip: whatever decodes re-encodes to the very same bytes (the format has
 * one encoding per record) and decodes to the same record again.
 *
 * A spool file ends in a checksum of everything before it, which a fuzzer
 * cannot guess, so each input is also decoded a second time with the
 * magic and the checksum made right: that reaches the field parsing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/request_reader.h"
#include "sched/spool.h"

#include "fuzz_check.h"

#define MAGIC "DSPOOL1\n"
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
    CHECK(request_params_size(a->params) == request_params_size(b->params));
    CHECK(memcmp(a->params, b->params, request_params_size(a->params)) == 0);
    CHECK(a->body_length == b->body_length);
    CHECK(memcmp(a->body, b->body, a->body_length) == 0);
}

static void decode_and_round_trip(const uint8_t *data, size_t size)
{
    struct spool_record record, again;
    uint8_t *encoded = NULL;
    size_t length = 0;

    if (spool_decode(data, size, &record) < 0) {
        CHECK(record.route == NULL && record.params == NULL && record.body == NULL);
        return;
    }
    check_record(&record);
    CHECK(spool_encode(&record, &encoded, &length) == 0);
    CHECK(length == size && memcmp(encoded, data, size) == 0);
    CHECK(spool_decode(encoded, length, &again) == 0);
    same_record(&record, &again);
    spool_record_free(&again);
    spool_record_free(&record);
    spool_record_free(&record);   /* leaves NULLs: harmless twice */
    free(encoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_and_round_trip(data, size);

    /* The same payload, framed right: magic in front, checksum behind. */
    uint8_t *framed = malloc(MAGIC_LENGTH + size + 4);
    CHECK(framed);
    memcpy(framed, MAGIC, MAGIC_LENGTH);
    if (size)
        memcpy(framed + MAGIC_LENGTH, data, size);
    uint32_t sum = checksum(framed, MAGIC_LENGTH + size);
    for (int i = 0; i < 4; i++)
        framed[MAGIC_LENGTH + size + i] = (uint8_t)(sum >> (8 * i));
    decode_and_round_trip(framed, MAGIC_LENGTH + size + 4);
    free(framed);
    return 0;
}
