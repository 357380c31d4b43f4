"""libdetach through real FastCGI: job_app (job_app.c) serves on a unix
socket, each handler reports what it saw in marker files, and these tests
compare that with what the client did and when.

Times in markers are CLOCK_MONOTONIC seconds, the clock of time.monotonic(),
so a job's "I saw the stop at T" can be compared with "the client closed at T0".
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Sandbox, binary, connectable, parse_logfmt, run, wait_for  # noqa: E402
from fcgi_client import (END_REQUEST, STDOUT, Connection, Response, cgi_params,  # noqa: E402
                         fcgi_request, request_bytes)


class JobApp:
    """job_app in a sandbox: its socket, its marker dir, its log."""

    def __init__(self, box):
        self.box = box
        self.socket = box.path("job_app.sock")
        self.markers = box.path("markers")
        os.mkdir(self.markers)
        self.process = box.start([binary("job_app"), self.socket, self.markers], "job_app")
        wait_for(lambda: connectable(self.socket) or not self.process.alive(), 15,
                 "job_app to listen")
        assert self.process.alive(), "job_app exited at start:\n" + self.process.text()

    def marker_path(self, tag, name):
        return os.path.join(self.markers, f"{tag}.{name}")

    def has_marker(self, tag, name):
        return os.path.exists(self.marker_path(tag, name))

    def marker(self, tag, name, timeout=10.0):
        """The marker's key=value lines as a dict, once it exists."""
        path = self.marker_path(tag, name)
        wait_for(lambda: os.path.exists(path), timeout, f"marker {tag}.{name}")
        with open(path) as f:
            return dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)

    def lines(self, tag, name):
        with open(self.marker_path(tag, name)) as f:
            return f.read().splitlines()

    def events(self, event, **fields):
        found = []
        for line in self.process.text().splitlines():
            entry = parse_logfmt(line)
            if entry.get("event") == event and all(entry.get(k) == str(v)
                                                   for k, v in fields.items()):
                found.append(entry)
        return found

    def wait_event(self, event, timeout=10.0, **fields):
        return wait_for(lambda: self.events(event, **fields), timeout,
                        f"event={event} {fields} in the job_app log")[0]

    def request(self, path, query=""):
        return fcgi_request(self.socket, path, query=query)

    def send(self, path, query=""):
        """Sends a whole request and returns the open connection, unread."""
        connection = Connection(self.socket)
        connection.send(request_bytes(cgi_params(path, query=query)))
        return connection

    def stop(self):
        """SIGTERM: the app must stop cleanly, with exit status 0."""
        status = self.process.stop(signal.SIGTERM, 20)
        text = self.process.text()
        assert "Sanitizer" not in text and "runtime error:" not in text, \
            "sanitizer report in the job_app log:\n" + text[-4000:]
        assert status == 0, f"job_app exited {status} on SIGTERM:\n{text[-2000:]}"


def test_trigger_shutdown_callbacks_run_once_in_order():
    with Sandbox() as box:
        app = JobApp(box)
        response = app.request("/trigger", "tag=t1")
        assert response.ended and response.status == 200, response.stdout
        assert response.header("Content-Length") == "0"
        job_id = response.header("X-Detach-Job")
        assert job_id, response.head()
        assert response.body == b""
        app.marker("t1", "done")
        # The job fully ended: no callback can still be pending or run again.
        app.wait_event("ended", job=job_id)
        assert app.lines("t1", "order") == [
            "first status=0 register=0",   # "first" registers "third" while shutting down
            "second status=0",
            "third status=0",              # ...which runs too, last, exactly once
        ]
        ran = app.marker("t1", "ran")
        assert ran["ignore_user_abort"] == "1", ran   # a trigger route's default
        assert ran["status"] == "0" and ran["mode"] == "0" and ran["route"] == "/trigger", ran
        app.stop()


def test_shutdown_callbacks_see_the_final_status_after_a_timeout():
    with Sandbox() as box:
        app = JobApp(box)
        response = app.request("/trigger", "tag=t2&timeout=1")
        assert response.status == 200
        app.marker("t2", "done", timeout=10)
        ran = app.marker("t2", "ran")
        assert ran["should_stop"] == "1" and ran["status"] == "2", ran
        assert app.lines("t2", "order") == [
            "first status=2 register=0", "second status=2", "third status=2"]
        app.stop()


def test_attached_disconnect_noticed_within_100ms_while_writing_nothing():
    # The contract: ABORTED is detected actively within 100 ms, even while
    # the job writes nothing.  The job polls detach_should_stop() every
    # 1 ms and records when it first saw it; we record when we closed.  The
    # bound is 100 ms plus a margin for scheduling two processes (and a
    # sanitized build) on a busy machine: 250 ms.  A server that only
    # noticed on the next write would never stop this job (it writes
    # nothing for 30 s), so the test would fail on the marker's deadline.
    with Sandbox() as box:
        app = JobApp(box)
        for i in range(3):
            tag = f"w{i}"
            connection = app.send("/attached-wait", f"tag={tag}")
            app.marker(tag, "started")
            closed_at = time.monotonic()
            connection.close()
            stopped = app.marker(tag, "stopped", timeout=5)
            delay = float(stopped["seen"]) - closed_at
            assert stopped["status"] == "1" and stopped["should_stop"] == "1", stopped
            assert delay < 0.25, f"the disconnect was seen {delay * 1000:.0f} ms after it"
            assert delay > -0.01, f"stop seen before the client left ({delay:.3f} s)"
        app.stop()


