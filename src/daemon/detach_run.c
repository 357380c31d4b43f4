/*
 * detach_run.c - detach-run, the supervisor detachd starts for each job.
 *
 * A job owns its processes: whatever its command leaves running is
 * stopped when the command ends, and everything dies when detachd dies,
 * however it dies, so a job never runs twice at once.  detachd alone
 * cannot promise either: a `kill -9` leaves it no code to run, and its
 * job threads do not outlive it.  So each job runs under this small
 * program (no library, no config; see run_protocol.h for its command
 * line and descriptors), which:
 *
 *  - leads the job's process group (detachd spawned it so), keeps every
 *    signal blocked so the group's SIGTERM from a stop never reaches it,
 *    and runs the command in the group with the signals reset;
 *  - is a child subreaper: whatever the command leaves behind, even a
 *    double fork or a setsid(), becomes its child when its parent dies,
 *    so "no children left" means "nothing of the job is left";
 *  - when the command ends: SIGTERMs the group, waits kill_grace for the
 *    leftovers, SIGKILLs every descendant after it, then exits exactly as
 *    the command did (its code, or the same signal raised on itself), so
 *    detachd's wait, time limit and stop work as they did without it;
 *  - watches the lifeline, a pipe whose only writer is detachd: EOF means
 *    detachd is gone.  Then it SIGKILLs every descendant at once, runs the
 *    route's on_shutdown for the run that was cut short, and exits.  The
 *    spool lock it holds (an inherited descriptor) is released only then,
 *    so a restarted detachd cannot rerun the job beside it.
 *
 * PR_SET_PDEATHSIG is not used: it fires when the thread that forked
 * exits, and detachd's job threads come and go.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run_protocol.h"

#define MAX_DEPTH 64
/* How much sooner than detachd's SIGKILL of the group ours comes in a stop. */
#define STOP_MARGIN_MS 200
/* In a stop, how long after detachd's SIGKILL is due ours comes if it did not. */
#define STOP_SLACK_MS 1000
#define KILL_NOW 1   /* an outside_deadline that has passed */

extern char **environ;

enum phase { RUNNING, TERMINATING, KILLING };

struct supervisor {
    struct run_plan plan;
    pid_t self, command, hook;
    int command_done, command_status, hook_done;
    int signal_fd, lifeline_fd;
    uint64_t started_ms;
};

static uint64_t now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* One line into the job log (the hook's descriptor: the job's own stdout
 * may be a pipe to the detachd that just died). */
static void say(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *format, ...)
{
    char line[512];
    va_list args;
    int n = snprintf(line, sizeof(line), "detach-run[%d]: ", (int)getpid());

    va_start(args, format);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, format, args);
    va_end(args);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (write(RUN_FD_HOOK_LOG, line, (size_t)n) < 0)
        (void)0;   /* nowhere else to tell */
}

/* The command (hook_log < 0) or the hook, in our process group, with the
 * signal mask and dispositions of a fresh process. */
static pid_t start(char *const argv[], char *const environment[], int hook_log)
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    sigset_t none, all;
    pid_t pid = -1;
    int rc;

    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    if (hook_log >= 0) {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        for (int target = 1; target < 4; target++)
            posix_spawn_file_actions_adddup2(&actions, hook_log, target);
    }
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawn(&pid, argv[0], &actions, &attributes, argv, environment);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}

/* Signals every descendant of parent, depth first, through each of its
 * threads' children lists; with skip_group, not those still in that
 * process group (a kill() of the group reached them).  A process that
 * forks meanwhile is dying: its new child becomes ours and the next round
 * gets it. */
static void signal_descendants(pid_t parent, int signal_number, pid_t skip_group, int depth)
{
    char path[64];
    struct dirent *task;
    DIR *tasks;

    if (depth > MAX_DEPTH)
        return;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)parent);
    tasks = opendir(path);
    if (!tasks)
        return;   /* gone meanwhile */
    while ((task = readdir(tasks))) {
        FILE *children;
        int child;

        if (task->d_name[0] < '0' || task->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%.12s/children", (int)parent, task->d_name);
        children = fopen(path, "re");
        if (!children)
            continue;
        while (fscanf(children, "%d", &child) == 1) {
            if (!skip_group || getpgid(child) != skip_group)
                kill(child, signal_number);
            signal_descendants(child, signal_number, skip_group, depth + 1);
        }
        fclose(children);
    }
    closedir(tasks);
}

