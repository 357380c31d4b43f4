"""detachd end to end: real daemon, real scripts, FastCGI over loopback and
unix sockets.  Each test runs in its own Sandbox (temp dir, own detachd);
scripts leave marker files that the tests read.  Waits are on events and
files with deadlines; sleeps appear only in scripts, where time passing is
the point.
"""

import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Detachd, Sandbox, binary, free_port, parse_logfmt, run, wait_for  # noqa: E402
from fcgi_client import (ABORT_REQUEST, BEGIN_REQUEST, END_REQUEST, PARAMS, Connection,  # noqa: E402
                         cgi_params, fcgi_request, record, request_bytes)


# ---- helpers ----

def read_env(path):
    """An `env > FILE` dump as a dict."""
    with open(path) as f:
        return dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)


def env_dump_script(box, name, target):
    """An on_shutdown program that saves its environment to target, whole."""
    return box.script(name, f'env > "{target}.tmp" && mv "{target}.tmp" "{target}"\n')


def marker_dir(box):
    path = box.path("marks")
    os.mkdir(path)
    return path


def markers(path):
    return set(os.listdir(path))


def log_index(detachd, event, **fields):
    """The line number of the first matching event in detachd's log."""
    for i, line in enumerate(detachd.text().splitlines()):
        entry = parse_logfmt(line)
        if entry.get("event") == event and all(entry.get(k) == str(v) for k, v in fields.items()):
            return i
    raise AssertionError(f"no event={event} {fields} in the log:\n{detachd.text()[-3000:]}")


def send_and_leave(address, path, **kwargs):
    """Sends a whole request on a fresh connection and returns it unread."""
    connection = Connection(address)
    connection.send(request_bytes(cgi_params(path, **kwargs)))
    return connection


