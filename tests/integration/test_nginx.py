"""nginx in front of detachd, with the shipped nginx-conf/ files.

A private nginx (master + worker, config and logs in the sandbox, listening
on 127.0.0.1:<free port>) runs nginx-conf/detach.conf with only the socket
path and the listen port replaced; several-host tests swap in
nginx-conf/upstream-several-hosts.conf, and the systemd test runs detachd
the way nginx-conf/detachd.socket and detachd.service describe.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import harness
import frontends as fe


def start(box, routes, daemon=None, **site_options):
    """detachd on the sandbox socket and nginx on a free port in front of it."""
    settings = fe.open_to_workers(box)
    settings.update(daemon or {})
    detachd = box.detachd(routes, settings)
    port = harness.free_port()
    nginx = fe.Nginx(box, fe.nginx_site(port, socket_path=box.socket, **site_options), port)
    return detachd, nginx, port


def env_job(box, name="job.sh", seconds="0"):
    """A job that sleeps, then saves its environment and stdin under
    out/<job id>.env and .stdin (written whole: temp file, then mv)."""
    out = box.path("out")
    os.makedirs(out, exist_ok=True)
    return box.script(name, f"""
sleep {seconds}
cat > "{out}/$DETACH_JOB_ID.stdin.tmp" && mv "{out}/$DETACH_JOB_ID.stdin.tmp" "{out}/$DETACH_JOB_ID.stdin"
env > "{out}/$DETACH_JOB_ID.env.tmp" && mv "{out}/$DETACH_JOB_ID.env.tmp" "{out}/$DETACH_JOB_ID.env"
"""), out


def test_trigger_over_http():
    with harness.Sandbox() as box:
        job, out = env_job(box, seconds="0.3")
        detachd, nginx, port = start(box, {"/jobs/*": {"command": job}})
        started = time.monotonic()
        response = fe.http_request(port, "/jobs/report?month=11")
        elapsed = time.monotonic() - started
        assert response.status == 200, (response.status, response.body)
        assert response.body == b"", response.body
        assert response.header("Content-Length") == "0", dict(response.headers)
        job_id = response.header("X-Detach-Job")
        assert job_id, dict(response.headers)
        assert elapsed < 0.3, f"the 200 took {elapsed:.3f}s: it waited for the job"
        ended = detachd.wait_event("ended", job=job_id)
        assert ended["exit_code"] == "0" and ended["connection_status"] == "0", ended
        env = fe.env_file(os.path.join(out, job_id + ".env"))
        assert env["DOCUMENT_URI"] == "/jobs/report", env
        assert env["QUERY_STRING"] == "month=11", env
        assert env["DETACH_JOB_ID"] == job_id and env["DETACH_ROUTE"] == "/jobs/*", env
        assert env["REQUEST_METHOD"] == "GET", env


def test_fire_and_forget():
    """The client writes the request and closes at once, reading nothing:
    every job still runs to its end (fastcgi_ignore_client_abort on)."""
    with harness.Sandbox() as box:
        job, out = env_job(box, seconds="1")
        detachd, nginx, port = start(box, {"/jobs/*": {"command": job}})
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
            assert event["connection_status"] == "0", event
            fe.env_file(os.path.join(out, job_id + ".env"))   # ran to its last line
        queries = sorted(fe.env_file(os.path.join(out, i + ".env"))["QUERY_STRING"] for i in ids)
        assert queries == sorted(f"i={i}" for i in range(count)), queries


def test_fire_and_forget_needs_ignore_client_abort():
    """Why the setting is there: with fastcgi_ignore_client_abort off and a
    TCP upstream, nginx sees the client's close while it connects upstream,
    logs 499 and never sends the trigger.  The shipped "on" loses none."""
    with harness.Sandbox() as box:
        job = box.script("job.sh", "exit 0\n")
        dport = harness.free_port()
        detachd = box.detachd({"/jobs/*": {"command": job}}, {"listen": f"127.0.0.1:{dport}"},
                              wait_address=("127.0.0.1", dport))
        results = {}
        for setting in ("on", "off"):
            port = harness.free_port()
            site = fe.nginx_site(port, replacements=[
                (f"unix:{fe.SHIPPED_SOCKET}", f"127.0.0.1:{dport}"),
                ("fastcgi_ignore_client_abort on;", f"fastcgi_ignore_client_abort {setting};")])
            nginx = fe.Nginx(box, site, port, name=f"nginx-{setting}")
            before = len(detachd.events("accepted"))
            for i in range(20):
                fe.fire_and_forget(port, f"/jobs/{setting}?i={i}")
            harness.wait_for(lambda: nginx.access_log().count("\n") >= 20, 10, "20 requests logged")
            # Every trigger detachd answered (nginx logged its 200) was
            # logged "accepted" before the answer: wait for those, not a pause.
            answered = sum(1 for line in nginx.access_log().splitlines()
                           if f"/jobs/{setting}?" in line and "upstream_status=200" in line)
            harness.wait_for(lambda: len(detachd.events("accepted")) - before >= answered, 10,
                             f"{answered} answered triggers logged accepted")
            results[setting] = len(detachd.events("accepted")) - before
            nginx.stop()
        assert results["on"] == 20, results
        assert results["off"] < 20, f"expected nginx to drop triggers with the setting off: {results}"


def test_detach_trigger_client():
    """detach-trigger through nginx: -d makes a form POST, -b a cookie; it
    prints the job id; --no-wait returns once the request is sent; a status
    other than 2xx (detachd's 404) makes it exit 1."""
    with harness.Sandbox() as box:
        job, out = env_job(box)
        detachd, nginx, port = start(box, {"/jobs/mail": {"command": job},
                                           "/jobs/nowait": {"command": job}})
        url = f"http://127.0.0.1:{port}/jobs/mail?to=ops"
        result = subprocess.run([fe.trigger_binary(), "-d", "subject=monthly report",
                                 "-d", "n=3", "-b", "session=abc", url],
                                capture_output=True, text=True, timeout=20)
        assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
        job_id = result.stdout.strip()
        assert re.fullmatch(r"[0-9a-f]+", job_id), result.stdout
        ended = detachd.wait_event("ended", job=job_id)
        assert ended["exit_code"] == "0", ended
        env = fe.env_file(os.path.join(out, job_id + ".env"))
        assert env["REQUEST_METHOD"] == "POST", env
        assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded", env
        assert env["QUERY_STRING"] == "to=ops", env
        assert "session=abc" in env.get("HTTP_COOKIE", ""), env
        body = fe.read_file(os.path.join(out, job_id + ".stdin"))
        assert body in ("subject=monthly+report&n=3", "subject=monthly%20report&n=3"), body

        result = subprocess.run([fe.trigger_binary(), "--no-wait",
                                 f"http://127.0.0.1:{port}/jobs/nowait?x=1"],
                                capture_output=True, text=True, timeout=20)
        assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
        job_id = detachd.wait_event("accepted", route="/jobs/nowait")["job"]
        assert detachd.wait_event("ended", job=job_id)["exit_code"] == "0"

        result = subprocess.run([fe.trigger_binary(), f"http://127.0.0.1:{port}/jobs/unknown"],
                                capture_output=True, text=True, timeout=20)
        assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
        assert "404" in result.stdout + result.stderr, (result.stdout, result.stderr)
        detachd.wait_event("rejected", reason="no_route")   # the 404 came from detachd, not nginx


ATTACHED_JOB = """
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo started
i=0
while [ $i -lt 30 ]; do
    sleep 0.1
    echo "tick $i"
    i=$((i + 1))
done
echo done
"""

ON_SHUTDOWN = """
env > "{out}/$DETACH_JOB_ID.shutdown.tmp" && mv "{out}/$DETACH_JOB_ID.shutdown.tmp" "{out}/$DETACH_JOB_ID.shutdown"
"""


def leave_attached(port, path):
    """GET an attached route, read until the job's first line, then leave."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        while b"started" not in data:
            chunk = s.recv(4096)
            assert chunk, f"connection closed before the job's output: {data!r}"
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data
    return time.monotonic()


def attached_abort(ignore_user_abort):
    with harness.Sandbox() as box:
        out = box.path("out")
        os.mkdir(out)
        job = box.script("attached.sh", ATTACHED_JOB)
        on_shutdown = box.script("on_shutdown.sh", ON_SHUTDOWN.format(out=out))
        route = {"command": job, "mode": "attached", "on_shutdown": on_shutdown,
                 "ignore_user_abort": "on" if ignore_user_abort else "off"}
        detachd, nginx, port = start(box, {"/attached/*": route})
        left = leave_attached(port, "/attached/export")
        job_id = detachd.wait_event("accepted", route="/attached/*")["job"]
        aborted = detachd.wait_event("aborted", job=job_id, timeout=5)
        assert aborted["ignored"] == ("1" if ignore_user_abort else "0"), aborted
        ended = detachd.wait_event("ended", job=job_id, timeout=10)
        assert ended["connection_status"] == "1", ended
        shutdown = fe.env_file(os.path.join(out, job_id + ".shutdown"))
        assert shutdown["DETACH_CONNECTION_STATUS"] == "1", shutdown
        # nginx's side of the story: it noticed and closed the upstream.
        assert "so upstream connection is closed too" in nginx.error_log(), nginx.error_log()[-2000:]
        return ended, shutdown, time.monotonic() - left


def test_attached_client_leaves_job_stopped():
    """fastcgi_ignore_client_abort off on the attached location: the client
    leaves, nginx closes the upstream connection, detachd marks ABORTED and
    (ignore_user_abort off) stops the job with SIGTERM."""
    ended, shutdown, _ = attached_abort(ignore_user_abort=False)
    assert ended.get("exit_signal") == "15", ended
    assert int(ended["elapsed_ms"]) < 2500, f"the job ran on after the abort: {ended}"
    assert shutdown.get("DETACH_EXIT_SIGNAL") == "15", shutdown


def test_attached_client_leaves_job_ignores_abort():
    """Same, with ignore_user_abort on: ABORTED is recorded, the job runs to
    its end (exit 0) and on_shutdown sees connection status 1."""
    ended, shutdown, _ = attached_abort(ignore_user_abort=True)
    assert ended.get("exit_code") == "0", ended
    assert int(ended["elapsed_ms"]) >= 3000, ended
    assert shutdown.get("DETACH_EXIT_CODE") == "0", shutdown


def test_attached_streams_response():
    """A client that stays gets the job's whole output through nginx."""
    with harness.Sandbox() as box:
        job = box.script("attached.sh", ATTACHED_JOB.replace("30", "5"))
        detachd, nginx, port = start(box, {"/attached/*": {"command": job, "mode": "attached"}})
        response = fe.http_request(port, "/attached/export")
        assert response.status == 200, response.status
        assert response.body.startswith(b"started\n") and response.body.endswith(b"done\n"), response.body
        job_id = detachd.wait_event("accepted", route="/attached/*")["job"]
        ended = detachd.wait_event("ended", job=job_id)
        assert ended["exit_code"] == "0" and ended["connection_status"] == "0", ended


def count_upstream_connections(box, detachd_port, requests, keepalive):
    with fe.CountingProxy(("127.0.0.1", detachd_port)) as proxy:
        port = harness.free_port()
        replacements = [(f"unix:{fe.SHIPPED_SOCKET}", f"127.0.0.1:{proxy.port}")]
        if not keepalive:
            replacements.append(("    keepalive 16;\n", ""))
        name = "nginx-keepalive" if keepalive else "nginx-no-keepalive"
        nginx = fe.Nginx(box, fe.nginx_site(port, replacements=replacements), port, name=name)
        ids = []
        for i in range(requests):
            response = fe.http_request(port, f"/jobs/count?i={i}")
            assert response.status == 200, response.status
            ids.append(response.header("X-Detach-Job"))
        nginx.stop()
        return proxy.accepted, ids


def test_keepalive_reuses_fastcgi_connections():
    """keepalive 16 + fastcgi_keep_conn on: nginx opens a handful of FastCGI
    connections for 200 triggers; without keepalive, one per trigger."""
    with harness.Sandbox() as box:
        job = box.script("job.sh", "exit 0\n")
        dport = harness.free_port()
        detachd = box.detachd({"/jobs/*": {"command": job}}, {"listen": f"127.0.0.1:{dport}"},
                              wait_address=("127.0.0.1", dport))
        requests = 200
        kept, ids = count_upstream_connections(box, dport, requests, keepalive=True)
        assert len(set(ids)) == requests, "every trigger acknowledged with its own id"
        assert kept <= 4, f"{kept} FastCGI connections for {requests} triggers with keepalive"
        closed, _ = count_upstream_connections(box, dport, 20, keepalive=False)
        assert closed == 20, f"without keepalive: {closed} connections for 20 triggers"
        fe.wait_ended([detachd], ids)


def two_hosts(box, job, drain_timeout=10):
    """Two detachd instances on their own TCP ports, log dirs and configs,
    and nginx with upstream-several-hosts.conf pointing at both."""
    daemons = []
    for name in ("a", "b"):
        dport = harness.free_port()
        logs = box.path("logs-" + name)
        os.mkdir(logs)
        config = box.config({"/jobs/*": {"command": job}},
                            {"listen": f"127.0.0.1:{dport}", "log_dir": logs,
                             "drain_timeout": str(drain_timeout)}, name=f"detachd-{name}.conf")
        daemons.append(harness.Detachd(box, config, wait_address=("127.0.0.1", dport)))
        daemons[-1].port = dport
    upstream = fe.render("upstream-several-hosts.conf", [
        ("10.0.0.11:9000", f"127.0.0.1:{daemons[0].port}"),
        ("10.0.0.12:9000", f"127.0.0.1:{daemons[1].port}")])
    port = harness.free_port()
    nginx = fe.Nginx(box, fe.nginx_site(port, upstream=upstream), port)
    return daemons, nginx, port


def test_two_hosts_share_triggers():
    with harness.Sandbox() as box:
        job = box.script("job.sh", "sleep 0.2\n")
        daemons, nginx, port = two_hosts(box, job)
        acknowledged = []
        for i in range(40):
            response = fe.http_request(port, f"/jobs/spread?i={i}")
            assert response.status == 200, (response.status, response.body)
            acknowledged.append(response.header("X-Detach-Job"))
        harness.wait_for(lambda: sum(len(d.events("accepted")) for d in daemons) >= 40, 10,
                         "40 accepted lines")
        counts = [len(d.events("accepted")) for d in daemons]
        assert all(c >= 10 for c in counts), f"triggers per host: {counts}"
        assert sum(counts) == 40, counts
        for event in fe.wait_ended(daemons, acknowledged).values():
            assert event["exit_code"] == "0", event


def test_two_hosts_stop_one_while_triggers_flow():
    """SIGTERM to one of two detachd hosts while triggers flow: every
    trigger acknowledged with a 200 runs to its end on one host or the
    other (the stopped one drains what it accepted)."""
    with harness.Sandbox() as box:
        job = box.script("job.sh", "sleep 0.3\n")
        daemons, nginx, port = two_hosts(box, job)
        results, lock, stop_flow = [], threading.Lock(), threading.Event()

        def flow(worker):
            i = 0
            while not stop_flow.is_set():
                try:
                    response = fe.http_request(port, f"/jobs/flow?w={worker}&i={i}", timeout=15)
                    entry = (response.status, response.header("X-Detach-Job"))
                except OSError as error:
                    entry = ("error", str(error))
                with lock:
                    results.append(entry)
                i += 1
                # Paced to about 200 triggers/s in all, what two hosts of
                # script jobs can start here: unpaced, acks outrun the
                # scripts, both queues fill, and 503s (then nginx's 502s
                # once it marks both hosts failed) would hide what the
                # test checks, that a stop is invisible to clients.
                stop_flow.wait(0.02)

        threads = [threading.Thread(target=flow, args=(w,), daemon=True) for w in range(4)]
        for thread in threads:
            thread.start()
        harness.wait_for(lambda: all(len(d.events("accepted")) >= 5 for d in daemons), 15,
                         "triggers on both hosts")
        status = daemons[0].stop(signal.SIGTERM, timeout=30)
        stopped_at = len(results)
        harness.wait_for(lambda: len(results) >= stopped_at + 100, 20, "100 more triggers")
        stop_flow.set()
        for thread in threads:
            thread.join(20)
        assert status == 0, f"detachd exit status {status}"

        acknowledged = [job_id for code, job_id in results if code == 200]
        failed = [entry for entry in results if entry[0] != 200]
        assert len(acknowledged) >= 100, results[-10:]
        assert len(daemons[0].events("accepted")) >= 5 and len(daemons[1].events("accepted")) >= 5
        assert not daemons[0].events("dropped"), daemons[0].events("dropped")
        # Acks outrun script starts (a few hundred a second): the queues hold
        # up to a thousand jobs, which take seconds to work through.
        ended = fe.wait_ended(daemons, acknowledged, timeout=20 + 0.02 * len(acknowledged))
        bad = [event for event in ended.values() if event.get("exit_code") != "0"]
        assert not bad, bad[:5]
        # nginx retries a refused trigger on the other host: the stop should
        # not surface to clients at all.
        assert not failed, f"{len(failed)} of {len(results)} triggers failed: {failed[:5]}"


def test_job_ids_distinct_across_hosts():
    """X-Detach-Job must identify one job: two hosts behind one upstream
    must not hand out the same id for two different jobs."""
    with harness.Sandbox() as box:
        job = box.script("job.sh", "exit 0\n")
        daemons, nginx, port = two_hosts(box, job)
        ids = [fe.http_request(port, f"/jobs/id?i={i}").header("X-Detach-Job") for i in range(10)]
        per_host = [set(fe.accepted_ids(d)) for d in daemons]
        shared = per_host[0] & per_host[1]
        assert len(set(ids)) == len(ids) and not shared, \
            f"the same job id on both hosts: {sorted(shared)}; ids returned: {ids}"


def test_status_location_local_only():
    """The status location is allowed from 127.0.0.1 (passed to detachd) and
    denied elsewhere: a client bound to 127.0.0.2 (still loopback) gets 403."""
    with harness.Sandbox() as box:
        job = box.script("job.sh", "exit 0\n")
        detachd, nginx, port = start(box, {"/jobs/*": {"command": job}},
                                     {"status_path": "/detach-status"})
        local = fe.http_request(port, "/detach-status")
        assert local.status != 403 and local.status < 500, (local.status, local.body)
        with socket.socket() as s:
            s.settimeout(10)
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /detach-status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        assert data.startswith(b"HTTP/1.1 403"), data[:200]


def unit_value(text, key):
    values = [line.split("=", 1)[1].strip() for line in text.splitlines()
              if line.startswith(key + "=")]
    assert len(values) == 1, f"{key}= lines: {values}"
    return values[0]


class SocketActivatedDetachd(harness.Detachd):
    """detachd started the way detachd.socket + detachd.service describe,
    with systemd-socket-activate standing in for systemd."""

    def __init__(self, sandbox, argv, socket_path):
        self.sandbox = sandbox
        log_path = os.path.join(sandbox.dir, f"detachd-{len(sandbox.processes)}.log")
        harness.Process.__init__(self, argv, log_path)
        sandbox.processes.append(self)
        harness.wait_for(lambda: os.path.exists(socket_path) or not self.alive(), 10,
                         "the activation socket")
        # systemd-socket-activate execs detachd on the first connection.
        harness.wait_for(lambda: harness.connectable(socket_path) or not self.alive(), 10, "socket")
        harness.wait_for(lambda: "event=serving" in self.text() or not self.alive(), 15,
                         "detachd to serve on the inherited socket")
        if not self.alive():
            raise AssertionError("detachd exited at start:\n" + self.text())


def test_systemd_units_socket_activation():
    activate = shutil.which("systemd-socket-activate")
    if not activate:
        print("skip test_systemd_units_socket_activation: no systemd-socket-activate")
        return
    with harness.Sandbox() as box:
        settings = fe.open_to_workers(box)
        job, out = env_job(box)
        # The shipped example, with real commands and no listen address.
        config_text = fe.render("detachd.conf.example", [
            ("log_dir = /var/log/detach", f"log_dir = {box.logs}"),
            ("socket_mode = 0660", f"socket_mode = {settings['socket_mode']}"),
            ("/usr/local/bin/report --monthly", job),
            ("/usr/local/bin/notify-done", "/bin/true"),
            ("/usr/local/bin/import", "/bin/true"),
            ("/usr/local/bin/export --csv", "/bin/true"),
        ])
        assert not re.search(r"^listen\s*=", config_text, re.M), "the example sets listen"
        # Jobs stay root here: the sandbox is not www-data's to write in.
        config_text = re.sub(r"^user = .*$", "", config_text, flags=re.M)
        config = box.path("detachd.conf")
        with open(config, "w") as f:
            f.write(config_text)

        socket_unit = fe.shipped("detachd.socket")
        service_unit = fe.shipped("detachd.service")
        assert unit_value(socket_unit, "ListenStream") == fe.SHIPPED_SOCKET
        assert unit_value(socket_unit, "Accept") == "no"
        assert unit_value(service_unit, "KillMode") == "mixed"

        def command(key):
            argv = unit_value(service_unit, key).split()
            assert argv[0] == "/usr/sbin/detachd", argv
            return [harness.binary("detachd")] + [config if a == "/etc/detach/detachd.conf" else a
                                                  for a in argv[1:]]

        analyze = shutil.which("systemd-analyze")
        if analyze:
            units = box.path("units")
            os.mkdir(units)
            for name, text in (("detachd.socket", socket_unit), ("detachd.service", service_unit)):
                with open(os.path.join(units, name), "w") as f:
                    f.write(text.replace("/usr/sbin/detachd", harness.binary("detachd"))
                            .replace("man:detachd(8) ", ""))   # not installed here
            verify = subprocess.run([analyze, "verify", os.path.join(units, "detachd.socket"),
                                     os.path.join(units, "detachd.service")],
                                    capture_output=True, text=True, timeout=60)
            assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr

        check = subprocess.run(command("ExecStartPre"), capture_output=True, text=True, timeout=20)
        assert check.returncode == 0, (check.stdout, check.stderr)
        assert "--listen" not in unit_value(service_unit, "ExecStart")

        detachd = SocketActivatedDetachd(box, [activate, "-l", box.socket, *command("ExecStart")],
                                         box.socket)
        os.chmod(box.socket, 0o666)
        port = harness.free_port()
        nginx = fe.Nginx(box, fe.nginx_site(port, socket_path=box.socket), port)
        response = fe.http_request(port, "/jobs/report?from=systemd")
        assert response.status == 200, (response.status, response.body, detachd.text())
        job_id = response.header("X-Detach-Job")
        ended = detachd.wait_event("ended", job=job_id)
        assert ended["exit_code"] == "0", ended
        env = fe.env_file(os.path.join(out, job_id + ".env"))
        assert env["QUERY_STRING"] == "from=systemd", env
        assert "LISTEN_FDS" not in env and "LISTEN_PID" not in env, "systemd variables leak into jobs"
        nginx.stop()
        assert detachd.stop(signal.SIGTERM) == 0


harness.run(globals())
