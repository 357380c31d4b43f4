/*
 * spawn_rate.c - the bare posix_spawn loop detachd's job start rate is
 * compared with.
 *
 *     spawn_rate COUNT IN_FLIGHT PROGRAM [ARG]...
 *
 * Spawns COUNT processes of PROGRAM, at most IN_FLIGHT at once, reaping
 * each with waitpid() and starting the next; stdin, stdout and stderr are
 * /dev/null.  Prints one JSON line: {"count":N,"in_flight":K,"seconds":S,
 * "spawns_per_s":R,"failures":F}.  Exit status 1 if any spawn failed or any
 * process exited non-zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    posix_spawn_file_actions_t actions;
    long count, in_flight, started = 0, running = 0, failures = 0;
    double begin, seconds;

    if (argc < 4) {
        fprintf(stderr, "usage: spawn_rate COUNT IN_FLIGHT PROGRAM [ARG]...\n");
        return 2;
    }
    count = strtol(argv[1], NULL, 10);
    in_flight = strtol(argv[2], NULL, 10);
    if (count < 1 || count > 10000000 || in_flight < 1 || in_flight > 4096) {
        fprintf(stderr, "spawn_rate: COUNT 1..10000000, IN_FLIGHT 1..4096\n");
        return 2;
    }
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);

    begin = now();
    while (started < count || running > 0) {
        while (started < count && running < in_flight) {
            pid_t pid;
            int rc = posix_spawn(&pid, argv[3], &actions, NULL, argv + 3, environ);
            started++;
            if (rc != 0) {
                fprintf(stderr, "spawn_rate: %s: %s\n", argv[3], strerror(rc));
                failures++;
                continue;
            }
            running++;
        }
        if (running > 0) {
            int status;
            pid_t pid = waitpid(-1, &status, 0);
            if (pid < 0) {
                if (errno == EINTR)
                    continue;
                perror("spawn_rate: waitpid");
                return 1;
            }
            running--;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                failures++;
        }
    }
    seconds = now() - begin;
    posix_spawn_file_actions_destroy(&actions);
    printf("{\"count\":%ld,\"in_flight\":%ld,\"seconds\":%.4f,\"spawns_per_s\":%.1f,"
           "\"failures\":%ld}\n",
           count, in_flight, seconds, (double)count / seconds, failures);
    return failures ? 1 : 0;
}
