"""Real web servers in front of detachd, for the integration tests.

nginx and apache2 run as private instances: configs, logs, pid files and
temp dirs in the sandbox, listening on 127.0.0.1:<free port>, stopped by
PID (their process group) when the sandbox closes.  Their site configs are
the shipped files in nginx-conf/, with a few strings replaced (socket path,
listen port): render() fails loudly if a string to replace is gone, so the
tests never drift away from what users install.
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import threading

import harness

ROOT = os.path.abspath(os.path.join(harness.HERE, "..", ".."))
CONF_DIR = os.path.join(ROOT, "nginx-conf")
SHIPPED_SOCKET = "/run/detach/detachd.sock"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
APACHE_MODULES = "/usr/lib/apache2/modules"
NGINX_FASTCGI_PARAMS = "/etc/nginx/fastcgi_params"


def shipped(name):
    with open(os.path.join(CONF_DIR, name)) as f:
        return f.read()


def render(name_or_text, replacements, shipped_file=True):
    """The shipped file with each (old, new) replaced; old must occur."""
    text = shipped(name_or_text) if shipped_file else name_or_text
    for old, new in replacements:
        if old not in text:
            raise AssertionError(f"{name_or_text if shipped_file else 'text'}: "
                                 f"{old!r} not found; update the test or the shipped file")
        text = text.replace(old, new)
    return text


def without_block(text, header):
    """text without the brace block starting at the line `header {`."""
    start = text.index(header)
    depth, i = 0, text.index("{", start)
    while True:
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[:start] + text[i + 1:]
        i += 1


def open_to_workers(box):
    """nginx/Apache workers run as www-data when we are root: let them reach
    sockets in the sandbox.  Returns detachd settings for the socket mode."""
    os.chmod(box.dir, 0o711)
    return {"socket_mode": "0666"}


class ServerGroup(harness.Process):
    """A master process and its workers, one process group (the master
    leads it: start_new_session).  Stopped gracefully via the master, then
    whatever is left of the group is killed, so no orphaned worker stays."""

    def __init__(self, box, argv, name, ready_port, env=None):
        super().__init__(argv, box.path(name + ".log"), env=env)
        box.processes.append(self)
        self.name = name
        harness.wait_for(lambda: harness.connectable(("127.0.0.1", ready_port)) or
                         self.popen.poll() is not None, 15, f"{name} to listen")
        if self.popen.poll() is not None:
            raise AssertionError(f"{name} exited at start:\n{self.text()}\n{self.error_log()}")

    def error_log(self):
        return ""

    def alive(self):
        if self.popen.poll() is None:
            return True
        try:
            os.killpg(self.pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen.poll() is None:
            self.popen.wait(5)
        if not self.log.closed:
            self.log.close()
        return self.popen.returncode


class Nginx(ServerGroup):
    def __init__(self, box, site, port, name="nginx", workers=1):
        self.dir = box.path(name)
        os.makedirs(os.path.join(self.dir, "tmp"))
        shutil.copy(NGINX_FASTCGI_PARAMS, os.path.join(self.dir, "fastcgi_params"))
        with open(os.path.join(self.dir, "detach.conf"), "w") as f:
            f.write(site)
        d = self.dir
        user = "user www-data;\n" if os.geteuid() == 0 else ""
        main = f"""{user}master_process on;
