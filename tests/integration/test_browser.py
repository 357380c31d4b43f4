"""The HTML status page in a real browser: headless Chromium loads
<status_path>?format=html through nginx (the shipped nginx-conf/detach.conf)
while jobs run, and the rendered DOM must show each job's progress bar at
the value the job reported on fd 3, and no bar at all for a job that never
reported progress.  The page is laid out at 1,024 and 1,600 px: a script
added to a copy of the page measures every table cell and the page itself,
and no cell may be cut (its content wider than its box) nor the page wider
than the window.  Screenshots at both widths are saved in the build
directory (status-page-1024.png, status-page.png at 1,600 px);
DETACH_UPDATE_DOCS=1 also copies the latter to docs/status-page.png, so a
test run never rewrites the source tree.

Chromium is Debian's `chromium` package, installed here when missing (the
first time takes a while), so this test runs everywhere the suite runs.
"""

import html.parser
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import harness
import frontends as fe
from fcgi_client import fcgi_request

ROOT = os.path.abspath(os.path.join(harness.HERE, "..", ".."))
SCREENSHOT = os.path.join(harness.BUILD, "status-page.png")
SCREENSHOT_NARROW = os.path.join(harness.BUILD, "status-page-1024.png")
WIDTHS = (1024, 1600)

# Appended to a copy of the page: lists the cells whose content is wider
# than their box (cut by overflow, or spilling out) and whether the page
# is wider than the window, as a data-layout attribute --dump-dom shows.
MEASURE = """<script>
(function () {
  var cut = [];
  document.querySelectorAll("th, td").forEach(function (cell) {
    if (cell.scrollWidth > cell.clientWidth + 1)
      cut.push((cell.parentElement.id || "head") + " column " + (cell.cellIndex + 1) + ": " +
               cell.textContent.trim().slice(0, 40) + " (" + cell.scrollWidth + " > " +
               cell.clientWidth + " px)");
  });
  document.body.setAttribute("data-layout", JSON.stringify({
    cut: cut, window: window.innerWidth,
    page: document.documentElement.scrollWidth, cells: document.querySelectorAll("td").length}));
})();
</script>"""


class Layout(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.layout = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body" and "data-layout" in attrs:
            self.layout = json.loads(attrs["data-layout"])


def check_layout(profile, page_html, width):
    """The page as served, measured in Chromium at this window width."""
    copy = os.path.join(profile, f"page-{width}.html")
    page_html = page_html.replace('<meta http-equiv="refresh" content="2">', "")
    with open(copy, "w") as f:
        f.write(page_html.replace("</body>", MEASURE + "</body>"))
    dom = chromium(profile, "--dump-dom", f"--window-size={width},900", "file://" + copy)
    found = Layout()
    found.feed(dom)
    layout = found.layout
    assert layout, dom[-2000:]
    assert layout["window"] == width, layout
    assert layout["cells"] > 20, layout
    assert not layout["cut"], f"cut at {width} px: {layout['cut']}"
    assert layout["page"] <= width, f"the page is wider than {width} px: {layout}"
DOCS_SCREENSHOT = os.path.join(ROOT, "docs", "status-page.png")
STATUS = "/detach-status"


def ensure_chromium():
    """The browser's path, installing Debian's package if needed (bounded)."""
    found = shutil.which("chromium")
    if found:
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("test_browser: installing chromium (apt-get)", flush=True)
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]
    if subprocess.run(install, capture_output=True, timeout=600, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300, env=env)
        run = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
        if run.returncode != 0:
            raise SystemExit("test_browser: cannot install chromium:\n" + run.stderr[-2000:])
    found = shutil.which("chromium")
    if not found:
        raise SystemExit("test_browser: chromium installed but not on PATH")
    return found


CHROMIUM = None


def chromium(profile, *args):
    """Runs headless Chromium for one page, at most 60 s; its whole process
    group is killed afterwards, so no renderer outlives the test."""
    argv = ["timeout", "-k", "5", "60", CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
            "--user-data-dir=" + profile, *args]
    env = dict(os.environ, HOME=profile)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        out, err = process.communicate(timeout=75)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if process.poll() is None:
            process.wait(5)
    assert process.returncode == 0, f"chromium exited {process.returncode}:\n{err.decode()[-3000:]}"
    return out.decode(errors="replace")


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.progress, self.rows = {}, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "progress" and "data-job" in attrs:
            self.progress[attrs["data-job"]] = attrs
        elif tag == "tr" and "data-job" in attrs:
            self.rows[attrs["data-job"]] = attrs


def held_job(box, name, lines, go):
    """Reports the given progress lines on fd 3, then waits for go/<id>."""
    reports = "".join(f'echo "{line}" >&3\n' for line in lines)
    return box.script(name, f"""
{reports}i=0
while [ ! -e "{go}/$DETACH_JOB_ID" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
""")


