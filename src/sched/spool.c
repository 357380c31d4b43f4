/*
 * spool.c - writing, removing and recovering spooled jobs.
 *
 * The file format is length-prefixed and ends with a checksum, so a torn
 * write (a crash mid-file, a disk that lied) is recognised rather than
 * half-read: "DSPOOL2\n", the acceptance time (64-bit little-endian Unix
 * ms: a recovered job keeps it), then id, route, the params, the body, each
 * as a 32-bit little-endian length and its bytes (params as a count, then
 * each), then an FNV-1a checksum of everything before it.  "DSPOOL1\n"
 * files, from before the acceptance time was kept, are the same without
 * it, and still read (their time is then 0: unknown).
 *
 * Durability order: write tmp/<id>, fsync it, rename to <id>.job, fsync
 * the directory.  Only then is the trigger acknowledged.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"
#include "sched/spool.h"

#define MAGIC "DSPOOL2\n"
#define MAGIC_V1 "DSPOOL1\n"
#define MAGIC_LENGTH 8
#define SUFFIX ".job"
#define MAX_FIELD (64u * 1024 * 1024)

struct spool {
    char *directory;
    int directory_fd;
};

/* ---- the format ---- */

static uint32_t fnv1a(const uint8_t *data, size_t length)
{
    uint32_t hash = 2166136261u;

    for (size_t i = 0; i < length; i++) {
        hash ^= data[i];
        hash *= 16777619u;
    }
    return hash;
}

static void put_u32(uint8_t **out, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        *(*out)++ = (uint8_t)(value >> (8 * i));
}

static void put_u64(uint8_t **out, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        *(*out)++ = (uint8_t)(value >> (8 * i));
}

static void put_field(uint8_t **out, const void *data, size_t length)
{
    put_u32(out, (uint32_t)length);
    memcpy(*out, data, length);
    *out += length;
}

int dt_spool_encode(const struct spool_record *record, uint8_t **data, size_t *length)
{
    size_t id_length = strlen(record->id), route_length = strlen(record->route);
    size_t count = 0, size = MAGIC_LENGTH + 8 + 4 + id_length + 4 + route_length + 4 + 4 +
                             record->body_length + 4;
    uint8_t *buffer, *out;

    for (const char *entry = record->params; *entry; entry += strlen(entry) + 1) {
        size += 4 + strlen(entry);
        count++;
    }
    if (record->body_length > MAX_FIELD) {
        errno = EFBIG;
        return -1;
    }
    buffer = malloc(size);
    if (!buffer)
        return -1;
    out = buffer;
    memcpy(out, MAGIC, MAGIC_LENGTH);
    out += MAGIC_LENGTH;
    put_u64(&out, record->accepted_unix_ms);
    put_field(&out, record->id, id_length);
    put_field(&out, record->route, route_length);
    put_u32(&out, (uint32_t)count);
    for (const char *entry = record->params; *entry; entry += strlen(entry) + 1)
        put_field(&out, entry, strlen(entry));
    put_field(&out, record->body ? record->body : "", record->body_length);
    put_u32(&out, fnv1a(buffer, (size_t)(out - buffer)));
    *data = buffer;
    *length = size;
    return 0;
}

struct reader {
    const uint8_t *data;
    size_t length, position;
};

static int get_u32(struct reader *reader, uint32_t *value)
{
    if (reader->length - reader->position < 4)
        return -1;
    *value = 0;
    for (int i = 0; i < 4; i++)
        *value |= (uint32_t)reader->data[reader->position++] << (8 * i);
    return 0;
}

/* A field as a fresh NUL-terminated string; embedded NULs are refused
 * where the field is text. */
static char *get_field(struct reader *reader, size_t *length, int text)
{
    uint32_t size;
    char *copy;

    if (get_u32(reader, &size) < 0 || size > MAX_FIELD || reader->length - reader->position < size)
        return NULL;
    if (text && memchr(reader->data + reader->position, '\0', size))
        return NULL;
    copy = malloc((size_t)size + 1);
    if (!copy)
        return NULL;
    memcpy(copy, reader->data + reader->position, size);
    copy[size] = '\0';
    reader->position += size;
    if (length)
        *length = size;
    return copy;
}

