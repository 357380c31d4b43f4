/*
 * replay.c - runs a fuzz target over its committed seeds and regression
 * inputs with no fuzzer, as a plain program.  Built by tests/CMakeLists.txt
 * so that every `bash tests/run` checks each target's invariants on the
 * inputs that once broke them, and fcgi_libfcgi keeps libfcgi in every run
 * as the reference parser our request reader must agree with.
 *
 *   fuzz_replay_<target> DIR...   every regular file in each DIR, once
 *
 * Exit status 0 when at least one input ran and none failed (a failed
 * invariant aborts, see fuzz_check.h).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Only some targets set themselves up once. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int replay_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    uint8_t *data = NULL;
    long size;

    if (!file) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fseek(file, 0, SEEK_END) < 0 || (size = ftell(file)) < 0 || fseek(file, 0, SEEK_SET) < 0)
        goto fail;
    /* One byte more than needed: malloc(0) may give NULL. */
    data = malloc((size_t)size + 1);
    if (!data || fread(data, 1, (size_t)size, file) != (size_t)size)
        goto fail;
    fclose(file);
    LLVMFuzzerTestOneInput(data, (size_t)size);
    free(data);
    return 0;
fail:
    fprintf(stderr, "replay: %s: cannot read it\n", path);
    free(data);
    fclose(file);
    return -1;
}

int main(int argc, char **argv)
{
    size_t inputs = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        DIR *directory = opendir(argv[i]);
        struct dirent *entry;

        if (!directory)
            continue;   /* a target with no regressions yet */
        while ((entry = readdir(directory))) {
            char path[4096];
            struct stat info;

            snprintf(path, sizeof(path), "%s/%s", argv[i], entry->d_name);
            if (stat(path, &info) < 0 || !S_ISREG(info.st_mode))
                continue;
            if (replay_file(path) < 0) {
                closedir(directory);
                return 1;
            }
            inputs++;
        }
        closedir(directory);
    }
    printf("%zu inputs replayed, none broke an invariant\n", inputs);
    return inputs ? 0 : 1;
}
