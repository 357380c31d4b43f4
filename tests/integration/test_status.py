"""The status page, the job log cap, syslog, detach-trigger --wait-done and
the man pages, end to end: a real detachd (and nginx where HTTP matters),
real scripts that report progress on fd 3, and the built detach-trigger.

Jobs that must be seen mid-run wait for a "go" file the test creates
(bounded), so nothing depends on a sleep being long enough.
"""

import html.parser
import json
import os
import pty
import re
import select
import shutil
import subprocess
import time

import harness
import frontends as fe
from fcgi_client import fcgi_request

STATUS = "/detach-status"
ROOT = os.path.abspath(os.path.join(harness.HERE, "..", ".."))


# ---- helpers ----

def held_job(box, name="job.sh", code=0, extra=""):
    """A job that reports "40 halfway" on fd 3, then waits for go/<its id>
    (at most 20 s) and exits with code."""
    go = box.path("go")
    os.makedirs(go, exist_ok=True)
    return box.script(name, f"""
echo "40 halfway" >&3
{extra}
i=0
while [ ! -e "{go}/$DETACH_JOB_ID" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
exit {code}
"""), go


def release(go, job_id):
    open(os.path.join(go, job_id), "w").close()


def status(box, subpath="", query="", remote="127.0.0.1"):
    return fcgi_request(box.socket, STATUS + subpath, query=query,
                        extra={"REMOTE_ADDR": remote})


def status_json(box, subpath=""):
    response = status(box, subpath)
    assert response.status == 200, response.stdout
    assert response.header("Content-Type") == "application/json", response.head()
    return json.loads(response.body)


def trigger(box, path="/job", query=""):
    response = fcgi_request(box.socket, path, query=query)
    assert response.status == 200, response.stdout
    job_id = response.header("X-Detach-Job")
    assert job_id, response.head()
    return job_id


def wait_job(box, job_id, predicate, what, timeout=15):
    def check():
        response = status(box, "/jobs/" + job_id)
        if response.status != 200:
            return None
        job = json.loads(response.body)
        return job if predicate(job) else None
    return harness.wait_for(check, timeout, what)


def daemon(**settings):
    settings.setdefault("status_path", STATUS)
    return settings


class ProgressFinder(html.parser.HTMLParser):
    """The <progress> elements of a page, by data-job."""

    def __init__(self):
        super().__init__()
        self.progress = {}
        self.rows = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "progress" and "data-job" in attrs:
            self.progress[attrs["data-job"]] = attrs
        if tag == "tr" and "data-job" in attrs:
            self.rows[attrs["data-job"]] = attrs


