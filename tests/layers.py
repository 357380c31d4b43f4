#!/usr/bin/env python3
"""The layer check: dependencies between the sources point one way.

Every `#include "..."` in src/, include/, examples/ and the libdetach
application of the integration tests is an edge between two modules (a
module is a file stem: connection.c and connection.h are "connection").
Each module belongs to one layer:

    base < fcgi < io < sched < server < daemon, client < client-program

An include may point into its own layer or a lower one, never a higher
one; the public headers (include/detach.h) may be included from anywhere.
The programs are sealed: the daemon (detachd and its modules), the
detach-trigger command and the applications (examples/, job_app.c) include
only public headers and their own layer, never the library's internals.
Finally the module graph has no cycle, inside a layer or across.

ALLOWED lists today's known violations as (including file, included
header); every step of the restructuring deletes lines from it.  An
allowed edge is left out of the graph before the cycle search, so an
allowed back edge breaks its cycle; an entry that no longer matches an
include is itself an error, so the list only shrinks.

Exit 0 when clean; 1 with one line per problem otherwise.  Run from
anywhere: the tree is found from this file's place, or given as argv[1].
"""
import os
import re
import sys

LAYERS = ["base", "fcgi", "io", "sched", "server", "daemon", "client", "client-program"]
RANK = {"base": 0, "fcgi": 1, "io": 2, "sched": 3, "server": 4,
        "daemon": 5, "client": 5, "client-program": 6, "app": 6}
# Layers that may include only public headers and their own layer.
SEALED = {"daemon", "client-program", "app"}

MODULE_LAYER = {
    # base: logging, errors, threads, timers, wake-ups
    "error": "base", "log": "base", "thread": "base", "timer_heap": "base",
    "wakeup": "base", "shutdown": "base",
    # fcgi: the codec and the request reader, libfcgi's writer
    "fcgi_record": "fcgi", "request_reader": "fcgi", "fcgi_connection": "fcgi",
    # io: the event loop, the listening socket, a connection's life
    "watcher": "io", "listener": "io", "connection": "io",
    # sched: jobs, their threads and fibers, their ledger and spool
    "fiber": "sched", "parking": "sched", "executor": "sched", "job": "sched",
    "registry": "sched", "spool": "sched", "connection_status": "sched",
    "job_memory": "sched",
    # server: routes, requests, workers, the status page, options
    "server": "server", "server_core": "server", "route": "server",
    "request": "server", "worker": "server", "status_page": "server",
    "access": "server", "fd_budget": "server",
    # daemon: detachd, its configuration and scripts, detach-run
    "detachd": "daemon", "config": "daemon", "script": "daemon",
    "script_env": "daemon", "run_protocol": "daemon", "detach_run": "daemon",
    "job_log_prune": "daemon",
    # client: libdetach-trigger, and the detach-trigger command
    "trigger": "client", "job_status": "client", "cgi_head": "client",
    "detach_trigger": "client",            # include/detach_trigger.h
    "detach_trigger_main": "client-program",
    # the applications: public headers only
    "report_job": "app", "job_app": "app",
}
PUBLIC = {"detach"}                         # include/detach.h

# Known violations, (file, included header): none left.  Keep it empty;
# a new entry needs a reason written beside it.
ALLOWED = set()

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(root):
    for folder in ("src", "include", "examples"):
        for dirpath, _, names in os.walk(os.path.join(root, folder)):
            for name in sorted(names):
                if name.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(dirpath, name), root)
    yield os.path.join("tests", "integration", "job_app.c")


def module_of(path):
    return os.path.splitext(os.path.basename(path))[0]


def find_cycle(graph):
    """A cycle as a list of modules, or None (iterative depth-first search)."""
    colour = {node: 0 for node in graph}          # 0 new, 1 on the path, 2 done
    for start in sorted(graph):
        if colour[start]:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        colour[start] = 1
        while stack:
            following = next(stack[-1], None)
            if following is None:
                colour[path.pop()] = 2
                stack.pop()
            elif colour.get(following, 2) == 1:
                return path[path.index(following):] + [following]
            elif colour.get(following) == 0:
                colour[following] = 1
                path.append(following)
                stack.append(iter(sorted(graph[following])))
    return None


def check(root):
    problems, used, graph = [], set(), {}
    for path in sources(root):
        module = module_of(path)
        layer = MODULE_LAYER.get(module)
        if module not in PUBLIC and layer is None:
            problems.append(f"{path}: in no layer (add it to MODULE_LAYER)")
            continue
        graph.setdefault(module, set())
        with open(os.path.join(root, path), encoding="utf-8") as source:
            includes = INCLUDE.findall(source.read())
        for header in includes:
            target = module_of(header)
            if target == module or target in PUBLIC:
                continue
            if (path, header) in ALLOWED:
                used.add((path, header))
                continue
            target_layer = MODULE_LAYER.get(target)
            if target_layer is None:
                problems.append(f"{path}: includes {header}, in no layer")
                continue
            graph[module].add(target)
            if layer in SEALED and target_layer != layer and \
                    not (layer == "client-program" and target == "detach_trigger"):
                problems.append(f"{path}: includes {header} ({target_layer}): "
                                f"a {layer} source includes public headers and its own only")
            elif RANK[target_layer] > RANK[layer] or \
                    (RANK[target_layer] == RANK[layer] and target_layer != layer):
                problems.append(f"{path}: includes {header}: {layer} -> {target_layer} "
                                "points up (or sideways)")
    for path, header in sorted(ALLOWED - used):
        problems.append(f"ALLOWED ({path}, {header}) no longer matches an include: delete it")
    for node in list(graph):
        graph[node] &= set(graph)
    cycle = find_cycle(graph)
    if cycle:
        problems.append("include cycle: " + " -> ".join(cycle))
    return problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(here)
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"layers: {len(problems)} problem(s)")
        return 1
    print(f"layers: clean ({len(ALLOWED)} allowed edge(s) left)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