def closed_by_peer(connection, timeout=5.0):
    """Reads whatever detachd still sends until EOF: True at EOF, False if
    the connection is still open at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        connection.sock.settimeout(remaining)
        try:
            if connection.sock.recv(65536) == b"":
                return True
        except socket.timeout:
            return False
        except ConnectionError:
            return True


def job_of(detachd, route):
    """The id of the one job accepted on route."""
    accepted = detachd.wait_event("accepted", route=route)
    return accepted["job"]


def assert_acked(response):
    assert response.ended, response.stdout
    assert response.status == 200, response.stdout
    assert response.header("Content-Length") == "0", response.head()
    assert response.header("X-Detach-Job"), response.head()
    assert response.body == b"", response.stdout
    return response.header("X-Detach-Job")


def run_detachd(*args, timeout=10):
    return subprocess.run([binary("detachd"), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


# ---- triggers ----

def test_trigger_acked_while_max_jobs_busy():
    with Sandbox() as box:
        marks = marker_dir(box)
        job = box.script("job.sh", f'''
sleep "${{QUERY_STRING#sleep=}}"
touch "{marks}/$DETACH_JOB_ID"
''')
        d = box.detachd({"/job": {"command": job}}, {"max_jobs": 2})
        busy = [assert_acked(fcgi_request(box.socket, "/job", query="sleep=5")) for _ in range(2)]
        for job_id in busy:
            d.wait_event("started", job=job_id)
        asked = time.monotonic()
        third = assert_acked(fcgi_request(box.socket, "/job", query="sleep=0", timeout=3))
        assert time.monotonic() - asked < 1.0, "the ack waited for a job slot"
        assert not d.events("ended"), "a running job ended before the third was acked"
        assert not d.events("started", job=third), "a third job ran beyond max_jobs=2"
        ended = d.wait_event("ended", timeout=15, job=third)
        assert ended.get("exit_code") == "0", ended
        assert third in markers(marks)
        # It started only once a slot was free.
        started = log_index(d, "started", job=third)
        assert any(d.events("ended", job=job_id) and log_index(d, "ended", job=job_id) < started
                   for job_id in busy), d.text()
        assert d.stop() == 0


def test_fire_and_forget_job_runs_to_the_end():
    with Sandbox() as box:
        done = box.path("done")
        job = box.script("job.sh", f'''
body=$(cat)
sleep 0.5
printf '%s' "$body" > "{done}.tmp" && mv "{done}.tmp" "{done}"
''')
        d = box.detachd({"/job": {"command": job}})
        # The fsockopen() trick: send the whole request, close without reading.
        body = b"report=monthly&user=42"
        connection = Connection(box.socket)
        connection.send(request_bytes(cgi_params("/job", method="POST", body=body), body))
        connection.close()
        wait_for(lambda: os.path.exists(done), 10, "the job's marker")
        with open(done, "rb") as f:
            assert f.read() == body
        job_id = job_of(d, "/job")
        ended = d.wait_event("ended", job=job_id)
        assert ended["connection_status"] == "0" and ended.get("exit_code") == "0", ended
        assert d.stop() == 0


# ---- stopping: time limit, client leaving ----

def test_timeout_sigterm_then_sigkill():
    with Sandbox() as box:
        trapped, env_file = box.path("trapped"), box.path("on_shutdown.env")
        job = box.script("job.sh", f'''
trap 'touch "{trapped}"' TERM
while :; do sleep 0.1; done
''')
        on_shutdown = env_dump_script(box, "on_shutdown.sh", env_file)
        d = box.detachd({"/job": {"command": job, "time_limit": 1, "kill_grace": 1,
                                  "on_shutdown": on_shutdown}})
        job_id = assert_acked(fcgi_request(box.socket, "/job"))
        d.wait_event("on_shutdown_done", timeout=15, job=job_id)
        assert os.path.exists(trapped), "the job never got SIGTERM"
        env = read_env(env_file)
        assert env["DETACH_CONNECTION_STATUS"] == "2", env
        assert env.get("DETACH_EXIT_SIGNAL") == "9", env
        assert "DETACH_EXIT_CODE" not in env, env
        assert int(env["DETACH_ELAPSED_MS"]) >= 1900, env   # 1 s limit + 1 s grace
        d.wait_event("stopping", job=job_id, reason="timeout")
        d.wait_event("killing", job=job_id)
        ended = d.wait_event("ended", job=job_id)
        assert ended["connection_status"] == "2" and ended.get("exit_signal") == "9", ended
        assert d.stop() == 0


def test_attached_client_leaves_job_is_stopped():
    with Sandbox() as box:
        env_file = box.path("on_shutdown.env")
        job = box.script("job.sh", "sleep 30\n")
        on_shutdown = env_dump_script(box, "on_shutdown.sh", env_file)
        d = box.detachd({"/live": {"command": job, "mode": "attached",
                                   "on_shutdown": on_shutdown}})
        connection = send_and_leave(box.socket, "/live")
        job_id = job_of(d, "/live")
        d.wait_event("started", job=job_id)
        left = time.monotonic()
        connection.close()
        d.wait_event("on_shutdown_done", timeout=10, job=job_id)
        assert time.monotonic() - left < 5, "the job was not stopped when the client left"
        env = read_env(env_file)
        assert env["DETACH_CONNECTION_STATUS"] == "1", env
        assert env.get("DETACH_EXIT_SIGNAL") == "15", env
        d.wait_event("stopping", job=job_id, reason="aborted")
        assert d.stop() == 0


def test_attached_client_leaves_ignore_user_abort_on():
    with Sandbox() as box:
        env_file = box.path("on_shutdown.env")
        job = box.script("job.sh", "sleep 2\necho finished\n")
        on_shutdown = env_dump_script(box, "on_shutdown.sh", env_file)
        d = box.detachd({"/live": {"command": job, "mode": "attached", "ignore_user_abort": "on",
                                   "on_shutdown": on_shutdown}})
        connection = send_and_leave(box.socket, "/live")
        job_id = job_of(d, "/live")
        d.wait_event("started", job=job_id)
        connection.close()
        d.wait_event("aborted", job=job_id)
        d.wait_event("on_shutdown_done", timeout=10, job=job_id)
        env = read_env(env_file)
        assert env["DETACH_CONNECTION_STATUS"] == "1", env
        assert env.get("DETACH_EXIT_CODE") == "0", env      # it ran to its end
        assert "DETACH_EXIT_SIGNAL" not in env, env
        assert int(env["DETACH_ELAPSED_MS"]) >= 1900, env
        assert not d.events("stopping", job=job_id)
        assert d.stop() == 0


def abort_and_timeout(wait_for_start):
    with Sandbox() as box:
        env_file = box.path("on_shutdown.env")
        job = box.script("job.sh", "sleep 10\n")
        on_shutdown = env_dump_script(box, "on_shutdown.sh", env_file)
        d = box.detachd({"/live": {"command": job, "mode": "attached", "ignore_user_abort": "on",
                                   "time_limit": 1, "on_shutdown": on_shutdown}})
        started = time.monotonic()
        connection = send_and_leave(box.socket, "/live")
        if not wait_for_start:
            connection.close()
        job_id = job_of(d, "/live")
        if wait_for_start:
            d.wait_event("started", job=job_id)
            connection.close()
        d.wait_event("on_shutdown_done", timeout=10, job=job_id)
        assert time.monotonic() - started < 6, "the time limit did not stop the job"
        env = read_env(env_file)
        assert env["DETACH_CONNECTION_STATUS"] == "3", env
        assert env.get("DETACH_EXIT_SIGNAL") == "15", env
        ended = d.wait_event("ended", job=job_id)
        assert ended["connection_status"] == "3", ended
        assert d.stop() == 0


def test_abort_and_timeout_give_status_3():
    abort_and_timeout(wait_for_start=False)   # the client leaves at once


def test_abort_after_start_and_timeout_give_status_3():
    abort_and_timeout(wait_for_start=True)    # leaves once the script runs


def test_attached_ignore_user_abort_on_client_leaves_while_queued():
    # ignore_user_abort = on is the route's setting: it must hold from the
    # moment the request is accepted, not only once the job thread starts.
    with Sandbox() as box:
        env_file = box.path("on_shutdown.env")
        blocker = box.script("blocker.sh", "sleep 1\n")
        job = box.script("job.sh", "echo finished\n")
        on_shutdown = env_dump_script(box, "on_shutdown.sh", env_file)
        d = box.detachd({"/block": {"command": blocker},
                         "/live": {"command": job, "mode": "attached", "ignore_user_abort": "on",
                                   "on_shutdown": on_shutdown}}, {"max_jobs": 1})
        blocking = assert_acked(fcgi_request(box.socket, "/block"))
        d.wait_event("started", job=blocking)
        connection = send_and_leave(box.socket, "/live")
        job_id = job_of(d, "/live")
        connection.close()           # while it waits for the slot
        d.wait_event("aborted", job=job_id)
        d.wait_event("on_shutdown_done", timeout=10, job=job_id)
        env = read_env(env_file)
        assert env["DETACH_CONNECTION_STATUS"] == "1", env
        assert env.get("DETACH_EXIT_CODE") == "0", env   # it ran, and to its end
        assert d.stop() == 0


def test_fcgi_abort_request_sets_aborted():
    with Sandbox() as box:
        env_file = box.path("on_shutdown.env")
        job = box.script("job.sh", "sleep 30\n")
        on_shutdown = env_dump_script(box, "on_shutdown.sh", env_file)
        d = box.detachd({"/live": {"command": job, "mode": "attached",
                                   "on_shutdown": on_shutdown}})
        connection = send_and_leave(box.socket, "/live")
        try:
            job_id = job_of(d, "/live")
            d.wait_event("started", job=job_id)
            # What nginx sends when its client goes: the abort record, the
            # connection stays open.
            connection.send(record(ABORT_REQUEST, 1))
            d.wait_event("on_shutdown_done", timeout=10, job=job_id)
            env = read_env(env_file)
            assert env["DETACH_CONNECTION_STATUS"] == "1", env
            assert env.get("DETACH_EXIT_SIGNAL") == "15", env
            # The request is then ended or the connection closed: nothing hangs.
            connection.sock.settimeout(5)
            try:
                while connection.read_record()[0] != END_REQUEST:
                    pass
            except ConnectionError:
                pass
        finally:
            connection.close()
        assert d.stop() == 0


# ---- attached output and the job's environment ----

def test_attached_output_head_body_and_env():
    with Sandbox() as box:
        head = box.script("head.sh", r'''
printf 'Status: 201 Created\r\nContent-Type: application/json\r\nX-Job: %s\r\n\r\n{"ok":true}\n' "$DETACH_JOB_ID"
''')
        plain = box.script("plain.sh", "echo hello plain\n")
        echo = box.script("echo.sh", r'''
printf 'Content-Type: text/plain\n\n'
printf 'BODY=%s\n' "$(cat)"
env
''')
        d = box.detachd({
            "/head": {"command": head, "mode": "attached"},
            "/plain": {"command": plain, "mode": "attached"},
            "/echo": {"command": echo, "mode": "attached"},
        })
        response = fcgi_request(box.socket, "/head")
        assert response.ended and response.status == 201, response.stdout
        assert response.header("Content-Type") == "application/json", response.head()
        assert response.header("X-Job") == job_of(d, "/head"), response.head()
        assert response.body == b'{"ok":true}\n', response.stdout

        response = fcgi_request(box.socket, "/plain")
        assert response.ended and response.status == 200, response.stdout
        assert response.header("Content-Type").startswith("text/plain"), response.head()
        assert response.body == b"hello plain\n", response.stdout

        body = b"a=1&b=two"
        response = fcgi_request(box.socket, "/echo", method="POST", body=body, query="x=1&y=2",
                                extra={"HTTP_PROXY": "http://evil.example:8080",
                                       "HTTP_X_CUSTOM": "yes"})
        assert response.ended and response.status == 200, response.stdout
        env = dict(line.split("=", 1) for line in response.body.decode().splitlines()
                   if "=" in line)
        assert env["BODY"] == "a=1&b=two", env
        assert env["DETACH_JOB_ID"] == job_of(d, "/echo"), env
        assert env["DETACH_ROUTE"] == "/echo", env
        assert env["REQUEST_METHOD"] == "POST", env
        assert env["QUERY_STRING"] == "x=1&y=2", env
        assert env["CONTENT_LENGTH"] == str(len(body)), env
        assert env["HTTP_X_CUSTOM"] == "yes", env
        assert "HTTP_PROXY" not in env, env
        assert d.stop() == 0


def test_on_shutdown_gets_the_job_env():
    with Sandbox() as box:
        env_file = box.path("on_shutdown.env")
        job = box.script("job.sh", "exit 3\n")
        on_shutdown = env_dump_script(box, "on_shutdown.sh", env_file)
        d = box.detachd({"/job": {"command": job, "on_shutdown": on_shutdown}})
        job_id = assert_acked(fcgi_request(
            box.socket, "/job", query="q=1", extra={"HTTP_PROXY": "http://evil.example:8080",
                                                    "HTTP_X_CUSTOM": "yes"}))
        d.wait_event("on_shutdown_done", job=job_id)
        env = read_env(env_file)
        assert env["DETACH_CONNECTION_STATUS"] == "0", env
        assert env.get("DETACH_EXIT_CODE") == "3", env
        assert "DETACH_ELAPSED_MS" in env, env
        assert env["QUERY_STRING"] == "q=1" and env["HTTP_X_CUSTOM"] == "yes", env
        assert "HTTP_PROXY" not in env, env
        assert env.get("DETACH_JOB_ID") == job_id, env
        assert env.get("DETACH_ROUTE") == "/job", env
        assert d.stop() == 0


def test_trigger_job_output_goes_to_its_log():
    with Sandbox() as box:
        job = box.script("job.sh", "echo to-stdout\necho to-stderr >&2\necho '40 working' >&3\n")
        d = box.detachd({"/job": {"command": job}})
        job_id = assert_acked(fcgi_request(box.socket, "/job"))
        d.wait_event("ended", job=job_id)
        progress = d.wait_event("progress", job=job_id)
        assert progress["percent"] == "40" and "working" in progress["message"], progress
        with open(os.path.join(box.logs, job_id + ".log")) as f:
            text = f.read()
        assert "to-stdout" in text and "to-stderr" in text, text
        assert d.stop() == 0


def test_scripts_start_with_no_signal_ignored():
    """detachd here inherits SIGUSR2 ignored, and exec keeps an ignored
    signal ignored: the spawn resets it, so a script finds none of the
    standard signals ignored.  (glibc's posix_spawn leaves its own two
    internal signals, 32 and 33, ignored; a glibc program sets them up
    again at start.)"""
    with Sandbox() as box:
        target = box.path("sigign")
        job = box.script("job.sh", f"""
