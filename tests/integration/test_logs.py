"""detachd's logs and its life under systemd, end to end with the real
detachd: log_format = json, log_file reopened on SIGUSR1 (logrotate), job
logs pruned after job_log_keep, "accepted" before "started" for every job,
a recovered job keeping its first acceptance time, sd_notify's READY=1 and
STOPPING=1 read from a NOTIFY_SOCKET of the test's own, and the journal's
fields read back from a real systemd-journald the test starts in a mount
namespace of its own.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time

import harness
from fcgi_client import fcgi_request

STATUS = "/detach-status"
ROOT = os.path.abspath(os.path.join(harness.HERE, "..", ".."))


def trigger(box, path="/job"):
    response = fcgi_request(box.socket, path)
    assert response.status == 200, response.stdout
    return response.header("X-Detach-Job")


def job_json(box, job_id):
    response = fcgi_request(box.socket, STATUS + "/jobs/" + job_id,
                            extra={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status == 200, response.stdout
    return json.loads(response.body)


def json_lines(text):
    """Every line parsed as JSON (any other line fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---- log_format = json ----

def test_json_log_format_has_the_same_fields():
    with harness.Sandbox() as box:
        job = box.script("job.sh", "echo hello\n")
        config = box.config({"/job": {"command": job}}, {"log_format": "json"})
        daemon = harness.Detachd(box, config, logs_to_stderr=False)
        harness.wait_for(lambda: any(e.get("event") == "serving" for e in json_lines(daemon.text())),
                         10, "a JSON serving line")
        job_id = trigger(box)
        ended = harness.wait_for(
            lambda: [e for e in json_lines(daemon.text())
                     if e.get("event") == "ended" and e.get("job") == job_id],
            10, "the JSON ended line")[0]
        assert ended["level"] == "info" and ended["route"] == "/job", ended
        assert ended["result"] == "ok" and isinstance(ended["elapsed_ms"], int), ended
        assert ended["ts"].endswith("Z"), ended
        assert daemon.stop() == 0
        # Every line, to the last, is one JSON object.
        events = [e["event"] for e in json_lines(daemon.text())]
        assert "accepted" in events and "started" in events and "stopped" in events, events


def test_bad_log_format_is_a_config_error_naming_the_line():
    with harness.Sandbox() as box:
        config = box.config({"/job": {"command": "/bin/true"}}, {"log_format": "xml"})
        result = subprocess.run([harness.binary("detachd"), "--check-config", "--config", config],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, result
        assert f"{config}:4:" in result.stderr and "logfmt or json" in result.stderr, result.stderr


# ---- log_file and SIGUSR1 ----

def test_sigusr1_reopens_the_log_file_after_rotation():
    with harness.Sandbox() as box:
        job = box.script("job.sh", "exit 0\n")
        log_file = box.path("detachd.log")
        config = box.config({"/job": {"command": job}}, {"log_file": log_file})
        daemon = harness.Detachd(box, config, logs_to_stderr=False)

        def file_events(path, event, **fields):
            if not os.path.exists(path):
                return []
            with open(path) as f:
                entries = [harness.parse_logfmt(line) for line in f]
            return [e for e in entries if e.get("event") == event
                    and all(e.get(k) == v for k, v in fields.items())]

        harness.wait_for(lambda: file_events(log_file, "serving"), 10, "serving in log_file")
        first = trigger(box)
        harness.wait_for(lambda: file_events(log_file, "ended", job=first), 10, "first job ended")
        # What logrotate does: move the file away, then tell detachd.
        rotated = log_file + ".1"
        os.rename(log_file, rotated)
        os.kill(daemon.pid, signal.SIGUSR1)
        harness.wait_for(lambda: file_events(log_file, "log_reopened"), 10,
                         "a fresh log_file after SIGUSR1")
        second = trigger(box)
        harness.wait_for(lambda: file_events(log_file, "ended", job=second), 10,
                         "second job in the new file")
        assert not file_events(rotated, "accepted", job=second)
        assert file_events(rotated, "accepted", job=first)
        assert not file_events(log_file, "accepted", job=first)
        assert daemon.stop() == 0


def test_the_packaged_logrotate_file_rotates_and_detachd_reopens():
    """packaging/logrotate run by the real logrotate: its path and the
    systemctl in postrotate pointed at this sandbox's detachd (no systemd
    here), its owner lines left out (no detach user here)."""
    assert shutil.which("logrotate"), "logrotate is missing (tests/run installs it)"
    with harness.Sandbox() as box:
        job = box.script("job.sh", "exit 0\n")
        log_file = box.path("detachd.log")
        config = box.config({"/job": {"command": job}}, {"log_file": log_file})
        daemon = harness.Detachd(box, config, logs_to_stderr=False)
        with open(os.path.join(ROOT, "packaging", "logrotate")) as f:
            shipped = f.read()
        systemctl = "systemctl kill --kill-whom=main --signal=USR1 detachd.service"
        assert "/var/log/detach/detachd.log {" in shipped and systemctl in shipped, shipped
        rotate_config = box.path("logrotate.conf")
        with open(rotate_config, "w") as f:
            f.write(shipped.replace("/var/log/detach/detachd.log", log_file)
                    .replace(systemctl, f"kill -USR1 {daemon.pid}")
                    .replace("    su detach detach\n", "")
                    .replace("create 0640 detach detach", "create 0640 root root"))
        first = trigger(box)
        harness.wait_for(lambda: f"event=ended job={first}" in open(log_file).read(), 10,
                         "the first job in the log")
        rotate = subprocess.run(["logrotate", "-f", "-s", box.path("logrotate.state"),
                                 rotate_config], capture_output=True, text=True, timeout=60)
        assert rotate.returncode == 0, rotate.stderr
        harness.wait_for(lambda: "event=log_reopened" in open(log_file).read(), 10,
                         "detachd to reopen the fresh file")
        second = trigger(box)
        harness.wait_for(lambda: f"event=ended job={second}" in open(log_file).read(), 10,
                         "the second job in the fresh file")
        with open(log_file + ".1") as f:   # delaycompress: the newest stays plain
            rotated = f.read()
        assert f"job={first}" in rotated and f"job={second}" not in rotated
        assert f"job={first}" not in open(log_file).read()
        assert daemon.stop() == 0


# ---- job_log_keep ----

def test_old_job_logs_are_pruned_in_the_background():
    with harness.Sandbox() as box:
        job = box.script("job.sh", "echo output of $DETACH_JOB_ID\n")
        old = os.path.join(box.logs, "00000001deadbeef.log")
        other = os.path.join(box.logs, "notes.txt")
        for path in (old, other):
            with open(path, "w") as f:
                f.write("old\n")
            an_hour_ago = time.time() - 3600
            os.utime(path, (an_hour_ago, an_hour_ago))
        daemon = box.detachd({"/job": {"command": job}}, {"job_log_keep": 60})
        job_id = trigger(box)
        daemon.wait_event("ended", job=job_id)
        pruned = daemon.wait_event("job_logs_pruned", timeout=20)
        assert pruned["removed"] == "1", pruned
        assert not os.path.exists(old)
        # Younger than the retention, or not a job log: kept.
        assert os.path.exists(os.path.join(box.logs, job_id + ".log"))
        assert os.path.exists(other)
        assert daemon.stop() == 0


def test_job_log_keep_0_keeps_every_log():
    with harness.Sandbox() as box:
        old = os.path.join(box.logs, "00000001deadbeef.log")
        with open(old, "w") as f:
            f.write("old\n")
        os.utime(old, (0, 0))
        daemon = box.detachd({"/job": {"command": "/bin/true"}}, {"job_log_keep": 0})
        job_id = trigger(box)
        daemon.wait_event("ended", job=job_id)
        assert daemon.stop() == 0
        assert os.path.exists(old)
        assert not daemon.events("job_logs_pruned")


# ---- event order and times ----

def test_accepted_is_always_logged_before_started():
    with harness.Sandbox() as box:
        # A spool sends every trigger through a worker, which submits the
        # job itself: the job thread may start it at once.
        daemon = box.detachd({"/job": {"command": "/bin/true"}},
                             {"spool": box.path("spool"), "max_jobs": 8})
        ids = [trigger(box) for _ in range(150)]
        daemon.wait_events("ended", len(ids), timeout=60)
        order = {}
        for index, line in enumerate(daemon.text().splitlines()):
            entry = harness.parse_logfmt(line)
            if entry.get("event") in ("accepted", "started"):
                order.setdefault(entry["job"], {})[entry["event"]] = index
        late = [job_id for job_id in ids if order[job_id]["accepted"] > order[job_id]["started"]]
        assert not late, f"{len(late)} jobs logged started before accepted, e.g. {late[0]}"
        assert daemon.stop() == 0


def test_recovered_job_keeps_its_first_acceptance_time():
    with harness.Sandbox() as box:
        spool, go = box.path("spool"), box.path("go")
        job = box.script("job.sh", f"""
i=0
while [ ! -e "{go}" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
""")
        routes = {"/job": {"command": job}}
        settings = {"spool": spool, "status_path": STATUS}
        daemon = box.detachd(routes, settings)
        job_id = trigger(box)
        daemon.wait_event("started", job=job_id)
        accepted_ms = job_json(box, job_id)["times"]["accepted_ms"]
        assert accepted_ms > 0
        daemon.stop(signal.SIGKILL)
        # Long enough that a restart's own clock reading is told apart.
        harness.wait_for(lambda: time.time() * 1000 > accepted_ms + 1500, 5, "time to pass")
        daemon = box.detachd(routes, settings)
        daemon.wait_event("recovered", job=job_id)
        again = job_json(box, job_id)
        assert again["retry"] is True, again
        assert again["times"]["accepted_ms"] == accepted_ms, (again, accepted_ms)
        open(go, "w").close()
        daemon.wait_event("ended", job=job_id)
        assert daemon.stop() == 0


# ---- systemd: sd_notify ----

def notify_socket(box):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = box.path("notify.sock")
    sock.bind(path)
    sock.settimeout(15)
    return sock, path


def read_notifications(sock, until):
    """Datagrams (each NAME=value lines) until one holds `until`."""
    seen = []
    while True:
        data = sock.recv(4096).decode()
        seen.append(data)
        if until in data.split("\n"):
            return seen


def test_sd_notify_ready_once_listening_and_stopping_at_drain():
    with harness.Sandbox() as box:
        sock, path = notify_socket(box)
        try:
            config = box.config({"/job": {"command": "/bin/true"}}, {"spool": box.path("spool")})
            env = dict(os.environ, NOTIFY_SOCKET=path)
            daemon = harness.Detachd(box, config, env=env)
            read_notifications(sock, "READY=1")
            # Ready means a trigger is taken and the store is open.
            assert os.path.isdir(box.path("spool"))
            trigger(box)
            os.kill(daemon.pid, signal.SIGTERM)
            read_notifications(sock, "STOPPING=1")
            assert daemon.popen.wait(30) == 0
        finally:
            sock.close()


def test_no_notify_socket_changes_nothing():
    with harness.Sandbox() as box:
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        daemon = box.detachd({"/job": {"command": "/bin/true"}}, env=env)
        trigger(box)
        assert daemon.stop() == 0


# ---- systemd: the journal ----

JOURNALD = "/lib/systemd/systemd-journald"


def journald_script(box):
    """A shell to run in a mount namespace of its own: a tmpfs over /run
    (and /var/log/journal), a real systemd-journald that makes its sockets
    there, then "$@" (detachd talks to /run/systemd/journal/socket, this
    journald's), then a copy of the journal files for journalctl."""
    return box.script("in-namespace.sh", f"""
set -eu
mount -t tmpfs tmpfs /run
[ ! -d /var/log/journal ] || mount -t tmpfs tmpfs /var/log/journal
mkdir -p /run/systemd/journal /run/log/journal
{JOURNALD} &
journald=$!
i=0
while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
[ -S /run/systemd/journal/socket ] || {{ echo "journald made no socket"; exit 3; }}
status=0
"$@" || status=$?
kill $journald
wait $journald || true
cp -r /run/log/journal "{box.path('journal-copy')}"
exit $status
""")


def journal_possible():
    if os.geteuid() != 0 or not os.path.exists(JOURNALD) or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True, timeout=10)
    return probe.returncode == 0


def run_in_journal_namespace(box, config, under):
    """detachd with config, one trigger whose job touches a file, then
    SIGTERM; all inside journald_script.  under: argv put before detachd's
    (e.g. systemd-cat).  Returns (job id, journal entries of that job)."""
    done = box.path("done")
    runner = box.path("run-detachd.py")
    with open(runner, "w") as f:
        f.write(f"""
import os, signal, subprocess, sys
sys.path.insert(0, {harness.HERE!r})
import harness
from fcgi_client import fcgi_request
daemon = subprocess.Popen({under!r} + [{harness.binary('detachd')!r}, "--config", {config!r}])
harness.wait_for(lambda: harness.connectable({box.socket!r}), 15, "detachd to listen")
response = fcgi_request({box.socket!r}, "/job")
print("JOB", response.header("X-Detach-Job"), flush=True)
harness.wait_for(lambda: os.path.exists({done!r}), 15, "the job to run")
daemon.send_signal(signal.SIGTERM)
sys.exit(daemon.wait(30))
""")
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh",
                             journald_script(box), "python3", runner],
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("JOB ")][0]
    found = subprocess.run(["journalctl", "--directory", box.path("journal-copy"), "-o", "json",
                            f"JOB_ID={job_id}"], capture_output=True, text=True, timeout=30)
    return job_id, [json.loads(line) for line in found.stdout.splitlines() if line.strip()]


