"""A job owns its processes: what it leaves running is stopped when it ends
(TERM, then KILL after kill_grace), and when detachd dies, however, its
jobs' processes die with it, so a restarted detachd never runs a job beside
an earlier run of it.  Real detachd on a unix socket in a temp dir."""

import os
import signal
import subprocess
import time

from harness import Sandbox, run, wait_for
from fcgi_client import fcgi_request


def fire(address, path):
    response = fcgi_request(address, path, timeout=5)
    assert response.status == 200, response.status
    return response.header("X-Detach-Job")


def alive(pid):
    """True while pid runs (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def pids(path):
    return [int(word) for line in lines(path) for word in line]


def kill_all(pid_list):
    """Cleanup for a failed run: the old code leaves these behind."""
    for pid in pid_list:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def term_ignorer(box, pid_file):
    """Shell lines starting a leftover that ignores SIGTERM (the ignore
    survives exec) and waiting until it does, so a TERM cannot beat it."""
    ignorer = box.script("ignorer.sh", 'trap "" TERM\necho $$ >> "$1"\nexec sleep 30\n')
    return f"{ignorer} {pid_file} &\nuntil [ -s {pid_file} ]; do sleep 0.01; done\n"


def test_kill_9_kills_the_jobs_and_the_restart_never_overlaps_a_run():
    with Sandbox() as box:
        events, locks = box.path("events"), box.path("locks")
        os.mkdir(locks)
        # Each run holds an flock on its job's lock file, and so does the
        # background child it starts (it inherits fd 9): a run that cannot
        # take it has a twin still running.
        job = box.script("job.sh", f"""
exec 9>>"{locks}/$DETACH_JOB_ID"
if ! flock -n 9; then echo "overlap $DETACH_JOB_ID" >> {events}; exit 1; fi
echo "start $DETACH_JOB_ID ${{DETACH_RETRY:-0}} $$" >> {events}
[ -n "$DETACH_RETRY" ] && exit 0
sleep 300 &
echo "child $DETACH_JOB_ID $!" >> {events}
wait
""")
        # The cut-short run's hook takes a while: the restart must wait for it.
        hook = box.script("hook.sh", f"""
if [ "$DETACH_EXIT_SIGNAL" = 9 ] && [ "$DETACH_WILL_RETRY" = 1 ]; then sleep 1; fi
echo "hook $DETACH_JOB_ID result=$DETACH_RESULT signal=${{DETACH_EXIT_SIGNAL:-}} \
code=${{DETACH_EXIT_CODE:-}} retry=$DETACH_WILL_RETRY status=$DETACH_CONNECTION_STATUS" >> {events}
""")
        routes = {"/job": {"command": job, "on_shutdown": hook}}
        config = {"spool": box.path("spool"), "max_jobs": 8}
        daemon = box.detachd(routes, config)
        ids = [fire(box.socket, "/job") for _ in range(5)]
        wait_for(lambda: len([e for e in lines(events) if e[0] == "child"]) == 5, 15,
                 "5 jobs running, each with a background child")
        processes = [int(e[3]) for e in lines(events) if e[0] == "start"]
        processes += [int(e[2]) for e in lines(events) if e[0] == "child"]
        try:
            daemon.stop(signal.SIGKILL)
            daemon = box.detachd(routes, config)   # at once: it must wait for the old runs
            wait_for(lambda: not any(alive(pid) for pid in processes), 10,
                     "the killed detachd's job processes (and their children) to die")
            wait_for(lambda: len([e for e in lines(events) if e[0] == "start" and e[2] == "1"]) == 5,
                     30, "the restarted detachd to rerun the 5 jobs")
            for job_id in ids:
                daemon.wait_event("ended", 15, job=job_id, result="ok")
        finally:
            kill_all(processes)
        happened = lines(events)
        assert not [e for e in happened if e[0] == "overlap"], happened
        for job_id in ids:
            mine = [e for e in happened if len(e) > 1 and e[1] == job_id]
            kinds = [e[0] for e in mine]
            # first run, its child, the cut-short run's hook, the rerun, its hook
            assert kinds == ["start", "child", "hook", "start", "hook"], mine
            cut_short = mine[2]
            assert cut_short[2:] == ["result=failed", "signal=9", "code=", "retry=1", "status=0"], \
                cut_short
        # The restart said why it waited.
        daemon.wait_event("spool_lock_wait")
        assert daemon.stop() == 0


def test_a_second_detachd_on_the_same_spool_is_refused():
    with Sandbox() as box:
        job = box.script("job.sh", "true\n")
        config = {"spool": box.path("spool")}
        daemon = box.detachd({"/job": {"command": job}}, config)
        second_config = box.config({"/job": {"command": job}},
                                   dict(config, listen=f"unix:{box.path('second.sock')}"),
                                   name="second.conf")
        second = subprocess.run([daemon.argv[0], "--config", second_config],
                                capture_output=True, text=True, timeout=20)
        assert second.returncode == 1, (second.returncode, second.stderr)
        assert f"in use by detachd (pid {daemon.pid})" in second.stderr, second.stderr
        assert daemon.stop() == 0


def test_a_leftover_is_terminated_when_the_job_ends():
    with Sandbox() as box:
        left = box.path("left")
        job = box.script("job.sh", f"sleep 30 &\necho $! > {left}\nexit 3\n")
        daemon = box.detachd({"/job": {"command": job, "kill_grace": 5}})
        job_id = fire(box.socket, "/job")
        ended = daemon.wait_event("ended", 10, job=job_id)
        leftover = pids(left)
        try:
            assert not alive(leftover[0]), "the job's sleep 30 & outlived it"
            assert ended["exit_code"] == "3", ended   # the command's own status
            assert int(ended["elapsed_ms"]) < 4000, ended   # TERM was enough: no grace wait
        finally:
            kill_all(leftover)
        assert daemon.stop() == 0


def test_a_leftover_ignoring_term_is_killed_after_kill_grace():
    with Sandbox() as box:
        left = box.path("left")
        job = box.script("job.sh", term_ignorer(box, left) + "kill -USR1 $$\n")
        daemon = box.detachd({"/job": {"command": job, "kill_grace": 1}})
        job_id = fire(box.socket, "/job")
        ended = daemon.wait_event("ended", 10, job=job_id)
        leftover = pids(left)
        try:
            assert not alive(leftover[0]), "a leftover ignoring SIGTERM outlived kill_grace"
            assert ended["exit_signal"] == str(int(signal.SIGUSR1)), ended   # mirrored
            assert int(ended["elapsed_ms"]) >= 900, ended   # it got its grace
            with open(os.path.join(box.logs, f"{job_id}.log")) as f:
                assert "outlived kill_grace=1: SIGKILL" in f.read()
        finally:
            kill_all(leftover)
        assert daemon.stop() == 0


def test_a_time_limit_stops_leftovers_even_one_that_left_the_group():
    with Sandbox() as box:
        left = box.path("left")
        job = box.script("job.sh", term_ignorer(box, left) + f"""