while read -r line; do
    case $line in SigIgn:*) echo "$line" > "{target}.tmp";; esac
done < /proc/$$/status
mv "{target}.tmp" "{target}"
""")
        d = box.detachd({"/job": {"command": job}},
                        preexec_fn=lambda: signal.signal(signal.SIGUSR2, signal.SIG_IGN))
        with open(f"/proc/{d.pid}/status") as f:
            ignored = next(line for line in f if line.startswith("SigIgn:")).split()[1]
        assert int(ignored, 16) & (1 << (signal.SIGUSR2 - 1)), ignored
        job_id = assert_acked(fcgi_request(box.socket, "/job"))
        d.wait_event("ended", job=job_id)
        with open(target) as f:
            line = f.read().split()
        assert line[0] == "SigIgn:" and int(line[1], 16) & 0x7fffffff == 0, line
        assert d.stop() == 0


# ---- configuration and command line ----

def test_config_errors_name_file_and_line():
    with Sandbox() as box:
        not_executable = box.path("plain-file")
        with open(not_executable, "w") as f:
            f.write("not a program\n")
        sock = box.path("never.sock")
        cases = [
            # (config text, line at fault, a word the message must hold)
            (f"[detachd]\nlisten = unix:{sock}\nmax_jobs = lots\n", 3, "max_jobs"),
            (f"[detachd]\nlisten = unix:{sock}\n\n[route /a]\nmode = trigger\n", 4, "command"),
            (f"[detachd]\nlisten = unix:{sock}\n[route /a]\ncommand = /bin/true\n"
             "mode = sideways\n", 5, "mode"),
            (f"[detachd]\nlisten = unix:{sock}\n[route /a]\ncommand = bin/true\n", 4, "absolute"),
            (f"; comment\n[detachd]\nlisten = unix:{sock}\nbogus = 1\n", 4, "bogus"),
            ("[detachd]\nlisten = nowhere\n", 2, "listen"),
            (f"[detachd]\nlisten = unix:{sock}\nthis is not ini\n", 3, ""),
            (f"[detachd]\nlisten = unix:{sock}\n[mystery]\n", 3, "mystery"),
        ]
        for i, (text, line, word) in enumerate(cases):
            path = box.path(f"broken-{i}.conf")
            with open(path, "w") as f:
                f.write(text)
            result = run_detachd("--config", path)
            assert result.returncode == 2, (text, result)
            assert result.stderr.startswith(f"{path}:{line}: "), (text, result.stderr)
            assert word in result.stderr, (text, result.stderr)
            assert not os.path.exists(sock), "detachd started listening on a broken config"

        good = box.path("good.conf")
        with open(good, "w") as f:
            f.write(f"[detachd]\nlisten = unix:{sock}\n\n[route /a]\ncommand = /bin/true\n"
                    "on_shutdown = /bin/true\n")
        result = run_detachd("--config", good, "--check-config")
        assert result.returncode == 0, result
        assert "ok" in result.stdout, result
        assert not os.path.exists(sock)

        unrunnable = box.path("unrunnable.conf")
        with open(unrunnable, "w") as f:
            f.write(f"[detachd]\nlisten = unix:{sock}\n\n[route /a]\ncommand = /bin/true\n"
                    f"\n[route /b]\ncommand = {not_executable}\n")
        result = run_detachd("--config", unrunnable, "--check-config")
        assert result.returncode == 2, result
        assert result.stderr.startswith(f"{unrunnable}:7: "), result.stderr

        missing = box.path("missing.conf")
        result = run_detachd("--config", missing)
        assert result.returncode == 2 and missing in result.stderr, result

        for argv in (["--config", good, "--frobnicate"], ["--config", good, "stray"],
                     ["--config", good, "--max-jobs", "many"]):
            result = run_detachd(*argv)
            assert result.returncode == 2, (argv, result)
        result = run_detachd("--version")
        assert result.returncode == 0 and result.stdout.startswith("detachd "), result


# ---- rejections ----

def test_404_and_413():
    with Sandbox() as box:
        marks = marker_dir(box)
        job = box.script("job.sh", f'cat > "{marks}/$DETACH_JOB_ID"\n')
        d = box.detachd({"/job": {"command": job}}, {"max_body": "1K"})
        response = fcgi_request(box.socket, "/nope")
        assert response.ended and response.status == 404, response.stdout
        d.wait_event("rejected", path="/nope", reason="no_route")

        response = fcgi_request(box.socket, "/job", method="POST", body=b"x" * 2048)
        assert response.ended and response.status == 413, response.stdout
        d.wait_event("rejected", path="/job", reason="body_too_large")

        # Exactly max_body is allowed.
        job_id = assert_acked(fcgi_request(box.socket, "/job", method="POST", body=b"y" * 1024))
        d.wait_event("ended", job=job_id)
        assert markers(marks) == {job_id}
        with open(os.path.join(marks, job_id), "rb") as f:
            assert f.read() == b"y" * 1024
        assert len(d.events("accepted")) == 1
        assert d.stop() == 0


def test_503_when_running_and_queue_are_full():
    with Sandbox() as box:
        marks = marker_dir(box)
        job = box.script("job.sh", f'sleep 1.5\ntouch "{marks}/$DETACH_JOB_ID"\n')
        d = box.detachd({"/job": {"command": job}}, {"max_jobs": 1, "queue": 1})
        responses = [fcgi_request(box.socket, "/job") for _ in range(6)]
        statuses = [r.status for r in responses]
        assert statuses.count(200) == 2 and statuses.count(503) == 4, statuses
        for response in responses:
            assert response.ended
            if response.status == 503:
                assert response.header("Retry-After") == "1", response.head()
                assert response.header("X-Detach-Job") is None, response.head()
        acked = {assert_acked(r) for r in responses if r.status == 200}
        assert len(d.wait_events("rejected", 4, reason="queue_full")) == 4
        wait_for(lambda: len(d.events("ended")) == 2, 15, "both acked jobs to end")
        assert markers(marks) == acked
        assert d.stop() == 0


def test_a_refused_trigger_builds_no_job():
    """A trigger refused for a full queue is refused before a job is built
    for it, so it draws no job number: the next job's id follows the last
    admitted one's.  (Built only to be refused, such jobs took job memory,
    and under overload, 503s between the admitted jobs, each queued job
    sat alone in a 64-KiB chunk.)  Without a spool the watcher answers,
    with one a worker."""
    for spool in (False, True):
        with Sandbox() as box:
            marks = marker_dir(box)
            gate = box.path("gate")
            job = box.script("job.sh", f'while [ ! -e "{gate}" ]; do sleep 0.05; done\n'
                                       f'touch "{marks}/$DETACH_JOB_ID"\n')
            options = {"max_jobs": 1, "queue": 1}
            if spool:
                options["spool"] = box.path("spool")
            d = box.detachd({"/job": {"command": job}}, options)
            first = assert_acked(fcgi_request(box.socket, "/job"))
            second = assert_acked(fcgi_request(box.socket, "/job"))
            for _ in range(4):
                assert fcgi_request(box.socket, "/job").status == 503
            assert len(d.wait_events("rejected", 4, reason="queue_full")) == 4
            open(gate, "w").close()
            wait_for(lambda: len(d.events("ended")) == 2, 15, "both acked jobs to end")
            third = assert_acked(fcgi_request(box.socket, "/job"))
            numbers = [int(job_id[8:], 16) for job_id in (first, second, third)]
            assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2], (spool, first, second, third)
            wait_for(lambda: len(d.events("ended")) == 3, 15, "the third job to end")
            assert markers(marks) == {first, second, third}
            assert d.stop() == 0


def test_burst_every_acked_job_runs():
    with Sandbox() as box:
        marks = marker_dir(box)
        job = box.script("job.sh", f'sleep 0.2\ntouch "{marks}/$DETACH_JOB_ID"\n')
        d = box.detachd({"/job": {"command": job}}, {"max_jobs": 2, "queue": 10})
        results, errors = [], []
        lock = threading.Lock()

        def fire(count):
            try:
                for _ in range(count):
                    response = fcgi_request(box.socket, "/job", timeout=10)
                    with lock:
                        results.append(response)
            except Exception as error:   # reported below
                errors.append(error)

        threads = [threading.Thread(target=fire, args=(5,)) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        assert len(results) == 50
        statuses = [r.status for r in results]
        assert set(statuses) <= {200, 503}, statuses
        acked = {assert_acked(r) for r in results if r.status == 200}
        assert len(acked) == statuses.count(200)
        # At least what fits at once: 2 running + 10 waiting.
        assert len(acked) >= 12, statuses
        for r in results:
            if r.status == 503:
                assert r.header("Retry-After") == "1", r.head()
        wait_for(lambda: len(d.events("ended")) >= len(acked), 5 + len(acked) * 0.3,
                 "every acked job to end")
        assert markers(marks) == acked
        assert len(d.events("ended")) == len(acked)
        assert len(d.events("rejected", reason="queue_full")) == statuses.count(503)
        assert d.stop() == 0


# ---- connections ----

def test_keep_alive_requests_share_one_connection():
    with Sandbox() as box:
        marks = marker_dir(box)
        job = box.script("job.sh", f'touch "{marks}/$DETACH_JOB_ID"\n')
        d = box.detachd({"/job": {"command": job}})
        connection = Connection(box.socket)
        try:
            first = assert_acked(connection.request(cgi_params("/job"), keep_conn=True))
            missing = connection.request(cgi_params("/nope"), keep_conn=True, request_id=2)
            assert missing.ended and missing.status == 404, missing.stdout
            second = assert_acked(connection.request(cgi_params("/job"), keep_conn=True))
            assert first != second
            assert not connection.is_closed_by_peer(0.3), "a kept-alive connection was closed"
        finally:
            connection.close()

        connection = Connection(box.socket)
        try:
            third = assert_acked(connection.request(cgi_params("/job")))
            assert connection.is_closed_by_peer(3.0), "not closed without FCGI_KEEP_CONN"
        finally:
            connection.close()
        wait_for(lambda: markers(marks) == {first, second, third}, 10, "the three jobs")
        assert d.stop() == 0


def test_malformed_input_drops_only_that_connection():
    with Sandbox() as box:
        marks = marker_dir(box)
        job = box.script("job.sh", f'touch "{marks}/$DETACH_JOB_ID"\n')
        d = box.detachd({"/job": {"command": job}})
        kept = Connection(box.socket)
        acked = {assert_acked(kept.request(cgi_params("/job"), keep_conn=True))}
        garbage = [
            record(BEGIN_REQUEST, 1, struct.pack(">HB5x", 1, 1), version=9),   # bad version
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",                    # not FastCGI
            record(BEGIN_REQUEST, 1, struct.pack(">HB5x", 1, 1)) +           # good, then bad
            record(PARAMS, 1, b"\x04\x01PATH/", version=0) + b"\xff" * 64,
            bytes(range(256)) * 4,
        ]
        bad = []
        for data in garbage:
            connection = Connection(box.socket)
            bad.append(connection)
            connection.send(data)
        try:
            for i, connection in enumerate(bad):
                # An END_REQUEST before the close is fine; the close is what counts.
                assert closed_by_peer(connection, 5.0), f"garbage #{i} left the connection open"
            # The kept-alive connection and new connections still work.
            acked.add(assert_acked(kept.request(cgi_params("/job"), keep_conn=True)))
            acked.add(assert_acked(fcgi_request(box.socket, "/job")))
        finally:
            for connection in bad + [kept]:
                connection.close()
        assert d.alive()
        wait_for(lambda: markers(marks) == acked, 10, "every acked job")
        assert len(d.wait_events("accepted", len(acked))) == len(acked), \
            "garbage was taken for a request"
        assert d.stop() == 0


def test_more_than_1024_descriptors():
    wanted = 4096
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard >= wanted, f"RLIMIT_NOFILE hard limit {hard}"
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    def raise_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))

    with Sandbox() as box:
        marks = marker_dir(box)
        job = box.script("job.sh", f'touch "{marks}/$DETACH_JOB_ID"\n')
        d = box.detachd({"/job": {"command": job}}, preexec_fn=raise_limit)
        fd_dir = f"/proc/{d.pid}/fd"
        idle = []
        try:
            for _ in range(1100):
                idle.append(Connection(box.socket))
            # Wait until detachd holds them all (at least one descriptor
            # each, and no more arriving), so the next one lands above 1024.
            counts = []

            def settled():
                counts.append(len(os.listdir(fd_dir)))
                return counts[-1] > 1100 and counts[-3:] == [counts[-1]] * 3

            wait_for(settled, 20, "detachd to accept 1100 connections")
            assert max(int(fd) for fd in os.listdir(fd_dir)) > 1024
            job_id = assert_acked(fcgi_request(box.socket, "/job", timeout=10))
            wait_for(lambda: job_id in markers(marks), 10, "the job to run")
            assert d.alive()
        finally:
            for connection in idle:
                connection.close()
        wait_for(lambda: len(os.listdir(fd_dir)) < 100, 10,
                 "detachd to close the 1100 connections")
        assert d.stop() == 0


# ---- SIGTERM ----

def test_sigterm_drains_running_job():
    with Sandbox() as box:
        done, after = box.path("done"), box.path("on_shutdown.env")
        job = box.script("job.sh", f'sleep 1\ntouch "{done}"\n')
        on_shutdown = env_dump_script(box, "on_shutdown.sh", after)
        d = box.detachd({"/job": {"command": job, "on_shutdown": on_shutdown}})
        job_id = assert_acked(fcgi_request(box.socket, "/job"))
        d.wait_event("started", job=job_id)
        stopping = time.monotonic()
        assert d.stop(signal.SIGTERM, 15) == 0
        assert time.monotonic() - stopping < 10
        assert os.path.exists(done), "the running job did not finish"
        env = read_env(after)
        assert env.get("DETACH_EXIT_CODE") == "0", env
        ended = d.events("ended", job=job_id)
        assert ended and ended[0].get("exit_code") == "0", d.text()
        assert log_index(d, "ended", job=job_id) < log_index(d, "stopped")
        assert not d.events("stopping", job=job_id)


def test_sigterm_drain_timeout_stops_job_and_runs_on_shutdown():
    with Sandbox() as box:
        termed, after = box.path("termed"), box.path("on_shutdown.env")
        job = box.script("job.sh", f'''
trap 'touch "{termed}"; exit 7' TERM
while :; do sleep 0.1; done
''')
        on_shutdown = env_dump_script(box, "on_shutdown.sh", after)
        d = box.detachd({"/job": {"command": job, "on_shutdown": on_shutdown}},
                        {"drain_timeout": 1})
        job_id = assert_acked(fcgi_request(box.socket, "/job"))
        d.wait_event("started", job=job_id)
        stopping = time.monotonic()
        assert d.stop(signal.SIGTERM, 20) == 0
        assert time.monotonic() - stopping < 8
        assert os.path.exists(termed), "the job never got SIGTERM"
        env = read_env(after)
        assert env.get("DETACH_EXIT_CODE") == "7", env
        assert log_index(d, "stopping", job=job_id, reason="server_stopping") >= 0
        assert log_index(d, "on_shutdown_done", job=job_id) < log_index(d, "stopped")


# ---- listening ----

def test_listen_on_tcp_loopback():
    with Sandbox() as box:
        marks = marker_dir(box)
        job = box.script("job.sh", f'touch "{marks}/$DETACH_JOB_ID"\n')
        port = free_port()
        d = box.detachd({"/job": {"command": job}}, {"listen": f"127.0.0.1:{port}"},
                        wait_address=("127.0.0.1", port))
        job_id = assert_acked(fcgi_request(("127.0.0.1", port), "/job"))
        wait_for(lambda: job_id in markers(marks), 10, "the job to run")
        assert not os.path.exists(box.socket)
        assert d.stop() == 0


def test_inherited_listening_socket_on_fd_0():
    with Sandbox() as box:
        marks = marker_dir(box)
        job = box.script("job.sh", f'touch "{marks}/$DETACH_JOB_ID"\n')
        config = box.path("inherited.conf")
        with open(config, "w") as f:   # no listen key: fd 0
            f.write(f"[detachd]\nlog_dir = {box.logs}\n\n[route /job]\ncommand = {job}\n")
        address = box.path("spawn-fcgi.sock")
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listening.bind(address)
            listening.listen(16)
            d = Detachd(box, config, stdin=listening.fileno(), wait_address=address)
        finally:
            listening.close()   # detachd holds it now
        job_id = assert_acked(fcgi_request(address, "/job"))
        wait_for(lambda: job_id in markers(marks), 10, "the job to run")
        assert d.alive()
        assert d.stop() == 0


run(globals())