def job_json(box, job_id):
    response = fcgi_request(box.socket, f"{STATUS}/jobs/{job_id}")
    return json.loads(response.body) if response.status == 200 else {}


def test_status_page_in_chromium():
    with harness.Sandbox() as box:
        go = box.path("go")
        os.mkdir(go)
        report = held_job(box, "report.sh", ["10 reading input", "40 halfway"], go)
        export = held_job(box, "export.sh",
                          ["75 table 3 of 4: customers, invoices and the ledger of 2026"], go)
        mail = box.script("mail.sh", 'echo "100 sent" >&3\n')
        broken = box.script("broken.sh", 'echo "20 parsing" >&3\nexit 2\n')
        quiet = box.script("quiet.sh", "exit 0\n")          # never reports progress
        killed = box.script("killed.sh", "kill -TERM $$\n")  # ends by a signal
        settings = fe.open_to_workers(box)
        settings.update({"status_path": STATUS, "max_jobs": "2", "drain_timeout": "1"})
        d = box.detachd({"/jobs/report": {"command": report}, "/jobs/export": {"command": export},
                         "/jobs/mail": {"command": mail}, "/jobs/broken": {"command": broken},
                         "/jobs/quiet": {"command": quiet},
                         "/jobs/monthly-customer-statements": {"command": killed}},
                        settings)
        port = harness.free_port()
        nginx = fe.Nginx(box, fe.nginx_site(port, socket_path=box.socket), port)

        def trigger(path):
            response = fe.http_request(port, path)
            assert response.status == 200, (response.status, response.body)
            return response.header("X-Detach-Job")

        done = [trigger("/jobs/mail"), trigger("/jobs/broken"), trigger("/jobs/quiet"),
                trigger("/jobs/monthly-customer-statements")]
        fe.wait_ended([d], done)
        report_id = trigger("/jobs/report?month=11")
        export_id = trigger("/jobs/export")
        queued_id = trigger("/jobs/report?month=12")   # max_jobs = 2: it waits
        harness.wait_for(lambda: (job_json(box, report_id).get("progress") or {}).get("percent")
                         == 40, 15, "the report job to report 40")
        harness.wait_for(lambda: (job_json(box, export_id).get("progress") or {}).get("percent")
                         == 75, 15, "the export job to report 75")

        url = f"http://127.0.0.1:{port}{STATUS}?format=html"
        with tempfile.TemporaryDirectory(prefix="detach-chromium-") as profile:
            dom = chromium(profile, "--dump-dom", url)
            page = Page()
            page.feed(dom)
            assert report_id in page.progress, dom[-3000:]
            assert page.progress[report_id].get("value") == "40", page.progress[report_id]
            assert page.progress[report_id].get("id") == "progress-" + report_id
            assert page.progress[export_id].get("value") == "75", page.progress[export_id]
            assert page.rows[report_id]["data-state"] == "running", page.rows
            assert page.rows[queued_id]["data-state"] == "queued", page.rows
            # No report, no bar: not the animated "indeterminate" one.
            assert queued_id not in page.progress, page.progress[queued_id]
            assert done[2] not in page.progress, page.progress[done[2]]
            assert page.rows[done[2]]["data-state"] == "ended", page.rows
            assert page.rows[done[1]]["data-state"] == "ended", page.rows
            assert "halfway" in dom and "table 3 of 4" in dom
            assert "signal 15" in dom, dom[-3000:]

            served = fe.http_request(port, f"{STATUS}?format=html")
            assert served.status == 200, served.status
            page_html = served.body.decode() if isinstance(served.body, bytes) else served.body
            for width in WIDTHS:
                check_layout(profile, page_html, width)
                shot = os.path.join(profile, f"status-{width}.png")
                chromium(profile, f"--screenshot={shot}", f"--window-size={width},900",
                         "--hide-scrollbars", url)
                with open(shot, "rb") as f:
                    png = f.read()
                assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10000, len(png)
                shutil.copyfile(shot, SCREENSHOT if width == 1600 else SCREENSHOT_NARROW)
            if os.environ.get("DETACH_UPDATE_DOCS") == "1":
                shutil.copyfile(SCREENSHOT, DOCS_SCREENSHOT)

        # The browser came through nginx: its status request is in the access log.
        assert f"GET {STATUS}?format=html" in nginx.access_log()
        for job_id in (report_id, export_id, queued_id):
            open(os.path.join(go, job_id), "w").close()
        fe.wait_ended([d], [report_id, export_id, queued_id])
        assert d.stop() == 0


if __name__ == "__main__":
    CHROMIUM = ensure_chromium()
    harness.run(globals())
