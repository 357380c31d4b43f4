"""Apache 2.4 (mod_proxy_fcgi) in front of detachd, with the shipped
nginx-conf/apache-detach.conf.

A private apache2 (-DFOREGROUND, mpm_event, a generated main config that
loads only the modules needed, pid file, runtime dir, mutexes and logs in
the sandbox, Listen 127.0.0.1:<free port>) includes apache-detach.conf
with only the socket path and the port replaced.
"""

import os
import re
import socket
import subprocess
import time
import urllib.request

import harness
import frontends as fe


def start(box, routes, daemon=None):
    settings = fe.open_to_workers(box)
    settings.update(daemon or {})
    detachd = box.detachd(routes, settings)
    port = harness.free_port()
    apache = fe.Apache(box, fe.apache_site(port, socket_path=box.socket), port)
    return detachd, apache, port


def env_job(box, seconds="0"):
    out = box.path("out")
    os.makedirs(out, exist_ok=True)
    return box.script("job.sh", f"""
sleep {seconds}
cat > "{out}/$DETACH_JOB_ID.stdin.tmp" && mv "{out}/$DETACH_JOB_ID.stdin.tmp" "{out}/$DETACH_JOB_ID.stdin"
env > "{out}/$DETACH_JOB_ID.env.tmp" && mv "{out}/$DETACH_JOB_ID.env.tmp" "{out}/$DETACH_JOB_ID.env"
"""), out


def test_trigger_over_http():
    with harness.Sandbox() as box:
        job, out = env_job(box, seconds="0.3")
        detachd, apache, port = start(box, {"/jobs/*": {"command": job}})
        started = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/jobs/report?month=11", timeout=10) as r:
            status, headers, body = r.status, r.headers, r.read()
        elapsed = time.monotonic() - started
        assert status == 200, status
        assert body == b"", body
        assert headers.get("Content-Length") == "0", dict(headers)
        job_id = headers.get("X-Detach-Job")
        assert job_id, dict(headers)
        assert elapsed < 0.3, f"the 200 took {elapsed:.3f}s: it waited for the job"
        ended = detachd.wait_event("ended", job=job_id)
        assert ended["exit_code"] == "0" and ended["connection_status"] == "0", ended
        env = fe.env_file(os.path.join(out, job_id + ".env"))
        # Apache sends no DOCUMENT_URI: detachd routes on SCRIPT_NAME (+ PATH_INFO).
        assert env["SCRIPT_NAME"] + env.get("PATH_INFO", "") == "/jobs/report", env
        assert env["QUERY_STRING"] == "month=11", env
        assert env["DETACH_ROUTE"] == "/jobs/*", env


def test_fire_and_forget():
    """The client writes the request and closes at once: every job runs to its end."""
    with harness.Sandbox() as box:
        job, out = env_job(box, seconds="1")
        detachd, apache, port = start(box, {"/jobs/*": {"command": job}})
        count = 10
        for i in range(count):
            fe.fire_and_forget(port, f"/jobs/forget?i={i}")
        harness.wait_for(lambda: len(detachd.events("accepted")) >= count, 10,
                         f"{count} triggers accepted")
        ids = fe.accepted_ids(detachd)
        assert len(ids) == count, ids
        for job_id, event in fe.wait_ended([detachd], ids).items():
            assert event["exit_code"] == "0", event
            assert int(event["elapsed_ms"]) >= 1000, event
            fe.env_file(os.path.join(out, job_id + ".env"))
        queries = sorted(fe.env_file(os.path.join(out, i + ".env"))["QUERY_STRING"] for i in ids)
        assert queries == sorted(f"i={i}" for i in range(count)), queries


def test_fire_and_forget_post():
    """The same with a form body, the PHP triggerRequest() way."""
    with harness.Sandbox() as box:
        job, out = env_job(box, seconds="0.5")
        detachd, apache, port = start(box, {"/jobs/*": {"command": job}})
        fe.fire_and_forget(port, "/jobs/post", method="POST", body=b"a=1&b=two")
        job_id = detachd.wait_event("accepted")["job"]
        assert detachd.wait_event("ended", job=job_id)["exit_code"] == "0"
        assert fe.read_file(os.path.join(out, job_id + ".stdin")) == "a=1&b=two"


