"""The Debian packages, as an operator meets them: built by the project
(cpack -G DEB in a tree of its own, prefix /usr), installed with dpkg -i,
checked (paths, conffiles, the detach user and its directories,
systemd-analyze verify on the installed units, detachd --check-config on
the installed configuration, the -dev package's headers and pkg-config
files), one job triggered through the installed binaries with detachd
running as the detach user, then purged: nothing of the packages is left,
and the detach user goes too if this test made it.

It installs into the real system, so it needs root (CI and the
developers' machines are), refuses to touch a detach package it did not
install, and always purges what it installed.  The build tree's binaries,
which every other test uses by absolute path, are never shadowed.
"""

import glob
import grp
import os
import pwd
import shutil
import subprocess
import time

import harness

ROOT = os.path.abspath(os.path.join(harness.HERE, "..", ".."))
PACKAGES = ["detach", "libdetach1", "libdetach-trigger1", "libdetach-dev"]
STATUS = "/detach-status"


def run(argv, timeout=120, check=True, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert result.returncode == 0, (argv, result.returncode, result.stdout[-3000:],
                                        result.stderr[-3000:])
    return result


def installed(package):
    result = run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
    return result.returncode == 0 and ("ok installed" in result.stdout or
                                       "config-files" in result.stdout)


def dpkg(*args):
    """dpkg, waiting (bounded) while another dpkg or apt holds the lock."""
    deadline = time.monotonic() + 300
    while True:
        result = run(["dpkg", *args], timeout=300, check=False)
        locked = "lock" in result.stderr and ("held" in result.stderr or "locked" in result.stderr)
        if not locked or time.monotonic() > deadline:
            assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
            return result
        time.sleep(2)


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def build_packages(box):
    build = box.path("pkg-build")
    run(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
         "-DCMAKE_INSTALL_PREFIX=/usr", "-DDETACH_TESTS=OFF"], timeout=300)
    run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2)], timeout=900)
    run(["cpack", "-G", "DEB"], timeout=600, cwd=build)
    debs = sorted(glob.glob(os.path.join(build, "*.deb")))
    names = {run(["dpkg-deb", "-f", deb, "Package"]).stdout.strip(): deb for deb in debs}
    assert sorted(names) == sorted(PACKAGES), names
    return names


def check_installed_layout():
    for path in ("/usr/sbin/detachd", "/usr/bin/detach-trigger"):
        assert os.access(path, os.X_OK), path
    for path in ("/etc/detach/detachd.conf", "/etc/logrotate.d/detach",
                 "/lib/systemd/system/detachd.service", "/lib/systemd/system/detachd.socket",
                 "/usr/share/man/man8/detachd.8", "/usr/share/man/man1/detach-trigger.1",
                 "/usr/share/man/man3/libdetach.3", "/usr/include/detach.h",
                 "/usr/include/detach_trigger.h", "/usr/share/doc/detach/deploy.md",
                 "/usr/share/doc/detach/examples/detach.conf",
                 "/usr/share/doc/detach/examples/apache-detach.conf",
                 "/usr/share/doc/detach/examples/detachd.conf.example"):
        assert os.path.isfile(path), path
    multiarch = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).stdout.strip()
    for name in ("libdetach.so.1", "libdetach-trigger.so.1", "libdetach.so", "libdetach.a",
                 "pkgconfig/detach.pc", "pkgconfig/detach-trigger.pc"):
        assert os.path.exists(f"/usr/lib/{multiarch}/{name}"), name
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "detach"]).stdout
    assert "/etc/detach/detachd.conf" in conffiles and "/etc/logrotate.d/detach" in conffiles, \
        conffiles
    # The detach user, its directories, and the configuration it may read.
    user = pwd.getpwnam("detach")
    assert user.pw_uid < 1000, user
    for directory in ("/var/lib/detach", "/var/log/detach"):
        status = os.stat(directory)
        assert status.st_uid == user.pw_uid and status.st_gid == user.pw_gid, directory
        assert status.st_mode & 0o777 == 0o750, (directory, oct(status.st_mode))
    config = os.stat("/etc/detach/detachd.conf")
    assert config.st_uid == 0 and config.st_gid == user.pw_gid, config
    assert config.st_mode & 0o777 == 0o640, oct(config.st_mode)


def check_units_and_config():
    verify = run(["systemd-analyze", "verify", "/lib/systemd/system/detachd.socket",
                  "/lib/systemd/system/detachd.service"], check=False)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    service = open("/lib/systemd/system/detachd.service").read()
    for line in ("Type=notify", "ExecStart=/usr/sbin/detachd --config /etc/detach/detachd.conf",
                 "User=detach", "Documentation=man:detachd(8) file:///usr/share/doc/detach/deploy.md"):
        assert line in service.splitlines(), line
    check = run(["/usr/sbin/detachd", "--check-config", "--config", "/etc/detach/detachd.conf"],
                check=False)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("/etc/detach/detachd.conf: ok"), check.stdout
    man = run(["man", "-w", "detachd"], check=False)
    assert man.returncode == 0 and "/usr/share/man/man8/detachd.8" in man.stdout, man