def parse_prometheus(text):
    """{family: {"help", "type", "samples": [(name, labels, value)]}}; asserts
    the text format's rules on the way."""
    families, order = {}, []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            _, kind, name, rest = line.split(" ", 3)
            family = families.setdefault(name, {"samples": []})
            assert kind.lower() not in family, f"second {kind} for {name}"
            assert not family["samples"], f"{kind} after the samples of {name}"
            family[kind.lower()] = rest
            if name not in order:
                order.append(name)
            continue
        assert not line.startswith("#"), line
        match = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)', line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in families:
                family = name[:-len(suffix)]
        assert family in families, f"sample {name} without HELP/TYPE before it"
        assert "help" in families[family] and "type" in families[family], family
        assert order[-1] == family, f"{name}: samples of a family must be together"
        labels = dict(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        families[family]["samples"].append((name, labels, float(value)))
    return families


# ---- the status page ----

def test_json_counters_and_job_progress():
    with harness.Sandbox() as box:
        job, go = held_job(box)
        d = box.detachd({"/job": {"command": job}}, daemon())
        before = status_json(box)
        assert set(before) == {"accepted", "queued", "running", "completed", "failed",
                               "aborted", "timed_out", "rejected", "uptime"}, before
        assert before["accepted"] == 0 and before["running"] == 0, before

        job_id = trigger(box)
        running = wait_job(box, job_id, lambda j: j["progress"] and j["progress"]["percent"] == 40,
                           "progress 40")
        assert running["state"] == "running", running
        assert running["progress"]["message"] == "halfway", running
        assert running["route"] == "/job" and running["exit"] is None, running
        counters = status_json(box)
        assert counters["accepted"] == 1 and counters["running"] == 1, counters

        release(go, job_id)
        ended = wait_job(box, job_id, lambda j: j["state"] == "ended", "the job to end")
        assert ended["exit"] == {"code": 0} and ended["connection_status"] == 0, ended
        assert ended["progress"]["percent"] == 40, ended
        counters = status_json(box)
        assert counters["running"] == 0 and counters["completed"] == 1, counters
        assert d.stop() == 0


def test_prometheus_format():
    with harness.Sandbox() as box:
        ok = box.script("ok.sh", "exit 0\n")
        bad = box.script("bad.sh", "exit 3\n")
        d = box.detachd({"/ok": {"command": ok}, "/bad": {"command": bad}}, daemon())
        ids = [trigger(box, "/ok"), trigger(box, "/ok"), trigger(box, "/bad")]
        fe.wait_ended([d], ids)
        harness.wait_for(lambda: status_json(box)["running"] == 0, 10, "no job running")
        response = status(box, query="format=prometheus")
        assert response.status == 200, response.stdout
        assert response.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
        families = parse_prometheus(response.body.decode())
        counters = {"detach_jobs_accepted_total": 3, "detach_jobs_completed_total": 2,
                    "detach_jobs_failed_total": 1, "detach_jobs_aborted_total": 0,
                    "detach_jobs_timed_out_total": 0, "detach_jobs_rejected_total": 0}
        for name, value in counters.items():
            assert families[name]["type"] == "counter", families[name]
            assert families[name]["samples"] == [(name, {}, value)], families[name]
        for name in ("detach_jobs_queued", "detach_jobs_running"):
            assert families[name]["type"] == "gauge"
            assert families[name]["samples"] == [(name, {}, 0)], families[name]
        assert families["detach_uptime_seconds"]["type"] == "gauge"

        histogram = families["detach_job_duration_seconds"]
        assert histogram["type"] == "histogram", histogram
        buckets = [(s[1]["le"], s[2]) for s in histogram["samples"] if s[0].endswith("_bucket")]
        assert buckets[-1][0] == "+Inf", buckets
        bounds = [float(le) for le, _ in buckets[:-1]]
        assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), bounds
        counts = [count for _, count in buckets]
        assert counts == sorted(counts), f"buckets are not cumulative: {buckets}"
        total = {s[0]: s[2] for s in histogram["samples"] if not s[0].endswith("_bucket")}
        assert total["detach_job_duration_seconds_count"] == counts[-1] == 3, histogram
        assert 0 <= total["detach_job_duration_seconds_sum"] < 30, histogram
        assert d.stop() == 0


def test_html_page_shows_progress():
    with harness.Sandbox() as box:
        job, go = held_job(box)
        d = box.detachd({"/job": {"command": job}}, daemon())
        job_id = trigger(box)
        wait_job(box, job_id, lambda j: j["progress"] and j["progress"]["percent"] == 40,
                 "progress 40")
        response = status(box, query="format=html")
        assert response.status == 200, response.stdout
        assert response.header("Content-Type") == "text/html; charset=utf-8", response.head()
        page = response.body.decode()
        assert '<meta http-equiv="refresh" content="2">' in page, page[:500]
        finder = ProgressFinder()
        finder.feed(page)
        assert finder.progress[job_id]["value"] == "40", finder.progress
        assert finder.progress[job_id]["max"] == "100", finder.progress
        assert finder.rows[job_id]["data-state"] == "running", finder.rows
        assert "halfway" in page and "/job" in page
        release(go, job_id)
        wait_job(box, job_id, lambda j: j["state"] == "ended", "the job to end")
        finder = ProgressFinder()
        finder.feed(status(box, query="format=html").body.decode())
        assert finder.rows[job_id]["data-state"] == "ended", finder.rows
        # Unknown formats are refused, /jobs/<id> stays JSON whatever the query.
        assert status(box, query="format=yaml").status == 400
        assert status(box, "/jobs/" + job_id, "format=html").header("Content-Type") == \
            "application/json"
        assert status(box, "/jobs/nope").status == 404
        assert d.stop() == 0


def test_status_allow():
    with harness.Sandbox() as box:
        ok = box.script("ok.sh", "exit 0\n")
        d = box.detachd({"/ok": {"command": ok}},
                        daemon(status_allow="10.1.2.0/24 ::1 ; a comment"))
        assert status(box, remote="127.0.0.1").status == 403
        assert status(box, remote="10.1.3.1").status == 403
        assert status(box, query="format=html", remote="192.0.2.7").status == 403
        assert status(box, "/jobs/x", remote="192.0.2.7").status == 403
        assert status(box, remote="10.1.2.7").status == 200
        assert status(box, remote="::1").status == 200
        assert d.stop() == 0
    with harness.Sandbox() as box:   # the default: loopback only
        ok = box.script("ok.sh", "exit 0\n")
        d = box.detachd({"/ok": {"command": ok}}, daemon())
        assert status(box, remote="127.0.0.1").status == 200
        assert status(box, remote="192.0.2.7").status == 403
        assert d.stop() == 0


