"""detach-trigger on libcurl, end to end: https:// against a real nginx
with a certificate of a CA the test makes (openssl), redirects, basic
auth, a proxy from the environment, --wait-done over https, --timeout as
the help says, and the library split (libdetach does not load libcurl).
"""

import os
import socket
import subprocess
import threading
import time

import harness
import frontends as fe

STATUS = "/detach-status"


def trigger_cli(*args, env=None, timeout=60):
    return subprocess.run([harness.binary("detach-trigger"), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def make_ca_and_server_cert(box):
    """A CA, and a certificate it signs for 127.0.0.1 and localhost."""
    d = box.path("tls")
    os.mkdir(d)

    def openssl(*args):
        run = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, cwd=d)
        assert run.returncode == 0, run.stderr

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=detach test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return {name: os.path.join(d, name) for name in ("ca.pem", "server.pem", "server.key")}


def htpasswd(box, user, password):
    hashed = subprocess.run(["openssl", "passwd", "-apr1", password], capture_output=True,
                            text=True, timeout=30, check=True).stdout.strip()
    path = box.path("htpasswd")
    with open(path, "w") as f:
        f.write(f"{user}:{hashed}\n")
    os.chmod(path, 0o644)
    return path


def tls_site(box, port, http_port, tls):
    """nginx over TLS on port (and plain HTTP on http_port) in front of the
    sandbox's detachd: /jobs/ triggers, a redirect, a route behind basic
    auth, and the status page."""
    passwords = htpasswd(box, "ops", "s3cret pass")
    return f"""
server {{
    listen 127.0.0.1:{port} ssl;
    listen 127.0.0.1:{http_port};
    server_name localhost;
    ssl_certificate {tls['server.pem']};
    ssl_certificate_key {tls['server.key']};
    location /jobs/ {{
        fastcgi_pass unix:{box.socket};
        include fastcgi_params;
    }}
    location = /old-report {{
        return 307 /jobs/report;
    }}
    location /private/ {{
        auth_basic "detach";
        auth_basic_user_file {passwords};
        fastcgi_pass unix:{box.socket};
        include fastcgi_params;
    }}
    location {STATUS} {{
        fastcgi_pass unix:{box.socket};
        include fastcgi_params;
    }}
}}
"""


class Frontend:
    """detachd with a report route, and nginx over TLS in front of it."""

    def __init__(self, box, job_body="exit 0\n"):
        job = box.script("report.sh", job_body)
        self.detachd = box.detachd({"/jobs/report": {"command": job},
                                    "/private/report": {"command": job}},
                                   dict(fe.open_to_workers(box), status_path=STATUS))
        self.tls = make_ca_and_server_cert(box)
        self.port, self.http_port = harness.free_port(), harness.free_port()
        self.nginx = fe.Nginx(box, tls_site(box, self.port, self.http_port, self.tls), self.port)

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"


def test_https_with_a_ca_file_and_refused_without():
    with harness.Sandbox() as box:
        front = Frontend(box)
        ok = trigger_cli("--cacert", front.tls["ca.pem"], front.url("/jobs/report?month=11"))
        assert ok.returncode == 0, ok.stderr
        job_id = ok.stdout.strip()
        assert job_id, ok
        front.detachd.wait_event("ended", job=job_id)
        # The system's CAs do not know ours: a verification error, exit 2.
        refused = trigger_cli(front.url("/jobs/report"))
        assert refused.returncode == 2, refused
        assert refused.stderr.startswith("detach-trigger: ") and "certificate" in refused.stderr, \
            refused.stderr
        insecure = trigger_cli("-k", front.url("/jobs/report"))
        assert insecure.returncode == 0 and insecure.stdout.strip(), insecure.stderr
        # The request really went through nginx over TLS.
        assert "/jobs/report?month=11" in front.nginx.access_log()


def test_https_wait_done_reads_the_status_page_over_tls():
    with harness.Sandbox() as box:
        front = Frontend(box, 'echo "50 half" >&3\nexit 0\n')
        done = trigger_cli("--cacert", front.tls["ca.pem"], "--wait-done", "--timeout", "30",
                           front.url("/jobs/report"))
        assert done.returncode == 0, done.stderr
        job_id = done.stdout.strip()
        assert f"GET {STATUS}/jobs/{job_id}" in front.nginx.access_log()


def test_redirects_are_followed():
    with harness.Sandbox() as box:
        front = Frontend(box)
        moved = trigger_cli("--cacert", front.tls["ca.pem"], "-d", "who=ops",
                            front.url("/old-report"))
        assert moved.returncode == 0, moved.stderr
        job_id = moved.stdout.strip()
        log = front.nginx.access_log()
        assert '"POST /old-report HTTP/1.1" 307' in log, log
        # 307 keeps the method and the body.
        assert '"POST /jobs/report HTTP/1.1" 200' in log, log
        front.detachd.wait_event("ended", job=job_id)


def test_basic_auth_from_the_option_and_from_the_url():
    with harness.Sandbox() as box:
        front = Frontend(box)
        ca = front.tls["ca.pem"]
        denied = trigger_cli("--cacert", ca, front.url("/private/report"))
        assert denied.returncode == 1 and "HTTP 401" in denied.stderr, denied
        option = trigger_cli("--cacert", ca, "-u", "ops:s3cret pass", front.url("/private/report"))
        assert option.returncode == 0 and option.stdout.strip(), option.stderr
        in_url = trigger_cli("--cacert", ca,
                             f"https://ops:s3cret%20pass@127.0.0.1:{front.port}/private/report")
        assert in_url.returncode == 0 and in_url.stdout.strip(), in_url.stderr
        wrong = trigger_cli("--cacert", ca, "-u", "ops:nope", front.url("/private/report"))
        assert wrong.returncode == 1 and "HTTP 401" in wrong.stderr, wrong


class ForwardProxy:
    """A plain HTTP forward proxy on loopback: takes absolute-form requests
    for any host, records them, and sends them to one local port."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.requests = []
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with client:
                client.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, url, version = lines[0].split(" ")
                self.requests.append(lines[0])
                path = "/" + url.split("/", 3)[3] if url.startswith("http://") else url
                headers = [line for line in lines[1:]
                           if not line.lower().startswith(("proxy-connection", "connection"))]
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                with upstream:
                    upstream.sendall(f"{method} {path} {version}\r\n".encode() +
                                     "\r\n".join(headers + ["Connection: close"]).encode() +
                                     b"\r\n\r\n" + rest)
                    while True:
                        chunk = upstream.recv(65536)
                        if not chunk:
                            break
                        client.sendall(chunk)

    def close(self):
        self.server.close()


def test_proxy_from_the_environment():
    with harness.Sandbox() as box:
        front = Frontend(box)
        proxy = ForwardProxy(front.http_port)
        try:
            env = dict(os.environ, http_proxy=f"http://127.0.0.1:{proxy.port}")
            env.pop("no_proxy", None)
            env.pop("NO_PROXY", None)
            # Only the proxy knows this name: it answers for any host.
            through = trigger_cli("http://jobs.detach.test/jobs/report?via=proxy", env=env)
            assert through.returncode == 0 and through.stdout.strip(), through.stderr
            assert proxy.requests == ["GET http://jobs.detach.test/jobs/report?via=proxy HTTP/1.1"], \
                proxy.requests
            # no_proxy is honoured: the same name then does not resolve.
            env["no_proxy"] = "detach.test"
            direct = trigger_cli("--timeout", "5", "http://jobs.detach.test/jobs/report", env=env)
            assert direct.returncode == 2 and "resolve" in direct.stderr.lower(), direct
            assert len(proxy.requests) == 1
        finally:
            proxy.close()


# ---- --timeout and --wait-done do what the help says ----

def test_help_says_when_timeout_bounds_the_wait():
    help_text = trigger_cli("--help").stdout
    assert "given with --wait-done, also the limit for the" in help_text, help_text
    assert "(without it, the wait lasts as long as" in help_text, help_text
    assert "https://" in help_text and "--cacert" in help_text and "--user" in help_text


def held(box):
    go = box.path("go")
    return box.script("held.sh", f"""
i=0
while [ ! -e "{go}" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
"""), go


def test_timeout_given_bounds_the_whole_wait():
    with harness.Sandbox() as box:
        job, go = held(box)
        d = box.detachd({"/job": {"command": job}}, {"status_path": STATUS})
        started = time.monotonic()
        run = trigger_cli("--fcgi", "unix:" + box.socket, "--wait-done", "--timeout", "1.5", "/job")
        spent = time.monotonic() - started
        assert run.returncode == 1, run
        assert "has not ended after --timeout" in run.stderr, run.stderr
        assert 1.4 <= spent < 6, spent
        open(go, "w").close()
        d.wait_event("ended", job=run.stdout.strip())


def test_without_timeout_the_wait_outlasts_the_default_10_seconds():
    with harness.Sandbox() as box:
        job = box.script("slow.sh", "sleep 11.5\n")
        d = box.detachd({"/job": {"command": job}}, {"status_path": STATUS})
        started = time.monotonic()
        run = trigger_cli("--fcgi", "unix:" + box.socket, "--wait-done", "/job", timeout=60)
        assert run.returncode == 0, run
        assert time.monotonic() - started >= 11, "returned before the job ended"
        d.wait_event("ended", job=run.stdout.strip())


def test_missing_config_names_the_program():
    with harness.Sandbox() as box:
        missing = box.path("nope.conf")
        run = subprocess.run([harness.binary("detachd"), "--config", missing],
                             capture_output=True, text=True, timeout=30)
        assert run.returncode == 2, run
        assert run.stderr.startswith(f"detachd: {missing}: "), run.stderr


# ---- the library split ----

def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    return [line.split("[")[1].split("]")[0] for line in out.splitlines() if "(NEEDED)" in line]


def test_libdetach_does_not_load_libcurl_and_errors_are_shared():
    build = harness.BUILD
    server_lib = os.path.join(build, "libdetach.so")
    client_lib = os.path.join(build, "libdetach-trigger.so")
    assert not any("curl" in n or "json-c" in n for n in needed(server_lib)), needed(server_lib)
    assert any("curl" in n for n in needed(client_lib)), needed(client_lib)
    exported = subprocess.run(["nm", "-D", "--defined-only", server_lib], capture_output=True,
                              text=True, timeout=30, check=True).stdout
    assert " detach_trigger" not in exported
    with harness.Sandbox() as box:
        # A program with both libraries: detach_trigger()'s message is what
        # detach_last_error() says, whichever library it comes from.
        source = box.path("both.c")
        with open(source, "w") as f:
            f.write("""
#include <stdio.h>
#include <string.h>
#include <detach.h>
#include <detach_trigger.h>
int main(void)
{
    detach_trigger_options opts;
    detach_options server_options;
    detach_trigger_options_init(&opts);
    detach_options_init(&server_options);
    opts.fcgi = "unix:/nonexistent/detach.sock";
    if (detach_trigger("/x", &opts, NULL) == 0)
        return 3;
    printf("%s\\n", detach_last_error());
    return strstr(detach_last_error(), "/nonexistent/detach.sock") ? 0 : 4;
}
""")
        binary = box.path("both")
        include = os.path.join(harness.HERE, "..", "..", "include")
        # Sanitized libraries need the sanitizer runtime in the program.
        sanitize = ["-fsanitize=address,undefined"] if harness.SANITIZED else []
        cc = subprocess.run(["cc", *sanitize, "-I", include, source, "-o", binary, "-L", build,
                             "-ldetach", "-ldetach-trigger", f"-Wl,-rpath,{build}"],
                            capture_output=True, text=True, timeout=120)
        assert cc.returncode == 0, cc.stderr
        run = subprocess.run([binary], capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, (run.returncode, run.stdout, run.stderr)


if __name__ == "__main__":
    harness.run(globals())