def check_dev_package(box):
    """A program built against the installed headers and pkg-config files."""
    source = box.path("client.c")
    with open(source, "w") as f:
        f.write("""
#include <stdio.h>
#include <detach.h>
#include <detach_trigger.h>
int main(void)
{
    detach_options options;
    detach_options_init(&options);
    detach_trigger_options trigger;
    detach_trigger_options_init(&trigger);
    (void)trigger;
    puts(DETACH_VERSION);
    return 0;
}
""")
    flags = run(["pkg-config", "--cflags", "--libs", "detach", "detach-trigger"]).stdout.split()
    binary = box.path("client")
    run(["cc", source, "-o", binary, *flags])
    assert run([binary]).stdout.strip() == run(["/usr/sbin/detachd", "--version"]) \
        .stdout.split()[1]


def trigger_one_job_as_the_detach_user(box):
    """The installed detachd as the detach user, with its spool in
    /var/lib/detach and its job logs in /var/log/detach (the package's
    directories), and the installed detach-trigger following the job."""
    job = "/var/lib/detach/test-job.sh"
    socket_path = "/var/lib/detach/test.sock"
    with open(job, "w") as f:
        f.write('#!/bin/sh\necho "50 half" >&3\necho "ran as $(id -un)"\n')
    os.chmod(job, 0o755)
    config = box.path("packaged.conf")
    with open(config, "w") as f:
        f.write(f"""[detachd]
listen = unix:{socket_path}
spool = /var/lib/detach/spool
log_dir = /var/log/detach
status_path = {STATUS}
status_allow = 127.0.0.1 ::1

[route /jobs/report]
command = {job}
""")
    os.chmod(config, 0o644)
    os.chmod(box.dir, 0o755)   # so the detach user can read the config in it
    # setpriv execs detachd itself (runuser would stay as its parent).
    daemon = box.start(["setpriv", "--reuid=detach", "--regid=detach", "--init-groups",
                        "/usr/sbin/detachd", "--config", config],
                       "installed-detachd")
    harness.wait_for(lambda: harness.connectable(socket_path) or not daemon.alive(), 15,
                     "the installed detachd to listen")
    assert daemon.alive(), daemon.text()
    trigger = run(["/usr/bin/detach-trigger", "--fcgi", "unix:" + socket_path, "--wait-done",
                   "--timeout", "30", "/jobs/report?from=package"], timeout=60, check=False)
    assert trigger.returncode == 0, (trigger.stderr, daemon.text())
    job_id = trigger.stdout.strip()
    log = f"/var/log/detach/{job_id}.log"
    with open(log) as f:
        assert f.read().strip() == "ran as detach"
    assert os.stat(log).st_uid == pwd.getpwnam("detach").pw_uid
    assert os.path.isdir("/var/lib/detach/spool")
    assert daemon.stop() == 0, daemon.text()


def purge_and_check_nothing_is_left(files, made_user):
    dpkg("--purge", *PACKAGES)
    for package in PACKAGES:
        assert not installed(package), package
    left = [path for path in files if os.path.lexists(path) and not os.path.isdir(path)]
    assert not left, left
    for directory in ("/etc/detach", "/var/lib/detach", "/var/log/detach",
                      "/usr/share/doc/detach"):
        assert not os.path.exists(directory), directory
    if made_user:
        remove_user()
        assert not user_exists("detach") and not group_exists("detach")


def remove_user():
    if user_exists("detach"):
        run(["userdel", "detach"])
    if group_exists("detach"):
        run(["groupdel", "detach"])


def test_package_builds_installs_runs_and_purges():
    assert os.geteuid() == 0, "the package test installs packages: it must run as root"
    for tool in ("dpkg", "cpack", "systemd-analyze", "setpriv", "pkg-config"):
        assert shutil.which(tool), f"{tool} is missing (tests/run installs it)"
    already = [package for package in PACKAGES if installed(package)]
    assert not already, f"{already} already installed: not touching a system package"
    with harness.Sandbox() as box:
        debs = build_packages(box)
        made_user = not user_exists("detach")
        try:
            dpkg("-i", *debs.values())
            files = []
            for package in PACKAGES:
                files += run(["dpkg", "-L", package]).stdout.split()
            check_installed_layout()
            check_units_and_config()
            check_dev_package(box)
            trigger_one_job_as_the_detach_user(box)
            purge_and_check_nothing_is_left(files, made_user)
        finally:
            # Whatever failed above: leave no package, and no user we made.
            if any(installed(package) for package in PACKAGES):
                dpkg("--purge", *PACKAGES)
            if made_user:
                remove_user()

def test_docs_speak_of_the_project_and_start_from_the_package():
    """The docs the package installs: api.md names no file users do not
    have; deploy.md starts from the package."""
    with open(os.path.join(ROOT, "docs", "api.md")) as f:
        api = f.read()
    assert "/work/" not in api and "PRODUCT.md" not in api
    with open(os.path.join(ROOT, "docs", "deploy.md")) as f:
        deploy = f.read()
    first_section = deploy.split("\n## ")[1]
    assert first_section.startswith("From the package"), first_section[:200]
    for step in ("apt install ./detach_*.deb", "/etc/detach/detachd.conf",
                 "detachd --check-config --config /etc/detach/detachd.conf",
                 "systemctl enable --now detachd.socket detachd.service"):
        assert step in first_section, step


if __name__ == "__main__":
    harness.run(globals())