void dt_spool_record_free(struct spool_record *record)
{
    free(record->route);
    free(record->params);
    free(record->body);
    record->route = NULL;
    record->params = NULL;
    record->body = NULL;
}

int dt_spool_decode(const uint8_t *data, size_t length, struct spool_record *record)
{
    struct reader reader = { data, length, MAGIC_LENGTH };
    uint32_t count, checksum;
    char *id = NULL;
    char **strings = NULL;
    size_t bytes = 0;

    memset(record, 0, sizeof(*record));
    if (length < MAGIC_LENGTH + 4 ||
        (memcmp(data, MAGIC, MAGIC_LENGTH) != 0 && memcmp(data, MAGIC_V1, MAGIC_LENGTH) != 0))
        return -1;
    reader.length = length - 4;   /* the checksum is not payload */
    checksum = (uint32_t)data[length - 4] | (uint32_t)data[length - 3] << 8 |
               (uint32_t)data[length - 2] << 16 | (uint32_t)data[length - 1] << 24;
    if (fnv1a(data, length - 4) != checksum)
        return -1;
    if (memcmp(data, MAGIC, MAGIC_LENGTH) == 0) {
        uint32_t low, high;
        if (get_u32(&reader, &low) < 0 || get_u32(&reader, &high) < 0)
            return -1;
        record->accepted_unix_ms = (uint64_t)high << 32 | low;
    }
    id = get_field(&reader, NULL, 1);
    if (!id || !*id || strlen(id) >= sizeof(record->id) || strchr(id, '/'))
        goto fail;
    strcpy(record->id, id);
    record->route = get_field(&reader, NULL, 1);
    if (!record->route || get_u32(&reader, &count) < 0 || count > reader.length / 4)
        goto fail;
    strings = calloc((size_t)count + 1, sizeof(char *));
    if (!strings)
        goto fail;
    for (uint32_t i = 0; i < count; i++) {
        size_t size;
        char *equals;
        if (!(strings[i] = get_field(&reader, &size, 1)))
            goto fail;
        /* NAME=value, as the request reader lets through: an empty entry
         * would end the packed params early. */
        equals = strchr(strings[i], '=');
        if (!equals || equals == strings[i])
            goto fail;
        bytes += size + 1;
    }
    record->body = get_field(&reader, &record->body_length, 0);
    if (!record->body || reader.position != reader.length)
        goto fail;
    /* Params as jobs own them: packed, an empty string after the last. */
    record->params = malloc(bytes + 1);
    if (!record->params)
        goto fail;
    char *text = record->params;
    for (uint32_t i = 0; i < count; i++) {
        size_t size = strlen(strings[i]) + 1;
        memcpy(text, strings[i], size);
        text += size;
    }
    *text = '\0';
    for (uint32_t i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
    free(id);
    return 0;
fail:
    if (strings)
        for (uint32_t i = 0; strings[i]; i++)
            free(strings[i]);
    free(strings);
    free(id);
    dt_spool_record_free(record);
    return -1;
}

/* ---- the directory ---- */

static int make_directory(const char *path)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return dt_error_set("spool %s: mkdir: %s", path, strerror(errno));
    return 0;
}

struct spool *dt_spool_open(const char *directory)
{
    struct spool *spool = calloc(1, sizeof(*spool));
    char path[4096];