/* Reaps whatever ended; 0 once no child is left (nothing of the job). */
static int reap(struct supervisor *supervisor)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);

        if (pid == 0)
            return 1;
        if (pid < 0)
            return errno == EINTR ? 1 : 0;
        if (pid == supervisor->command) {
            supervisor->command_done = 1;
            supervisor->command_status = status;
        } else if (pid == supervisor->hook) {
            supervisor->hook_done = 1;
        }
    }
}

/* Reads the signalfd dry; 1 if a SIGTERM was among the signals. */
static int drain_signals(int signal_fd)
{
    struct signalfd_siginfo info;
    int terminate = 0;

    while (read(signal_fd, &info, sizeof(info)) == (ssize_t)sizeof(info))
        if (info.ssi_signo == SIGTERM)
            terminate = 1;
    return terminate;
}

/* Ends this process as the command ended. */
static void exit_like(int status)
{
    struct rlimit no_core = { 0, 0 };
    sigset_t only;
    int signal_number;

    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    signal_number = WTERMSIG(status);
    /* The group's SIGTERM may be pending on us: ignoring discards it. */
    for (int other = 1; other < NSIG; other++)
        if (other != signal_number)
            signal(other, SIG_IGN);
    signal(signal_number, SIG_DFL);
    setrlimit(RLIMIT_CORE, &no_core);   /* the command's core is the one that counts */
    sigemptyset(&only);
    sigaddset(&only, signal_number);
    kill(getpid(), signal_number);
    sigprocmask(SIG_UNBLOCK, &only, NULL);
    _exit(128 + signal_number);   /* a signal whose default is not to end */
}

enum { LIFELINE_BROKEN = 1, GOT_SIGTERM = 2 };

/* Waits for a signal (or timeout_ms, -1: none); LIFELINE_BROKEN and
 * GOT_SIGTERM tell what came. */
static int wait_round(struct supervisor *supervisor, int timeout_ms)
{
    struct pollfd fds[2] = {
        { .fd = supervisor->signal_fd, .events = POLLIN },
        { .fd = supervisor->lifeline_fd, .events = POLLIN },
    };
    int what = 0;

    if (poll(fds, 2, timeout_ms) < 0) {
        if (errno != EINTR) {
            say("poll: %s", strerror(errno));
            /* Never spin: a broken poll is treated as a lost detachd. */
            return LIFELINE_BROKEN;
        }
        return 0;
    }
    if (fds[0].revents && drain_signals(supervisor->signal_fd))
        what |= GOT_SIGTERM;
    if (fds[1].revents) {
        char byte;
        ssize_t n = read(supervisor->lifeline_fd, &byte, 1);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            what |= LIFELINE_BROKEN;
    }
    return what;
}

/* detachd is gone: nothing of the job may run on (a restarted detachd
 * will run it again), and nobody else will run its on_shutdown. */
static void lost(struct supervisor *supervisor)
{
    struct run_outcome outcome;
    int status;
    char **environment;

    supervisor->lifeline_fd = -1;
    do {
        signal_descendants(supervisor->self, SIGKILL, 0, 0);
        wait_round(supervisor, 100);
    } while (reap(supervisor));
    say("detachd is gone: killed the job's processes");
    if (!supervisor->plan.on_shutdown)
        _exit(0);
    status = supervisor->command_status;
    outcome = (struct run_outcome){
        .exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1,
        .exit_signal = WIFSIGNALED(status) ? WTERMSIG(status) : -1,
        .elapsed_ms = now_ms() - supervisor->started_ms,
        .will_retry = supervisor->plan.will_retry,
    };
    environment = run_shutdown_environment(environ, &outcome);
    if (!environment) {
        say("on_shutdown: out of memory");
        _exit(1);
    }
    supervisor->hook = start(supervisor->plan.on_shutdown, environment, RUN_FD_HOOK_LOG);
    free(environment);
    if (supervisor->hook < 0) {
        say("on_shutdown %s: %s", supervisor->plan.on_shutdown[0], strerror(errno));
        _exit(1);
    }
    /* The hook's leftovers go with it: no detachd will stop them. */
    while (reap(supervisor)) {
        if (supervisor->hook_done)
            signal_descendants(supervisor->self, SIGKILL, 0, 0);
        wait_round(supervisor, 100);
    }
    _exit(0);
}