def check_job_entries(job_id, entries):
    events = [e.get("EVENT") for e in entries]
    assert "accepted" in events and "started" in events and "ended" in events, events
    ended = [e for e in entries if e.get("EVENT") == "ended"][0]
    assert ended["ROUTE"] == "/job" and ended["RESULT"] == "ok", ended
    assert ended["SYSLOG_IDENTIFIER"] == "detachd" and ended["PRIORITY"] == "6", ended
    assert ended["_TRANSPORT"] == "journal", ended
    assert ended["MESSAGE"].startswith("level=info event=ended job=" + job_id), ended


def test_journal_entries_carry_job_route_and_event_fields():
    assert journal_possible(), ("cannot run systemd-journald in a mount namespace here "
                                "(needs root, unshare and " + JOURNALD + ")")
    with harness.Sandbox() as box:
        job = box.script("job.sh", f"touch {box.path('done')}\n")
        config = box.config({"/job": {"command": job}}, {"log": "journal"})
        job_id, entries = run_in_journal_namespace(box, config, [])
        check_job_entries(job_id, entries)


def test_stderr_on_the_journal_stream_means_the_journal():
    """As under systemd: stderr is journald's stream (systemd-cat connects
    it) and JOURNAL_STREAM names its device:inode, as systemd sets it for
    a service; no log key at all."""
    assert journal_possible(), "cannot run systemd-journald in a mount namespace here"
    with harness.Sandbox() as box:
        job = box.script("job.sh", f"touch {box.path('done')}\n")
        config = box.config({"/job": {"command": job}})
        as_systemd_does = 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"'
        job_id, entries = run_in_journal_namespace(
            box, config, ["systemd-cat", "--identifier=detachd", "sh", "-c", as_systemd_does, "sh"])
        check_job_entries(job_id, entries)


if __name__ == "__main__":
    harness.run(globals())