    if (!spool) {
        dt_error_set("spool: out of memory");
        return NULL;
    }
    spool->directory_fd = -1;
    spool->directory = strdup(directory);
    if (!spool->directory || make_directory(directory) < 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/tmp", directory);
    if (make_directory(path) < 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/corrupt", directory);
    if (make_directory(path) < 0)
        goto fail;
    spool->directory_fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (spool->directory_fd < 0) {
        dt_error_set("spool %s: %s", directory, strerror(errno));
        goto fail;
    }
    return spool;
fail:
    dt_spool_close(spool);
    return NULL;
}

void dt_spool_close(struct spool *spool)
{
    if (!spool)
        return;
    if (spool->directory_fd >= 0)
        close(spool->directory_fd);
    free(spool->directory);
    free(spool);
}

static int write_all(int fd, const uint8_t *data, size_t length)
{
    while (length > 0) {
        ssize_t n = write(fd, data, length);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        length -= (size_t)n;
    }
    return 0;
}

int dt_spool_write(struct spool *spool, const struct spool_record *record)
{
    char temporary[128], final[128];
    uint8_t *data = NULL;
    size_t length;
    int fd;

    if (dt_spool_encode(record, &data, &length) < 0)
        return dt_error_set("spool: encoding job %s: %s", record->id, strerror(errno));
    snprintf(temporary, sizeof(temporary), "tmp/%s", record->id);
    snprintf(final, sizeof(final), "%s" SUFFIX, record->id);
    fd = openat(spool->directory_fd, temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        dt_error_set("spool %s/%s: %s", spool->directory, temporary, strerror(errno));
        goto fail;
    }
    if (write_all(fd, data, length) < 0 || fdatasync(fd) < 0) {
        dt_error_set("spool %s/%s: %s", spool->directory, temporary, strerror(errno));
        close(fd);
        unlinkat(spool->directory_fd, temporary, 0);
        goto fail;
    }
    close(fd);
    if (renameat(spool->directory_fd, temporary, spool->directory_fd, final) < 0 ||
        fsync(spool->directory_fd) < 0) {
        dt_error_set("spool %s/%s: %s", spool->directory, final, strerror(errno));
        unlinkat(spool->directory_fd, temporary, 0);
        goto fail;
    }
    free(data);
    return 0;
fail:
    free(data);
    return -1;
}

int dt_spool_remove(struct spool *spool, const char *id)
{
    char name[128];

    snprintf(name, sizeof(name), "%s" SUFFIX, id);
    if (unlinkat(spool->directory_fd, name, 0) < 0 && errno != ENOENT)
        return dt_error_set("spool %s/%s: %s", spool->directory, name, strerror(errno));
    /* No fsync: a removal lost in a crash only runs the job again, which
     * the at-least-once promise allows. */
    return 0;
}

/* What a spool entry is when it is not a job file, for the log. */
static const char *file_type(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFIFO: return "fifo";
    case S_IFLNK: return "symlink";
    case S_IFSOCK: return "socket";
    case S_IFDIR: return "directory";
    case S_IFCHR: return "character_device";
    case S_IFBLK: return "block_device";
    default: return "not_a_regular_file";
    }
}

/* Errors that say nothing about the file: it stays for the next start. */
static int is_transient(int error)
{
    return error == EMFILE || error == ENFILE || error == ENOMEM || error == EINTR ||
           error == EAGAIN;
}

enum entry_verdict { ENTRY_READ, ENTRY_DAMAGED, ENTRY_SKIPPED };

/*
 * Reads one entry whole.  Only a regular file is ever read: anything else
 * (a fifo would block the open, or the read, for ever; a symlink could
 * point anywhere) is damaged, judged by lstat first so that it is never
 * opened, and again by fstat on a descriptor opened without blocking or
 * following a link, in case the entry changed in between.  *why: what is
 * wrong (damaged) or the error (skipped); *error: its errno, 0 if none.
 */
static enum entry_verdict read_entry(int directory_fd, const char *name, uint8_t **data,
                                     size_t *length, const char **why, int *error)
{
    struct stat info;
    int fd;
    ssize_t n;

    *data = NULL;
    *length = 0;
    *error = 0;
    if (fstatat(directory_fd, name, &info, AT_SYMLINK_NOFOLLOW) < 0)
        goto failed;
    if (!S_ISREG(info.st_mode)) {
        *why = file_type(info.st_mode);
        return ENTRY_DAMAGED;
    }
    fd = openat(directory_fd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP) {   /* replaced by a symlink since */
            *why = "symlink";
            return ENTRY_DAMAGED;
        }
        goto failed;
    }
    if (fstat(fd, &info) < 0) {
        close(fd);
        goto failed;
    }
    if (!S_ISREG(info.st_mode)) {
        close(fd);
        *why = file_type(info.st_mode);
        return ENTRY_DAMAGED;
    }
    if (info.st_size > (off_t)(4 * (size_t)MAX_FIELD)) {
        close(fd);
        *why = "too_large";
        return ENTRY_DAMAGED;
    }
    *data = malloc((size_t)info.st_size + 1);
    if (!*data) {
        close(fd);
        errno = ENOMEM;
        goto failed;
    }
    while (*length < (size_t)info.st_size) {
        n = read(fd, *data + *length, (size_t)info.st_size - *length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *error = errno;
            close(fd);
            free(*data);
            *data = NULL;
            *why = "unreadable";
            return ENTRY_DAMAGED;
        }
        if (n == 0)
            break;   /* shorter than it was: the decode refuses it */
        *length += (size_t)n;
    }
    close(fd);
    return ENTRY_READ;
failed:
    *error = errno;
    if (is_transient(errno) || errno == ENOENT) {
        *why = errno == ENOENT ? "vanished" : "cannot_open";
        return ENTRY_SKIPPED;
    }
    *why = "unreadable";
    return ENTRY_DAMAGED;
}