def test_detach_trigger_client():
    with harness.Sandbox() as box:
        job, out = env_job(box)
        detachd, apache, port = start(box, {"/jobs/mail": {"command": job}})
        result = subprocess.run([fe.trigger_binary(), "-d", "to=ops", "-b", "session=abc",
                                 f"http://127.0.0.1:{port}/jobs/mail?x=1"],
                                capture_output=True, text=True, timeout=20)
        assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
        job_id = result.stdout.strip()
        assert re.fullmatch(r"[0-9a-f]+", job_id), result.stdout
        assert detachd.wait_event("ended", job=job_id)["exit_code"] == "0"
        env = fe.env_file(os.path.join(out, job_id + ".env"))
        assert env["REQUEST_METHOD"] == "POST" and env["QUERY_STRING"] == "x=1", env
        assert "session=abc" in env.get("HTTP_COOKIE", ""), env
        assert fe.read_file(os.path.join(out, job_id + ".stdin")) == "to=ops"

        result = subprocess.run([fe.trigger_binary(), f"http://127.0.0.1:{port}/jobs/unknown"],
                                capture_output=True, text=True, timeout=20)
        assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
        detachd.wait_event("rejected", reason="no_route")


def count_backend_connections(box, detachd_port, requests, reuse):
    with fe.CountingProxy(("127.0.0.1", detachd_port)) as proxy:
        port = harness.free_port()
        site = fe.apache_site(port, backend=f"fcgi://127.0.0.1:{proxy.port}")
        if not reuse:
            site = site.replace(" enablereuse=on", "")
        apache = fe.Apache(box, site, port, name="apache-reuse" if reuse else "apache-noreuse")
        ids = []
        for i in range(requests):
            response = fe.http_request(port, f"/jobs/count?i={i}")
            assert response.status == 200, (response.status, apache.error_log()[-2000:])
            ids.append(response.header("X-Detach-Job"))
        apache.stop()
        return proxy.accepted, ids


def test_enablereuse_reuses_fastcgi_connections():
    """enablereuse=on: Apache keeps FastCGI connections to detachd; without
    it, one connection per request."""
    with harness.Sandbox() as box:
        job = box.script("job.sh", "exit 0\n")
        dport = harness.free_port()
        detachd = box.detachd({"/jobs/*": {"command": job}}, {"listen": f"127.0.0.1:{dport}"},
                              wait_address=("127.0.0.1", dport))
        requests = 100
        reused, ids = count_backend_connections(box, dport, requests, reuse=True)
        assert reused <= 8, f"{reused} FastCGI connections for {requests} triggers with enablereuse"
        plain, _ = count_backend_connections(box, dport, 20, reuse=False)
        assert plain == 20, f"without enablereuse: {plain} connections for 20 triggers"
        fe.wait_ended([detachd], ids)


def test_attached_client_leaves_job_stopped():
    """flushpackets=on streams the job's output; when the client has left,
    Apache's next write fails and it closes the FastCGI connection: detachd
    marks ABORTED and stops the job (ignore_user_abort off)."""
    with harness.Sandbox() as box:
        out = box.path("out")
        os.mkdir(out)
        job = box.script("attached.sh", """
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo started
i=0
while [ $i -lt 50 ]; do sleep 0.1; echo "tick $i"; i=$((i + 1)); done
""")
        on_shutdown = box.script("on_shutdown.sh", f"""
env > "{out}/$DETACH_JOB_ID.shutdown.tmp" && mv "{out}/$DETACH_JOB_ID.shutdown.tmp" "{out}/$DETACH_JOB_ID.shutdown"
""")
        detachd, apache, port = start(box, {"/attached/*": {
            "command": job, "mode": "attached", "on_shutdown": on_shutdown}})
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /attached/export HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while b"started" not in data:
                chunk = s.recv(4096)
                assert chunk, data
                data += chunk
            assert data.startswith(b"HTTP/1.1 200"), data
        job_id = detachd.wait_event("accepted", route="/attached/*")["job"]
        ended = detachd.wait_event("ended", job=job_id, timeout=10)
        assert ended["connection_status"] == "1", ended
        assert ended.get("exit_signal") == "15", ended
        assert int(ended["elapsed_ms"]) < 4000, f"the job ran on after the abort: {ended}"
        shutdown = fe.env_file(os.path.join(out, job_id + ".shutdown"))
        assert shutdown["DETACH_CONNECTION_STATUS"] == "1", shutdown


def test_backend_restart_recovers_quickly():
    """While detachd is down Apache answers 503; once it is back (same
    socket), triggers go through again within seconds (retry=1 bounds the
    wait where Apache puts the backend in error state)."""
    with harness.Sandbox() as box:
        job = box.script("job.sh", "exit 0\n")
        detachd, apache, port = start(box, {"/jobs/*": {"command": job}})
        assert fe.http_request(port, "/jobs/a").status == 200
        config = box.path("detachd.conf")
        assert detachd.stop() == 0
        down = fe.http_request(port, "/jobs/b")
        assert down.status == 503, down.status
        restarted = harness.Detachd(box, config)
        harness.wait_for(lambda: fe.http_request(port, "/jobs/c").status == 200, 5,
                         "Apache to use the restarted detachd")
        restarted.wait_event("accepted")


harness.run(globals())
