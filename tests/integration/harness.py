"""Integration-test harness: real processes in a temp dir, on loopback only.

Every process a test starts is tracked by PID and stopped when the test
ends, pass or fail.  Readiness is a signal (a socket that accepts, a log
line that appears), never a fixed sleep; every wait has a deadline.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("DETACH_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
SANITIZED = os.environ.get("DETACH_SANITIZED") == "1"
TEST_TIMEOUT = int(os.environ.get("DETACH_TEST_TIMEOUT", "90"))


def binary(name):
    for candidate in (os.path.join(BUILD, name), os.path.join(BUILD, "tests", name)):
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f"{name} not built in {BUILD}")


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connectable(address):
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(address)
            return True
        except OSError:
            return False


def parse_logfmt(line):
    return dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line))


class Process:
    """A started process, stopped by PID when the sandbox closes."""

    def __init__(self, argv, log_path, env=None, cwd=None, preexec_fn=None, stdin=None):
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.popen = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                      stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                      env=env, cwd=cwd, preexec_fn=preexec_fn,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Signals the process, waits, and returns its exit status."""
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
                raise AssertionError(f"{self.argv[0]} did not stop within {timeout}s")
        self.log.close()
        return self.popen.returncode

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class Detachd(Process):
    def __init__(self, sandbox, config_path, args=(), env=None, preexec_fn=None, stdin=None,
                 wait_address=None, logs_to_stderr=True):
        self.sandbox = sandbox
        log_path = os.path.join(sandbox.dir, f"detachd-{len(sandbox.processes)}.log")
        super().__init__([binary("detachd"), "--config", config_path, *args], log_path,
                         env=env, preexec_fn=preexec_fn, stdin=stdin)
        sandbox.processes.append(self)
        address = wait_address or sandbox.socket
        wait_for(lambda: connectable(address) or not self.alive(), 15, "detachd to listen")
        # Connectable is not yet serving: the socket listens (its backlog
        # holds connections) a moment before the watcher accepts them, and
        # a burst of connects in that moment fills the backlog.
        if logs_to_stderr:
            wait_for(lambda: self.events("serving") or not self.alive(), 15, "detachd to serve")
        if not self.alive():
            raise AssertionError("detachd exited at start:\n" + self.text())

    def events(self, event=None, **fields):
        found = []
        for line in self.text().splitlines():
            entry = parse_logfmt(line)
            if event and entry.get("event") != event:
                continue
            if all(entry.get(k) == str(v) for k, v in fields.items()):
                found.append(entry)
        return found

    def wait_event(self, event, timeout=10.0, **fields):
        return wait_for(lambda: self.events(event, **fields), timeout,
                        f"event={event} {fields} in the detachd log")[0]

    def wait_events(self, event, count, timeout=10.0, **fields):
        """The log is written a few milliseconds behind (log.c gathers
        lines): waits until at least count such lines are there, and
        returns them all, so a caller can check for exactly count."""
        wait_for(lambda: len(self.events(event, **fields)) >= count, timeout,
                 f"{count} x event={event} {fields} in the detachd log")
        return self.events(event, **fields)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        status = super().stop(sig, timeout)
        text = self.text()
        if "Sanitizer" in text or "runtime error:" in text:
            raise AssertionError("sanitizer report in the detachd log:\n" + text[-4000:])
        return status


class Sandbox:
    """A temp dir with a socket path, scripts, configs; cleans up on exit."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="detach-test-")
        self.socket = os.path.join(self.dir, "detachd.sock")
        self.logs = os.path.join(self.dir, "logs")
        os.mkdir(self.logs)
        self.processes = []

    def path(self, name):
        return os.path.join(self.dir, name)

    def script(self, name, body):
        path = self.path(name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body.lstrip("\n"))
        os.chmod(path, 0o755)
        return path

    def config(self, routes, daemon=None, name="detachd.conf"):
        settings = {"listen": f"unix:{self.socket}", "log_dir": self.logs}
        settings.update(daemon or {})
        text = "[detachd]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
        for path, route in routes.items():
            text += f"\n[route {path}]\n" + "".join(f"{k} = {v}\n" for k, v in route.items())
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def detachd(self, routes=None, daemon=None, args=(), **kwargs):
        logs_to_stderr = (daemon or {}).get("log", "stderr") == "stderr"
        return Detachd(self, self.config(routes or {}, daemon), args,
                       logs_to_stderr=logs_to_stderr, **kwargs)

    def start(self, argv, name, **kwargs):
        process = Process(argv, self.path(name + ".log"), **kwargs)
        self.processes.append(process)
        return process

    def close(self):
        errors = []
        for process in reversed(self.processes):
            try:
                if process.alive():
                    process.stop(signal.SIGKILL, 10)
            except Exception as error:  # keep cleaning up
                errors.append(error)
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout(f"test exceeded {TEST_TIMEOUT}s")


def run(namespace):
    """Runs every test_* function in namespace; prints 'N passed, M failed'."""
    only = sys.argv[1:]
    tests = [(name, fn) for name, fn in namespace.items()
             if name.startswith("test_") and callable(fn) and (not only or name in only)]
    passed = failed = 0
    signal.signal(signal.SIGALRM, _alarm)
    for name, fn in tests:
        started = time.monotonic()
        signal.alarm(TEST_TIMEOUT)
        try:
            fn()
            passed += 1
            print(f"ok   {name} ({time.monotonic() - started:.1f}s)", flush=True)
        except BaseException:
            failed += 1
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
        finally:
            signal.alarm(0)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
