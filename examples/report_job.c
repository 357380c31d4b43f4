/*
 * report_job.c - the classic PHP fire-and-forget job, written with libdetach.
 *
 * The PHP original:
 *
 *     ignore_user_abort(true);
 *     set_time_limit(0);
 *     register_shutdown_function('report_done');
 *     build_report();            // minutes of work
 *
 * Here /report is a trigger route: the client gets an empty 200 at once,
 * the job runs on, and report_done() runs however the job ends (finished,
 * timed out, stopped with the server).  /report/live is the attached
 * variant: the output streams to the client, and if the client leaves the
 * job is stopped (ignore_user_abort off) and report_done() sees status 1.
 *
 * Run:  example-report unix:/tmp/report.sock
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <detach.h>

static detach_server *server;

static void on_signal(int signal_number)
{
    (void)signal_number;
    detach_server_stop(server);
}

static void report_done(detach_job *job, void *arg)
{
    (void)arg;
    fprintf(stderr, "report %s done: connection_status=%d\n", detach_job_id(job),
            detach_connection_status(job));
}

/* A step of work; a real report would query and write here. */
static void work_a_little(void)
{
    struct timespec step = { 0, 100 * 1000 * 1000 };
    nanosleep(&step, NULL);
}

static void build_report(detach_job *job, void *arg)
{
    const char *steps_param = detach_param(job, "QUERY_STRING");
    int steps = steps_param && strncmp(steps_param, "steps=", 6) == 0 ? atoi(steps_param + 6) : 20;

    (void)arg;
    detach_ignore_user_abort(job, detach_job_mode(job) == DETACH_TRIGGER);
    detach_set_time_limit(job, 0);
    detach_register_shutdown(job, report_done, NULL);

    for (int i = 1; i <= steps && !detach_should_stop(job); i++) {
        char line[64];
        work_a_little();
        detach_progress(job, i * 100 / steps, "building");
        if (detach_job_mode(job) == DETACH_ATTACHED) {
            snprintf(line, sizeof(line), "step %d of %d\n", i, steps);
            detach_write(job, line, strlen(line));
        }
    }
}

int main(int argc, char **argv)
{
    const char *listen = argc > 1 ? argv[1] : NULL;   /* NULL: socket on fd 0 */
    struct sigaction stop = { .sa_handler = on_signal };
    int status;

    server = detach_server_new(listen, NULL);
    if (!server) {
        fprintf(stderr, "example-report: %s\n", detach_last_error());
        return 1;
    }
    if (detach_route(server, "/report", DETACH_TRIGGER, build_report, NULL) < 0 ||
        detach_route(server, "/report/live", DETACH_ATTACHED, build_report, NULL) < 0) {
        fprintf(stderr, "example-report: %s\n", detach_last_error());
        detach_server_free(server);
        return 1;
    }
    sigemptyset(&stop.sa_mask);
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);
    status = detach_serve(server) < 0 ? 1 : 0;
    if (status)
        fprintf(stderr, "example-report: %s\n", detach_last_error());
    detach_server_free(server);
    return status;
}