worker_processes {workers};
error_log {d}/error.log info;
pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    log_format detach '$remote_addr "$request" $status upstream=$upstream_addr '
                      'upstream_status=$upstream_status time=$request_time';
    access_log {d}/access.log detach;
    client_body_temp_path {d}/tmp/client_body;
    fastcgi_temp_path {d}/tmp/fastcgi;
    proxy_temp_path {d}/tmp/proxy;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {d}/detach.conf;
}}
"""
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(main)
        self.port = port
        check = subprocess.run([NGINX, "-t", "-p", d, "-e", f"{d}/error.log",
                                "-c", f"{d}/nginx.conf"], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise AssertionError("nginx -t refused the config:\n" + check.stderr)
        super().__init__(box, [NGINX, "-p", d, "-e", f"{d}/error.log", "-c", f"{d}/nginx.conf",
                               "-g", "daemon off;"], name, port)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def access_log(self):
        try:
            with open(os.path.join(self.dir, "access.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def nginx_site(port, socket_path=None, upstream=None, replacements=()):
    """detach.conf listening on 127.0.0.1:port; the upstream is the sandbox
    socket, or the given upstream block text in place of the shipped one."""
    site = render("detach.conf", [("listen 80;", f"listen 127.0.0.1:{port};"), *replacements])
    if upstream is not None:
        site = upstream + without_block(site, "upstream detach ")
    elif socket_path is not None:
        site = render(site, [(SHIPPED_SOCKET, socket_path)], shipped_file=False)
    return site


class Apache(ServerGroup):
    MODULES = ["mpm_event", "authz_core", "authz_host", "proxy", "proxy_fcgi"]

    def __init__(self, box, site, port, name="apache"):
        self.dir = d = box.path(name)
        os.makedirs(os.path.join(d, "run"))
        with open(os.path.join(d, "detach.conf"), "w") as f:
            f.write(site)
        modules = "".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so\n" for m in self.MODULES)
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        main = f"""ServerRoot "{d}"
ServerName localhost
DefaultRuntimeDir "{d}/run"
PidFile "{d}/apache2.pid"
Mutex file:{d}/run default
ErrorLog "{d}/error.log"
LogLevel warn proxy:info proxy_fcgi:info
{modules}{user}Listen 127.0.0.1:{port}
StartServers 1
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
MinSpareThreads 8
MaxSpareThreads 32
Timeout 30
KeepAlive On
LogFormat "%h \\"%r\\" %>s time_us=%D" detach
CustomLog "{d}/access.log" detach
Include "{d}/detach.conf"
"""
        with open(os.path.join(d, "apache2.conf"), "w") as f:
            f.write(main)
        self.port = port
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"}
        check = subprocess.run([APACHE, "-t", "-f", f"{d}/apache2.conf"], capture_output=True,
                               text=True, timeout=30, env=env)
        if check.returncode != 0:
            raise AssertionError("apache2 -t refused the config:\n" + check.stderr + check.stdout)
        super().__init__(box, [APACHE, "-DFOREGROUND", "-f", f"{d}/apache2.conf"], name, port,
                         env=env)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def access_log(self):
        try:
            with open(os.path.join(self.dir, "access.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def apache_site(port, socket_path=None, backend=None):
    """apache-detach.conf on *:port, to the sandbox socket, or to backend
    ("fcgi://127.0.0.1:PORT") over TCP."""
    site = render("apache-detach.conf", [("<VirtualHost *:80>", f"<VirtualHost *:{port}>")])
    if backend is not None:
        return render(site, [(f"unix:{SHIPPED_SOCKET}|fcgi://localhost", backend)], shipped_file=False)
    return render(site, [(SHIPPED_SOCKET, socket_path)], shipped_file=False)


# ---------------------------------------------------------------------------
# HTTP clients

class HttpResult:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name)


def http_request(port, path, method="GET", body=None, headers=None, timeout=10.0):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return HttpResult(response.status, response.headers, response.read())
    finally:
        connection.close()


def fire_and_forget(port, path, method="GET", body=b""):
    """fsockopen() style: write the request and close at once, reading nothing."""
    request = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
               f"Content-Length: {len(body)}\r\n").encode()
    if body:
        request += b"Content-Type: application/x-www-form-urlencoded\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request + b"\r\n" + body)


def trigger_binary():
    return harness.binary("detach-trigger")


# ---------------------------------------------------------------------------
# A TCP proxy that counts the connections it accepts: put between a front
# end and detachd, it shows how many FastCGI connections were opened.

class CountingProxy:
    def __init__(self, target):
        self.target = target
        self.accepted = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.closing = False
        self.sockets = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self.lock:
                self.accepted += 1
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.closing = True
        self.listener.close()
        self.thread.join(2)
        with self.lock:
            for s in self.sockets:
                try:
                    s.close()
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---------------------------------------------------------------------------
# Waiting on detachd logs

def ended_in(daemons, job_id):
    for daemon in daemons:
        found = daemon.events("ended", job=job_id)
        if found:
            return found[0]
    return None


def wait_ended(daemons, job_ids, timeout=20.0):
    """Every id has an `ended` event in one of the logs; returns {id: event}."""
    pending = set(job_ids)
    found = {}

    def check():
        for job_id in list(pending):
            event = ended_in(daemons, job_id)
            if event:
                found[job_id] = event
                pending.discard(job_id)
        return not pending

    try:
        harness.wait_for(check, timeout, "every acknowledged job to end")
    except AssertionError:
        raise AssertionError(f"{len(pending)} of {len(set(job_ids))} acknowledged jobs never "
                             f"ended: {sorted(pending)[:10]}")
    return found


def read_file(path, timeout=10.0):
    """A file the job writes whole (to a temp name, then mv)."""
    harness.wait_for(lambda: os.path.exists(path), timeout, path)
    with open(path) as f:
        return f.read()


def env_file(path):
    """KEY=VALUE lines, as written by `env > tmp && mv tmp file`."""
    values = {}
    for line in read_file(path).splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    return values


def accepted_ids(daemon, route=None):
    fields = {"route": route} if route else {}
    return [event["job"] for event in daemon.events("accepted", **fields)]