def test_new_config_keys_errors_name_the_line():
    with harness.Sandbox() as box:
        ok = box.script("ok.sh", "exit 0\n")
        cases = [
            ("status_allow", "127.0.0.1 10.0.0.0/99", 'bad address "10.0.0.0/99" in status_allow'),
            ("status_allow", "localhost", 'bad address "localhost" in status_allow'),
            ("job_log_max", "10Q", 'bad size "10Q" for job_log_max'),
            ("job_log_max", "2T", 'bad size "2T" for job_log_max'),
            ("log", "file", 'bad log "file" (stderr, syslog or journal)'),
            ("job_memory", "64M", 'unknown key "job_memory" in [detachd]'),
        ]
        for key, value, message in cases:
            path = box.config({"/ok": {"command": ok}}, {key: value}, name="bad.conf")
            run = subprocess.run([harness.binary("detachd"), "--config", path, "--check-config"],
                                 capture_output=True, text=True, timeout=10,
                                 stdin=subprocess.DEVNULL)
            assert run.returncode == 2, (key, value, run.stderr)
            assert run.stderr.startswith(f"{path}:4: {message}"), (key, value, run.stderr)
        for key, value in (("status_allow", "127.0.0.1, ::1 192.168.0.0/16"),
                           ("job_log_max", "0"), ("job_log_max", "512K"), ("log", "syslog")):
            path = box.config({"/ok": {"command": ok}}, {key: value}, name="good.conf")
            run = subprocess.run([harness.binary("detachd"), "--config", path, "--check-config"],
                                 capture_output=True, text=True, timeout=10,
                                 stdin=subprocess.DEVNULL)
            assert run.returncode == 0, (key, value, run.stderr)


# ---- the job log ----

def test_job_log_cap_truncates_and_never_blocks():
    with harness.Sandbox() as box:
        # 2 MiB, far beyond the cap and the pipe's buffer: the job must not block.
        job = box.script("loud.sh", """
head -c 1000 /dev/zero | tr '\\0' 'a'
echo "to-stderr" >&2
echo "50 loud" >&3
head -c 2097152 /dev/zero | tr '\\0' 'b'
echo "after"
""")
        quiet = box.script("quiet.sh", "echo small\necho small-err >&2\n")
        d = box.detachd({"/loud": {"command": job}, "/quiet": {"command": quiet}},
                        daemon(job_log_max="1K"))
        loud_id, quiet_id = trigger(box, "/loud"), trigger(box, "/quiet")
        events = fe.wait_ended([d], [loud_id, quiet_id], timeout=30)
        assert events[loud_id]["exit_code"] == "0", events
        with open(os.path.join(box.logs, loud_id + ".log"), "rb") as f:
            text = f.read()
        assert text.startswith(b"a" * 1000 + b"to-stderr\n"), text[:1100]
        assert text == text[:1024] + b"\n[detach: log truncated at 1024 bytes]\n", text[1000:]
        assert d.events("job_log_truncated", job=loud_id), d.text()[-2000:]
        assert d.events("progress", job=loud_id, percent=50), d.text()[-2000:]
        with open(os.path.join(box.logs, quiet_id + ".log")) as f:
            assert f.read() == "small\nsmall-err\n"
        assert d.stop() == 0


def test_job_log_unlimited_with_zero():
    with harness.Sandbox() as box:
        job = box.script("loud.sh", "head -c 300000 /dev/zero | tr '\\0' 'c'\necho end\n")
        d = box.detachd({"/loud": {"command": job}}, daemon(job_log_max="0"))
        job_id = trigger(box, "/loud")
        fe.wait_ended([d], [job_id])
        assert os.path.getsize(os.path.join(box.logs, job_id + ".log")) == 300004
        assert not d.events("job_log_truncated")
        assert d.stop() == 0


def test_log_syslog():
    """log = syslog: the event lines leave stderr, and jobs run as before
    (whether a syslog daemon listens here or not)."""
    with harness.Sandbox() as box:
        ok = box.script("ok.sh", "echo '70 nearly' >&3\n")
        d = box.detachd({"/ok": {"command": ok}}, daemon(log="syslog"))
        job_id = trigger(box, "/ok")
        wait_job(box, job_id, lambda j: j["state"] == "ended", "the job to end")
        assert d.stop() == 0
        assert "event=" not in d.text(), d.text()


