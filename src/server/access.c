/*
 * access.c - matching an address against "a.b.c.d", "::1" and "net/bits".
 *
 * Addresses are compared as bytes after inet_pton, so "::1" and
 * "0:0:0:0:0:0:0:1" are the same, and an IPv4-mapped IPv6 peer
 * ("::ffff:127.0.0.1", what a dual-stack socket reports) matches its
 * IPv4 entry.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "detach.h"
#include "server/access.h"

struct parsed {
    unsigned char bytes[16];
    int length;   /* 4 or 16 */
};

static int parse_address(const char *text, struct parsed *out)
{
    static const unsigned char mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->length = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->bytes) == 1) {
        out->length = 16;
        if (memcmp(out->bytes, mapped_prefix, 12) == 0) {
            memmove(out->bytes, out->bytes + 12, 4);
            out->length = 4;
        }
        return 0;
    }
    return -1;
}

/* One entry, "address" or "address/bits"; -1 when malformed. */
static int entry_matches(const char *entry, size_t length, const struct parsed *address)
{
    char text[64];
    const char *slash;
    struct parsed network;
    long bits;

    if (length == 0 || length >= sizeof(text))
        return -1;
    memcpy(text, entry, length);
    text[length] = '\0';
    slash = strchr(text, '/');
    if (slash) {
        char *end;
        text[slash - text] = '\0';
        bits = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1)
            return -1;
    } else {
        bits = -1;
    }
    if (parse_address(text, &network) < 0)
        return -1;
    if (bits < 0)
        bits = network.length * 8;
    if (bits > network.length * 8)
        return -1;
    if (!address || address->length != network.length)
        return 0;
    for (long bit = 0; bit < bits; bit++) {
        int mask = 0x80 >> (bit % 8);
        if ((network.bytes[bit / 8] & mask) != (address->bytes[bit / 8] & mask))
            return 0;
    }
    return 1;
}

int dt_access_allowed(const char *list, const char *address)
{
    struct parsed peer;

    if (!list || !address || parse_address(address, &peer) < 0)
        return 0;
    for (const char *p = list; *p;) {
        size_t length;
        p += strspn(p, " \t,");
        length = strcspn(p, " \t,");
        if (length && entry_matches(p, length, &peer) == 1)
            return 1;
        p += length;
    }
    return 0;
}

int dt_access_list_valid(const char *list, const char **bad_start, int *bad_length)
{
    for (const char *p = list; *p;) {
        size_t length;
        p += strspn(p, " \t,");
        length = strcspn(p, " \t,");
        if (length && entry_matches(p, length, NULL) < 0) {
            *bad_start = p;
            *bad_length = (int)length;
            return -1;
        }
        p += length;
    }
    return 0;
}

int detach_allow_list_valid(const char *list, const char **bad, int *bad_length)
{
    return dt_access_list_valid(list, bad, bad_length);
}