def test_attached_ignore_user_abort_returns_previous_and_runs_on():
    with Sandbox() as box:
        app = JobApp(box)
        connection = app.send("/attached-ignore", "tag=i1")
        app.marker("i1", "started")
        connection.close()
        final = app.marker("i1", "final", timeout=10)
        ran = app.marker("i1", "ran")
        assert ran["previous"] == "0", ran        # off by default on an attached route
        assert ran["queried"] == "1", ran         # -1 only queries: now on
        assert ran["aborted_seen"] == "1", ran    # ABORTED recorded...
        assert ran["should_stop_seen"] == "0", ran   # ...but the job goes on
        assert float(ran["elapsed"]) >= 1.0, ran
        assert ran["write_rc"] == "-1", ran       # writing to a gone client fails
        assert final["status"] == "1", final
        app.stop()


def test_finish_request_ends_the_response_early():
    with Sandbox() as box:
        app = JobApp(box)
        connection = Connection(app.socket)
        try:
            response = connection.request(cgi_params("/finish-early", query="tag=f1"))
            answered_at = time.monotonic()
            late_yet = app.has_marker("f1", "late")
        finally:
            connection.close()
        assert response.ended and response.status == 200, response.stdout
        assert response.body == b"early", response.stdout
        assert not late_yet, "the response came only after the job's work"
        late = app.marker("f1", "late", timeout=10)
        assert float(late["late"]) - answered_at > 0.5, (late, answered_at)
        assert late["write_rc"] == "0" and late["finish_rc"] == "0", late
        assert late["after_rc"] == "-1" and late["after_enotconn"] == "1", late
        # Closing the connection after a finished response is no abort.
        assert late["status"] == "0", late
        app.stop()


def test_time_limit_set_again_restarts_the_clock():
    with Sandbox() as box:
        app = JobApp(box)
        response = app.request("/time-limit", "tag=tl")
        assert response.status == 200
        marker = app.marker("tl", "timeout", timeout=10)
        start, restarted, seen = (float(marker[k]) for k in ("start", "restarted", "seen"))
        assert marker["status_at_restart"] == "0", marker
        assert marker["status"] == "2" and marker["should_stop"] == "1", marker
        # The first limit would have run out at start + 1 s; restarted at
        # start + 0.6 s it runs out at about start + 1.6 s.
        assert seen - start > 1.4, f"TIMEOUT after {seen - start:.3f} s: the clock did not restart"
        assert seen - restarted >= 0.95, marker
        assert seen - restarted < 1.6, f"TIMEOUT {seen - restarted:.3f} s after the restart"
        app.stop()


def test_headers_and_streamed_output():
    with Sandbox() as box:
        app = JobApp(box)
        connection = app.send("/stream", "tag=s1")
        response = Response()
        arrivals = []   # (time, bytes so far)
        try:
            while True:
                kind, request_id, content = connection.read_record()
                if request_id != 1:
                    continue
                if kind == STDOUT and content:
                    response.stdout += content
                    arrivals.append((time.monotonic(), response.stdout))
                elif kind == END_REQUEST:
                    response.ended = True
                    break
        finally:
            connection.close()
        assert response.status == 202, response.stdout
        assert response.header("Content-Type") == "text/x-lines", response.head()
        assert response.header("X-Stream") == "yes", response.head()
        assert response.body == b"line 1\nline 2\nline 3\n", response.stdout
        marker = app.marker("s1", "stream")
        assert marker["headers"] == "0,0,0" and marker["writes"] == "3", marker
        assert marker["bad_header"] == "-1", marker           # not a "Name: value" line
        assert marker["late_header"] == "-1" and marker["late_ealready"] == "1", marker
        written = [float(t) for t in marker["written"].split(",")]
        first_line = next(t for t, seen in arrivals if b"line 1\n" in seen)
        # Streamed: line 1 reached us before the job even wrote line 3.
        assert first_line < written[2], (first_line, written)
        app.stop()


def test_sigterm_with_a_job_running_stops_cleanly():
    with Sandbox() as box:
        app = JobApp(box)
        connection = app.send("/attached-wait", "tag=st")
        try:
            app.marker("st", "started")
            started = time.monotonic()
            app.stop()   # exit 0, no sanitizer report
            assert time.monotonic() - started < 10
            stopped = app.marker("st", "stopped", timeout=1)
            assert stopped["should_stop"] == "1", stopped   # asked to stop, not left running
        finally:
            connection.close()


run(globals())