# ---- detach-trigger --wait-done ----

def run_trigger(*args, timeout=30, **kwargs):
    return subprocess.run([fe.trigger_binary(), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)


def test_wait_done_over_fastcgi():
    with harness.Sandbox() as box:
        good = box.script("good.sh", 'echo "40 halfway" >&3\nsleep 0.5\necho "90 nearly" >&3\n'
                                     'sleep 0.3\n')
        bad = box.script("bad.sh", 'echo "10 starting" >&3\nsleep 0.3\nexit 3\n')
        slow = box.script("slow.sh", 'echo "5 slow" >&3\nsleep 30\n')
        d = box.detachd({"/good": {"command": good}, "/bad": {"command": bad},
                         "/slow": {"command": slow}, "/limited": {"command": slow, "time_limit": 1,
                                                                  "kill_grace": 1}},
                        daemon(drain_timeout=1))
        address = "unix:" + box.socket

        run = run_trigger("--fcgi", address, "--wait-done", "/good")
        assert run.returncode == 0, (run.stdout, run.stderr)
        job_id = run.stdout.strip()
        assert re.fullmatch(r"[0-9a-f]{16}", job_id), run.stdout
        lines = run.stderr.splitlines()
        assert "40% halfway" in lines and "90% nearly" in lines, run.stderr
        assert lines.index("40% halfway") < lines.index("90% nearly"), run.stderr
        assert len(lines) == len(set(lines)), f"a line per change only: {run.stderr}"

        run = run_trigger("--fcgi", address, "--wait-done", "/bad")
        assert run.returncode == 1, (run.stdout, run.stderr)
        assert f"job {run.stdout.strip()} failed: exit code 3" in run.stderr, run.stderr

        run = run_trigger("--fcgi", address, "--wait-done", "/limited")
        assert run.returncode == 1, (run.stdout, run.stderr)
        assert "connection status 2, timeout" in run.stderr, run.stderr

        started = time.monotonic()
        run = run_trigger("--fcgi", address, "--wait-done", "--timeout", "1", "/slow")
        assert run.returncode == 1, (run.stdout, run.stderr)
        assert "has not ended after --timeout" in run.stderr, run.stderr
        assert time.monotonic() - started < 5

        run = run_trigger("--fcgi", address, "--wait-done", "--status", "/elsewhere", "/good")
        assert run.returncode == 2 and "HTTP 404" in run.stderr, (run.stdout, run.stderr)
        run = run_trigger("--fcgi", address, "--wait-done", "--no-wait", "/good")
        assert run.returncode == 2 and "--no-wait" in run.stderr, run.stderr
        run = run_trigger("--fcgi", address, "--status", STATUS, "/good")
        assert run.returncode == 2 and "--wait-done" in run.stderr, run.stderr
        assert d.stop() == 0


def test_wait_done_refused_status_page():
    with harness.Sandbox() as box:
        good = box.script("good.sh", "exit 0\n")
        d = box.detachd({"/good": {"command": good}}, daemon(status_allow="10.9.9.9"))
        run = run_trigger("--fcgi", "unix:" + box.socket, "--wait-done", "/good")
        assert run.returncode == 2 and "HTTP 403" in run.stderr, (run.stdout, run.stderr)
        assert d.stop() == 0


def test_wait_done_draws_a_bar_on_a_terminal():
    with harness.Sandbox() as box:
        good = box.script("good.sh", 'echo "40 halfway" >&3\nsleep 0.7\n')
        d = box.detachd({"/good": {"command": good}}, daemon())
        master, slave = pty.openpty()
        try:
            process = subprocess.Popen([fe.trigger_binary(), "--fcgi", "unix:" + box.socket,
                                        "--wait-done", "/good"], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=slave)
            os.close(slave)
            slave = -1
            screen = b""
            exited = False
            deadline = time.monotonic() + 20
            # Read until the pty reports its writer gone (EIO).  A quiet
            # moment after the exit ends it too, but only once a last look
            # found nothing: the exit may come between the select and the
            # poll, its last line still unread.
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    screen += chunk
                elif exited:
                    break
                else:
                    exited = process.poll() is not None
            assert process.wait(10) == 0, screen
            process.stdout.close()
        finally:
            if slave >= 0:
                os.close(slave)
            os.close(master)
        text = screen.decode(errors="replace")
        assert "\r[########------------]  40% halfway\x1b[K" in text, repr(text)
        assert text.endswith("\n"), repr(text)
        assert d.stop() == 0


def test_wait_done_over_http_through_nginx():
    with harness.Sandbox() as box:
        good = box.script("good.sh", 'echo "40 halfway" >&3\nsleep 0.5\n')
        bad = box.script("bad.sh", "sleep 0.2\nexit 4\n")
        settings = fe.open_to_workers(box)
        settings.update(daemon())
        d = box.detachd({"/jobs/good": {"command": good}, "/jobs/bad": {"command": bad}},
                        settings)
        port = harness.free_port()
        fe.Nginx(box, fe.nginx_site(port, socket_path=box.socket), port)
        run = run_trigger("--wait-done", f"http://127.0.0.1:{port}/jobs/good")
        assert run.returncode == 0, (run.stdout, run.stderr)
        assert "40% halfway" in run.stderr, run.stderr
        run = run_trigger("--wait-done", "--status", f"http://127.0.0.1:{port}{STATUS}/",
                          f"http://127.0.0.1:{port}/jobs/bad")
        assert run.returncode == 1 and "exit code 4" in run.stderr, (run.stdout, run.stderr)
        assert d.stop() == 0


# ---- the man pages ----

MAN_PAGES = {"detachd": "man/detachd.8", "detach-trigger": "man/detach-trigger.1"}
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[A-Za-z])(?![\w-])")


