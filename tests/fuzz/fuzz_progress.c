/*
 * fuzz_progress.c - what a script writes that detachd parses: progress
 * lines on fd 3 (script_progress_parse) and, since it is the same kind of
 * untrusted script output, the split of attached output into a CGI head
 * and a body (script_output_head).
 *
 * The input is cut into lines as script.c's reader cuts fd 3: at '\n',
 * a trailing '\r' dropped, NUL-terminated.
 *
 * Checked: a parsed percent is 0..100 and the message lies inside the line
 * with its leading blanks skipped; a head ends with an empty line inside
 * the data, and a prefix never contradicts the whole.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/script.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_line(const char *line)
{
    int percent = -12345;
    const char *message = NULL;
    size_t length = strlen(line);

    if (script_progress_parse(line, &percent, &message) == 0) {
        CHECK(percent >= 0 && percent <= 100);
        CHECK(message >= line && message <= line + length);
        CHECK(*message != ' ' && *message != '\t');
    }
}

static void check_head(const char *data, size_t size)
{
    size_t body_start = 0, prefix_start = 0;
    int verdict = script_output_head(data, size, &body_start);

    CHECK(verdict >= -1 && verdict <= 1);
    if (verdict == 1) {
        CHECK(body_start >= 2 && body_start <= size && data[body_start - 1] == '\n');
    }
    /* Decided on a prefix: decided the same way on the whole (the output
     * reaches script.c in pieces cut anywhere).  Every cut of a short
     * input, the middle of a long one. */
    size_t first_cut = size <= 512 ? 0 : size / 2, last_cut = size <= 512 ? size : size / 2;
    for (size_t cut = first_cut; cut <= last_cut; cut++) {
        /* A copy of exactly cut bytes, so reading past them is caught. */
        char *piece = malloc(cut ? cut : 1);
        CHECK(piece);
        memcpy(piece, data, cut);
        int prefix = script_output_head(piece, cut, &prefix_start);
        free(piece);
        CHECK(prefix >= -1 && prefix <= 1);
        if (prefix >= 0)
            CHECK(prefix == verdict);
        if (prefix == 1)
            CHECK(prefix_start == body_start);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    size_t start = 0;

    CHECK(copy);
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (size_t i = 0; i <= size; i++) {
        if (i < size && copy[i] != '\n')
            continue;
        copy[i] = '\0';
        if (i > start && copy[i - 1] == '\r')
            copy[i - 1] = '\0';
        parse_line(copy + start);
        start = i + 1;
    }
    free(copy);

    check_head((const char *)data, size);
    return 0;
}
