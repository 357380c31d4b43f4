#!/usr/bin/env python3
"""The ABI check: the libraries show the world their public API and nothing else.

An application links libdetach.a (or libdetach-trigger.a) into its own
program, where every global symbol of the archive shares one namespace
with the application's and its other libraries'.  So:

  - every global symbol an archive defines is either public API (a
    `detach_*` function declared with DETACH_API in include/detach.h or
    include/detach_trigger.h) or internal with the `dt_` prefix, which
    no application is expected to use.  `detach_*` is reserved for the
    public API: an internal symbol under it would read as a promise;
  - libdetach.so exports exactly the DETACH_API functions of detach.h,
    libdetach-trigger.so exactly those of detach_trigger.h plus the
    detach.h calls whose code it carries (detach_last_error), nothing
    internal (-fvisibility=hidden does that; this proves it holds).

Usage: abi.py NM SOURCE_DIR libdetach.a libdetach-trigger.a libdetach.so
libdetach-trigger.so.  Exit 0 when clean; 1 with one line per problem.
"""
import re
import subprocess
import sys

# Symbol types that are definitions (nm's letters, upper case = global).
DEFINED = set("TDBRVWGSiu")

# What a sanitizer build's instrumentation adds (ASan's one-definition-rule
# markers, "__odr_asan.<global>"): the compiler's, in the implementation's
# reserved namespace, and absent from a release build.
INSTRUMENTATION = ("__odr_asan", "__asan_", "__ubsan_", "__sancov_")


def api_names(header):
    """The function names declared with DETACH_API in a header."""
    with open(header, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    names = set()
    for m in re.finditer(r"^\s*DETACH_API\s+([^;]*?)\(", text, flags=re.M):
        ident = re.findall(r"\w+", m.group(1))
        if ident:
            names.add(ident[-1])
    return names


def nm_globals(nm, path, dynamic):
    """Defined global symbols of an archive (or the dynamic exports of a .so)."""
    args = [nm, "--defined-only"] + (["-D"] if dynamic else ["-g"]) + [path]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in DEFINED:
            names.add(fields[2])
    return names


def main(argv):
    if len(argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    nm, src, static_lib, static_trigger, shared_lib, shared_trigger = argv[1:]
    lib_api = api_names(src + "/include/detach.h")
    trigger_api = api_names(src + "/include/detach_trigger.h")
    problems = []
    if not lib_api or not trigger_api:
        problems.append("no DETACH_API declaration found in the headers")

    for archive in (static_lib, static_trigger):
        for name in sorted(nm_globals(nm, archive, dynamic=False)):
            if name.startswith("dt_") or name.startswith(INSTRUMENTATION):
                continue
            if name in lib_api or name in trigger_api:
                continue
            problems.append(f"{archive}: global symbol {name} is neither public "
                            f"API nor dt_-prefixed")

    exported = nm_globals(nm, shared_lib, dynamic=True)
    for name in sorted(exported - lib_api):
        problems.append(f"{shared_lib}: exports {name}, not DETACH_API in detach.h")
    for name in sorted(lib_api - exported):
        problems.append(f"{shared_lib}: does not export {name} (DETACH_API in detach.h)")

    exported = nm_globals(nm, shared_trigger, dynamic=True)
    for name in sorted(exported - trigger_api - lib_api):
        problems.append(f"{shared_trigger}: exports {name}, not public API")
    for name in sorted(trigger_api - exported):
        problems.append(f"{shared_trigger}: does not export {name} "
                        f"(DETACH_API in detach_trigger.h)")

    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