/* error: what reading it said, 0 when nothing. */
static void move_aside(struct spool *spool, const char *name, const char *why, int error)
{
    char target[300], detail[128] = "";

    if (error)
        snprintf(detail, sizeof(detail), " read_error=\"%s\"", strerror(error));
    snprintf(target, sizeof(target), "corrupt/%s", name);
    if (renameat(spool->directory_fd, name, spool->directory_fd, target) < 0)
        dt_log_line(LOG_ERROR, "spool_corrupt", "file=%s/%s reason=%s%s error=\"%s\"",
                 spool->directory, name, why, detail, strerror(errno));
    else
        dt_log_line(LOG_ERROR, "spool_corrupt", "file=%s/%s reason=%s%s moved_to=%s/%s",
                 spool->directory, name, why, detail, spool->directory, target);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_job_file(const struct dirent *entry)
{
    size_t length = strlen(entry->d_name);

    return length > strlen(SUFFIX) && strcmp(entry->d_name + length - strlen(SUFFIX), SUFFIX) == 0;
}

/* Files in tmp/ were never renamed into place, so never acknowledged. */
static void clear_temporary(struct spool *spool)
{
    char path[4096];
    DIR *directory;
    struct dirent *entry;

    snprintf(path, sizeof(path), "%s/tmp", spool->directory);
    directory = opendir(path);
    if (!directory)
        return;
    while ((entry = readdir(directory)))
        if (entry->d_name[0] != '.')
            unlinkat(dirfd(directory), entry->d_name, 0);
    closedir(directory);
}

int dt_spool_recover(struct spool *spool, void (*found)(void *context, struct spool_record *record),
                  void *context)
{
    struct dirent **entries;
    int count, recovered = 0;

    clear_temporary(spool);
    count = scandir(spool->directory, &entries, is_job_file, by_name);

    if (count < 0)
        return dt_error_set("spool %s: %s", spool->directory, strerror(errno));
    for (int i = 0; i < count; i++) {
        const char *name = entries[i]->d_name;
        struct spool_record record;
        uint8_t *data = NULL;
        size_t length = 0;
        const char *why = NULL;
        int error;

        enum entry_verdict verdict = read_entry(spool->directory_fd, name, &data, &length,
                                                &why, &error);

        if (verdict == ENTRY_DAMAGED) {
            move_aside(spool, name, why, error);
        } else if (verdict == ENTRY_SKIPPED) {
            dt_log_line(LOG_ERROR, "spool_skipped", "file=%s/%s reason=%s error=\"%s\" "
                     "note=\"left in place for the next start\"", spool->directory, name, why,
                     strerror(error));
        } else if (dt_spool_decode(data, length, &record) < 0 ||
                   strncmp(name, record.id, strlen(record.id)) != 0) {
            if (record.route)
                dt_spool_record_free(&record);
            move_aside(spool, name, "malformed", 0);
        } else {
            found(context, &record);
            recovered++;
        }
        free(data);
        free(entries[i]);
    }
    free(entries);
    return recovered;
}
