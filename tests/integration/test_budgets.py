"""Budgets and start-up checks: a spool entry that is not a regular file,
--check-config against the real start, the byte budget of the queue, and
the descriptor budget under a low RLIMIT_NOFILE.  Real detachd on a unix
socket in a temp dir; every process is stopped by its PID."""

import json
import os
import resource
import select
import socket
import subprocess
import time

from harness import SANITIZED, Sandbox, binary, run, wait_for
from fcgi_client import Connection, cgi_params, fcgi_request


def ids_in(path):
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {line.split()[0] for line in f if line.strip()}


def run_detachd(*args, timeout=10, preexec_fn=None):
    return subprocess.run([binary("detachd"), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)


def nofile(limit):
    """A preexec_fn: soft and hard RLIMIT_NOFILE set to limit."""
    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    return apply


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def gated_job(box, gate, done):
    """A job that records its id, then waits (bounded) for the gate file."""
    return box.script("job.sh", f'''
echo "$DETACH_JOB_ID" >> {done}
i=0
while [ ! -e {gate} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
cat > /dev/null
''')


# ---- item 6: the spool ------------------------------------------------------

def test_fifo_and_symlink_in_spool_do_not_hang_start():
    with Sandbox() as box:
        spool, done = box.path("spool"), box.path("done")
        os.makedirs(spool)
        os.mkfifo(os.path.join(spool, "00000001f1f0f1f0.job"))
        os.symlink("/etc/passwd", os.path.join(spool, "00000002aaaabbbb.job"))
        job = box.script("job.sh", f'echo "$DETACH_JOB_ID" >> {done}\n')
        # Before the fix the FIFO's open() blocked for ever: detachd never
        # served, and the harness's wait for "serving" times out.
        daemon = box.detachd({"/job": {"command": job}}, {"spool": spool})
        fifo = daemon.wait_event("spool_corrupt", reason="fifo")
        assert "00000001f1f0f1f0.job" in fifo["file"], fifo
        link = daemon.wait_event("spool_corrupt", reason="symlink")
        assert "00000002aaaabbbb.job" in link["file"], link
        corrupt = os.path.join(spool, "corrupt")
        assert os.path.islink(os.path.join(corrupt, "00000002aaaabbbb.job"))
        assert not os.path.lexists(os.path.join(spool, "00000001f1f0f1f0.job"))
        response = fcgi_request(box.socket, "/job")
        assert response.status == 200, response.stdout
        job_id = response.header("X-Detach-Job")
        daemon.wait_event("ended", job=job_id, result="ok")
        assert job_id in ids_in(done)
        assert daemon.stop() == 0


# ---- item 8: --check-config and the start agree -----------------------------

def test_check_config_refuses_what_the_start_refuses():
    with Sandbox() as box:
        sock = box.socket
        not_a_dir = box.path("plain-file")
        with open(not_a_dir, "w") as f:
            f.write("")
        head = f"[detachd]\nlisten = unix:{sock}\n"
        route = "\n[route /a]\ncommand = /bin/true\n"
        cases = [
            # (config text, line of the error, a word of the message)
            (head + "workers = 2\n", 3, "no [route PATH] section"),
            (head + f"spool = {not_a_dir}\n" + route, 3, "is not a directory"),
            (head + f"spool = {box.path('missing/deeper')}\n" + route, 3,
             "does not exist and cannot be made"),
            (head + "status_path = /a\n" + route, 3, "hides [route /a]"),
            (head + "status_path = /s\n" + route + "\n[route /s/jobs/*]\ncommand = /bin/true\n",
             3, "hides [route /s/jobs/*]"),
        ]
        for i, (text, line, word) in enumerate(cases):
            path = box.path(f"bad-{i}.conf")
            with open(path, "w") as f:
                f.write(text)
            checked = run_detachd("--config", path, "--check-config")
            started = run_detachd("--config", path)
            for result in (checked, started):
                assert result.returncode == 2, (text, result)
                assert result.stderr.startswith(f"{path}:{line}: "), (text, result.stderr)
                assert word in result.stderr, (text, result.stderr)
            assert checked.stderr == started.stderr, (checked.stderr, started.stderr)
            assert not os.path.exists(sock), "detachd listened on a config it refuses"

        # The spool given by the flag: the message names the flag.
        good = box.path("good.conf")
        with open(good, "w") as f:
            f.write(head + route)
        checked = run_detachd("--config", good, "--spool", not_a_dir, "--check-config")
        started = run_detachd("--config", good, "--spool", not_a_dir)
        for result in (checked, started):
            assert result.returncode == 2, result
            assert result.stderr.startswith(f'detachd: --spool "{not_a_dir}" '), result.stderr
        assert checked.stderr == started.stderr

        # A status page inside a prefix route is allowed, with a warning.
        inside = box.path("inside.conf")
        with open(inside, "w") as f:
            f.write(head + "status_path = /x/status\n\n[route /x/*]\ncommand = /bin/true\n")
        checked = run_detachd("--config", inside, "--check-config")
        assert checked.returncode == 0, checked
        assert f"{inside}:3: " in checked.stderr and "(warning)" in checked.stderr, checked.stderr


# ---- item 10: the queue's byte budget ---------------------------------------

def test_queue_bytes_refuses_with_503_and_every_acknowledged_job_runs():
    with Sandbox() as box:
        gate, done = box.path("gate"), box.path("done")
        job = gated_job(box, gate, done)
        config = {"max_jobs": 1, "queue": 100, "queue_bytes": "3M", "max_body": "2M",
                  "status_path": "/detach-status"}
        daemon = box.detachd({"/job": {"command": job}}, config)
        first = fcgi_request(box.socket, "/job")
        assert first.status == 200
        running = first.header("X-Detach-Job")
        daemon.wait_event("started", job=running)
        before = rss_kb(daemon.pid)

        body = b"x" * 1000000
        statuses, acknowledged = [], [running]
        for _ in range(60):
            response = fcgi_request(box.socket, "/job", method="POST", body=body)
            statuses.append(response.status)
            if response.status == 200:
                acknowledged.append(response.header("X-Detach-Job"))
            else:
                assert response.status == 503, response.stdout
                assert response.header("Retry-After") == "1", response.head()
        # Three bodies of 1,000,000 bytes (and their params) fit 3 MiB; a
        # fourth would not: 200, 200, 200, then 503 only.
        assert statuses[:3] == [200, 200, 200], statuses
        assert set(statuses[3:]) == {503}, statuses
        grown = rss_kb(daemon.pid) - before
        # 60 MB were sent; without the budget all of it was queued.
        if not SANITIZED:   # ASan's quarantine keeps freed buffers
            assert grown < 24 * 1024, f"RSS grew {grown} KiB"
        refusals = daemon.wait_events("rejected", 57, reason="queue_bytes")
        assert len(refusals) == 57, refusals
        counters = json.loads(fcgi_request(box.socket, "/detach-status",
                                           extra={"REMOTE_ADDR": "127.0.0.1"}).body)
        assert counters["rejected"] == 57, counters

        with open(gate, "w"):
            pass
        for job_id in acknowledged:
            daemon.wait_event("ended", 20, job=job_id, result="ok")
        assert set(acknowledged) <= ids_in(done)
        # The budget is free again once they ran.
        again = fcgi_request(box.socket, "/job", method="POST", body=body)
        assert again.status == 200, again.stdout
        daemon.wait_event("ended", 20, job=again.header("X-Detach-Job"))
        assert daemon.stop() == 0


# ---- item 11: the descriptor budget -----------------------------------------

def closed_by_peer(batch, quiet=0.3):
    """The connections of batch detachd closed: collected until none more
    closes for `quiet` seconds (a close reaches us a moment after the
    accept), each confirmed by EOF."""
    closed, pending = [], list(batch)
    while pending:
        readable, _, _ = select.select([c.sock for c in pending], [], [], quiet)
        if not readable:
            break
        for connection in [c for c in pending if c.sock in readable]:
            pending.remove(connection)
            if connection.is_closed_by_peer(0.5):
                closed.append(connection)
    return closed


def open_until_refused(address, attempts):
    """Opens idle connections in batches until detachd closes some at
    once; returns (held, refused)."""
    held, refused = [], 0
    while len(held) + refused < attempts and not refused:
        batch = [Connection(address, timeout=5) for _ in range(8)]
        closed = closed_by_peer(batch)
        for connection in batch:
            if connection in closed:
                connection.close()
                refused += 1
            else:
                held.append(connection)
    return held, refused


def test_idle_connections_cannot_starve_job_starts():
    with Sandbox() as box:
        done = box.path("done")
        job = box.script("job.sh", f'echo "$DETACH_JOB_ID" >> {done}\ncat > /dev/null\n')
        daemon = box.detachd({"/job": {"command": job}},
                             {"max_jobs": 4, "workers": 2, "queue": 100},
                             preexec_fn=nofile(128))
        budget = daemon.wait_event("descriptors")
        assert budget["limit"] == "128", budget
        cap = int(budget["max_connections"])
        # Before the fix nothing refused: the client held every descriptor
        # and the jobs acknowledged on those connections never ran.
        held, refused = open_until_refused(box.socket, 300)
        try:
            assert refused >= 1, f"no connection refused after {len(held)}"
            assert len(held) <= cap, (len(held), cap)
            daemon.wait_event("connections_capped")
            acknowledged = []
            for connection in held[:20]:
                response = connection.request(cgi_params("/job"))
                assert response.status == 200, response.stdout
                acknowledged.append(response.header("X-Detach-Job"))
            for job_id in acknowledged:
                daemon.wait_event("ended", 20, job=job_id, result="ok")
            assert set(acknowledged) <= ids_in(done), "an acknowledged job never ran"
        finally:
            for connection in held:
                connection.close()
        assert len(daemon.events("connections_capped")) == 1
        # Once the client let go, new connections are served again.
        wait_for(lambda: fcgi_request(box.socket, "/job").status == 200, 10,
                 "a trigger after the idle connections closed")
        assert daemon.stop() == 0


def test_short_descriptor_limit_warns_and_no_acknowledged_job_vanishes():
    with Sandbox() as box:
        done = box.path("done")
        job = box.script("job.sh", f'sleep 0.3\necho "$DETACH_JOB_ID" >> {done}\n')
        config = {"max_jobs": 32, "workers": 2, "queue": 400}
        path = box.config({"/job": {"command": job}}, config)
        # 32 jobs x 10 descriptors do not fit 96: --check-config says so,
        # with the figures, and still accepts the file.
        checked = run_detachd("--config", path, "--check-config", preexec_fn=nofile(96))
        assert checked.returncode == 0, checked
        assert f"{path}:" in checked.stderr and "max_jobs = 32 needs" in checked.stderr, checked
        assert "limit=96" in checked.stderr, checked.stderr
        # Nothing fits 40: refused, as the start refuses it.
        for args in (("--check-config",), ()):
            refused = run_detachd("--config", path, *args, preexec_fn=nofile(40))
            assert refused.returncode == 2, refused
            assert "max_jobs = 32 cannot be served" in refused.stderr, refused.stderr

        daemon = box.detachd({"/job": {"command": job}}, config, preexec_fn=nofile(96))
        budget = daemon.wait_event("descriptors")
        assert budget["level"] == "error" and budget["limit"] == "96", budget
        assert int(budget["needed"]) > 96, budget
        at_once = int(budget["jobs_at_once"])
        assert 1 <= at_once < 32, budget

        acknowledged, other = [], 0
        for _ in range(150):
            try:
                response = fcgi_request(box.socket, "/job", timeout=5)
            except OSError:
                other += 1
                continue
            if response.status == 200:
                acknowledged.append(response.header("X-Detach-Job"))
            else:
                other += 1
        assert len(acknowledged) >= 50, (len(acknowledged), other)
        for job_id in acknowledged:
            ended = daemon.wait_event("ended", 60, job=job_id)
            assert ended["result"] in ("ok", "failed"), ended
        ended_ids = [e["job"] for e in daemon.events("ended")]
        assert sorted(ended_ids) == sorted(set(ended_ids)), "a job ended twice"
        # The jobs past what the descriptors allow waited their turn: none
        # started without descriptors, every one ran.
        assert not daemon.events("script"), daemon.events("script")[:3]
        assert set(acknowledged) <= ids_in(done)
        assert daemon.alive()
        assert daemon.stop() == 0


if __name__ == "__main__":
    run(globals())