setsid sleep 30 &
echo $! >> {left}
sleep 60
""")
        daemon = box.detachd({"/job": {"command": job, "time_limit": 1, "kill_grace": 1}})
        job_id = fire(box.socket, "/job")
        ended = daemon.wait_event("ended", 15, job=job_id)
        leftover = pids(left)
        try:
            assert ended["connection_status"] == "2", ended
            assert len(leftover) == 2
            wait_for(lambda: not any(alive(pid) for pid in leftover), 3,
                     "the job's leftovers, in its group and out of it, to die")
        finally:
            kill_all(leftover)
        assert daemon.stop() == 0


def test_the_daemons_stop_leaves_no_job_process_behind():
    with Sandbox() as box:
        left, slow_left = box.path("left"), box.path("slow_left")
        quick = box.script("quick.sh", f"sleep 30 &\necho $! >> {left}\n")
        slow = box.script("slow.sh", term_ignorer(box, slow_left) +
                          f"setsid sleep 30 &\necho $! >> {slow_left}\nexec sleep 60\n")
        routes = {"/quick": {"command": quick, "kill_grace": 1},
                  "/slow": {"command": slow, "kill_grace": 1}}
        daemon = box.detachd(routes, {"drain_timeout": 1})
        quick_id = fire(box.socket, "/quick")
        daemon.wait_event("ended", 10, job=quick_id)
        fire(box.socket, "/slow")
        wait_for(lambda: len(pids(slow_left)) == 2, 10, "the slow job to start its children")
        leftover = pids(left) + pids(slow_left)
        assert len(leftover) == 3
        try:
            assert daemon.stop(signal.SIGTERM, 20) == 0
            wait_for(lambda: not any(alive(pid) for pid in leftover), 3,
                     "every job process to be gone once detachd stopped")
        finally:
            kill_all(leftover)


def test_a_job_dropped_to_another_user_dies_with_detachd_too():
    if os.geteuid() != 0:
        print("  (not root: no privilege drop to test)")
        return
    with Sandbox() as box:
        os.chmod(box.dir, 0o755)
        out = box.path("out")
        os.mkdir(out)
        os.chmod(out, 0o777)
        job = box.script("job.sh", f"""
id -u > {out}/uid
sleep 30 &
echo $$ $! > {out}/pids
if [ "$1" = leave ]; then exit 0; fi
exec sleep 60
""")
        routes = {"/leave": {"command": f"{job} leave", "user": "nobody"},
                  "/stay": {"command": job, "user": "nobody"}}
        daemon = box.detachd(routes, {"spool": box.path("spool")})
        leave_id = fire(box.socket, "/leave")
        daemon.wait_event("ended", 10, job=leave_id)
        leftover = pids(f"{out}/pids")
        try:
            with open(f"{out}/uid") as f:
                assert f.read().strip() == "65534"
            assert not alive(leftover[1]), "the user job's sleep 30 & outlived it"
            os.unlink(f"{out}/pids")
            fire(box.socket, "/stay")
            wait_for(lambda: len(pids(f"{out}/pids")) == 2, 10, "the second job to run")
            running = pids(f"{out}/pids")
            leftover += running
            daemon.stop(signal.SIGKILL)
            wait_for(lambda: not any(alive(pid) for pid in running), 10,
                     "the user job's processes to die with detachd")
        finally:
            kill_all(leftover)


if __name__ == "__main__":
    run(globals())