def help_options(program):
    """{option spec: description} from --help: lines "  -x, --long ARG  text",
    continuation lines indented to the description."""
    text = subprocess.run([harness.binary(program), "--help"], capture_output=True, text=True,
                          timeout=10, check=True).stdout
    entries, current = {}, None
    for line in text.splitlines():
        match = re.match(r"^ {2,}(-\S.*?)(?: {2,}(.*))?$", line)
        if match:
            current = match.group(1)
            entries[current] = match.group(2) or ""
        elif current and re.match(r"^ {8,}\S", line):
            entries[current] += " " + line.strip()
        else:
            current = None
    assert entries, text
    return entries


def man_option_tags(path):
    """The option names of the tags (".TP" then the tag line) in OPTIONS."""
    with open(os.path.join(ROOT, path)) as f:
        lines = f.read().splitlines()
    section, names = None, set()
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            section = line[3:].strip().strip('"')
        elif section == "OPTIONS" and line == ".TP":
            tag = re.sub(r"\\f[BIRP]", "", lines[i + 1]).replace("\\-", "-")
            names.update(OPTION.findall(tag))
    return names


def render_man(path, *args):
    env = dict(os.environ, LANG="C", LC_ALL="C")
    return subprocess.run(["groff", "-man", *args, os.path.join(ROOT, path)],
                          capture_output=True, text=True, timeout=30, env=env)


def normalized(text):
    return " ".join(text.split())


def test_man_pages_match_help():
    if not shutil.which("groff"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "groff-base"]
        if subprocess.run(install, capture_output=True, timeout=300, env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300, env=env)
            subprocess.run(install, capture_output=True, timeout=300, env=env)
        assert shutil.which("groff"), "groff (Debian's groff-base) is needed to check the pages"
    for program, path in MAN_PAGES.items():
        entries = help_options(program)
        from_help = {name for spec in entries for name in OPTION.findall(spec)}
        from_man = man_option_tags(path)
        assert from_help == from_man, (program, from_help ^ from_man)
        # The same words: each --help description is in the page as it is.
        page = normalized(render_man(path, "-Tascii", "-rLL=3000n", "-P-cbou").stdout)
        for spec, description in entries.items():
            assert normalized(description) in page, (program, spec, description)
    for path in ("man/detachd.8", "man/detach-trigger.1", "man/libdetach.3"):
        rendered = render_man(path, "-Tutf8", "-ww", "-z")
        assert rendered.returncode == 0 and rendered.stderr == "", (path, rendered.stderr)
        if shutil.which("mandoc"):
            lint = subprocess.run(["mandoc", "-T", "lint", "-W", "warning",
                                   os.path.join(ROOT, path)],
                                  capture_output=True, text=True, timeout=30)
            assert lint.returncode == 0, (path, lint.stdout, lint.stderr)


def test_man_pages_are_installed():
    build = os.path.abspath(harness.BUILD)
    with harness.Sandbox() as box:
        prefix = box.path("prefix")
        run = subprocess.run(["cmake", "--install", build, "--prefix", prefix],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        for page in ("man8/detachd.8", "man1/detach-trigger.1", "man3/libdetach.3"):
            found = [os.path.join(root, name) for root, _, names in os.walk(prefix)
                     for name in names if os.path.join(root, name).endswith("/man/" + page)]
            assert found, (page, run.stdout)


if __name__ == "__main__":
    harness.run(globals())