static void report_start_failure(int error)
{
    if (write(RUN_FD_REPORT, &error, sizeof(error)) < 0)
        (void)0;   /* detachd is gone: it will not miss the report */
}

int main(int argc, char **argv)
{
    struct supervisor supervisor = { .signal_fd = -1, .lifeline_fd = -1 };
    enum phase phase = RUNNING;
    uint64_t deadline = 0;          /* SIGKILL for all that is left */
    uint64_t outside_deadline = 0;  /* in a stop: SIGKILL for what left the group */
    sigset_t all, child;

    supervisor.started_ms = now_ms();
    supervisor.self = getpid();
    /* detachd spawns us with every signal blocked already; by hand too. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    if (run_argv_parse(argc, argv, &supervisor.plan) < 0) {
        fputs("detach-run: started by detachd for each job, not by hand\n", stderr);
        report_start_failure(EINVAL);
        return 127;
    }
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    sigaddset(&child, SIGTERM);   /* a stop of the group: see the loop */
    supervisor.signal_fd = signalfd(-1, &child, SFD_CLOEXEC | SFD_NONBLOCK);
    if (supervisor.signal_fd < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        int error = errno;
        say("cannot supervise: %s", strerror(error));
        report_start_failure(error);
        return 127;
    }
    /* Ours alone: neither the command nor the hook gets the lifeline, the
     * report or the spool lock. */
    if (close_range(RUN_FD_LIFELINE, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
        for (int fd = RUN_FD_LIFELINE; fd <= RUN_FD_LOCK; fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (fcntl(RUN_FD_LIFELINE, F_GETFD) >= 0)
        supervisor.lifeline_fd = RUN_FD_LIFELINE;
    supervisor.command = start(supervisor.plan.command, environ, -1);
    if (supervisor.command < 0) {
        report_start_failure(errno);
        return 127;
    }
    close(RUN_FD_REPORT);   /* EOF: detachd's spawn returns */

    for (;;) {
        int timeout = -1, what;

        if (phase == KILLING || outside_deadline == KILL_NOW) {
            timeout = 100;   /* rescan: a dying leftover's children are ours now */
        } else if (deadline) {
            uint64_t now = now_ms(), next = deadline;
            if (outside_deadline && outside_deadline < next)
                next = outside_deadline;
            timeout = now >= next ? 0 : (int)(next - now);
        }
        what = wait_round(&supervisor, timeout);
        if (what & LIFELINE_BROKEN)
            lost(&supervisor);
        if ((what & GOT_SIGTERM) && phase == RUNNING && !deadline) {
            /* A stop (time limit, abort, drain): detachd SIGTERMed the group
             * and SIGKILLs it after kill_grace, us included, so what left
             * the group gets the same TERM from us, and its KILL just
             * before detachd's (which could not reach it).  The group's
             * KILL stays detachd's; ours comes later, only if it did not. */
            uint64_t grace = (uint64_t)supervisor.plan.kill_grace * 1000, now = now_ms();
            uint64_t margin = grace / 4 < STOP_MARGIN_MS ? grace / 4 : STOP_MARGIN_MS;
            signal_descendants(supervisor.self, SIGTERM, supervisor.self, 0);
            outside_deadline = now + grace - margin;
            deadline = now + grace + STOP_SLACK_MS;
        }
        if (!reap(&supervisor))
            exit_like(supervisor.command_status);   /* the command and all it left are gone */
        if (outside_deadline && now_ms() >= outside_deadline) {
            outside_deadline = KILL_NOW;
            signal_descendants(supervisor.self, SIGKILL, supervisor.self, 0);
        }
        if (supervisor.command_done && phase == RUNNING) {
            /* The command ended and left processes behind. */
            if (!deadline) {
                kill(-supervisor.self, SIGTERM);
                signal_descendants(supervisor.self, SIGTERM, supervisor.self, 0);
                deadline = now_ms() + (uint64_t)supervisor.plan.kill_grace * 1000;
            }
            phase = TERMINATING;
        }
        if (phase != KILLING && deadline && now_ms() >= deadline) {
            say("the job's processes outlived kill_grace=%u: SIGKILL", supervisor.plan.kill_grace);
            phase = KILLING;
        }
        if (phase == KILLING)
            signal_descendants(supervisor.self, SIGKILL, 0, 0);
    }
}
