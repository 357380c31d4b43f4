#!/usr/bin/env python3
"""The layer check: dependencies between the sources point one way.

Every `#include "..."` in src/, include/, examples/ and the libdetach
application of the integration tests is an edge between two modules (a
module is a file less its extension: src/io/connection.c and .h are
"io/connection").  A module's layer is its folder under src/:

    base < fcgi < io < sched < server < daemon, client

An include may point into its own layer or a lower one, never a higher
one; include/detach.h may be included from anywhere, include/
detach_trigger.h is the client's.  The programs are sealed: the daemon
(src/daemon/), the detach-trigger command (src/client/
detach_trigger_main.c) and the applications (examples/, job_app.c) include
only public headers and their own folder's, never the libraries'
internals.  The libraries name every internal header by its layer
("io/connection.h", src/ being the one include root); the daemon, which
has no src/ on its include path, names its own headers bare.  Finally the
module graph has no cycle, inside a layer or across.

ALLOWED lists known violations as (including file, included header); it
is empty, and an entry that no longer matches an include is itself an
error, so it cannot fill up silently.

Exit 0 when clean; 1 with one line per problem otherwise.  Run from
anywhere: the tree is found from this file's place, or given as argv[1].
"""
import os
import re
import sys

RANK = {"base": 0, "fcgi": 1, "io": 2, "sched": 3, "server": 4,
        "daemon": 5, "client": 5, "client-program": 6, "app": 6}
# Layers that may include only public headers and their own folder's.
SEALED = {"daemon", "client-program", "app"}
PROGRAMS = {"src/client/detach_trigger_main.c": "client-program"}
PUBLIC_LAYER = {"include/detach.h": "public", "include/detach_trigger.h": "client"}

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


def layer_of(path):
    """The layer of a source or header path relative to the tree; None: none."""
    if path in PROGRAMS:
        return PROGRAMS[path]
    if path in PUBLIC_LAYER:
        return PUBLIC_LAYER[path]
    parts = path.split("/")
    if parts[0] == "src":
        return parts[1] if len(parts) == 3 and parts[1] in RANK else None
    if parts[0] == "examples" or path.endswith("integration/job_app.c"):
        return "app"
    return None


def module_of(path):
    return os.path.splitext(path)[0]


def resolve(root, path, header):
    """The tree path an include names, or None."""
    if "/" in header:
        candidate = os.path.join("src", header)
    else:
        candidate = os.path.join(os.path.dirname(path), header)
        if not os.path.exists(os.path.join(root, candidate)):
            candidate = os.path.join("include", header)
    return candidate if os.path.exists(os.path.join(root, candidate)) else None


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
        layer = layer_of(path)
        if layer is None:
            problems.append(f"{path}: in no layer (src/<layer>/ only)")
            continue
        module = module_of(path)
        graph.setdefault(module, set())
        with open(os.path.join(root, path), encoding="utf-8") as source:
            includes = INCLUDE.findall(source.read())
        for header in includes:
            if (path, header) in ALLOWED:
                used.add((path, header))
                continue
            target = resolve(root, path, header)
            if target is None:
                problems.append(f"{path}: includes {header}, found nowhere")
                continue
            target_layer = layer_of(target)
            if target_layer == "public" or module_of(target) == module:
                continue
            if target_layer is None:
                problems.append(f"{path}: includes {header}, in no layer")
                continue
            graph[module].add(module_of(target))
            # The command shares src/client/ with the library it is built on,
            # but not its internals: its own folder is no excuse.
            own_folder = os.path.dirname(target) == os.path.dirname(path) and \
                layer != "client-program"
            if layer in SEALED and not own_folder and \
                    not (layer == "client-program" and target == "include/detach_trigger.h"):
                problems.append(f"{path}: includes {header} ({target_layer}): "
                                f"a {layer} source includes public headers and its own only")
            elif RANK[target_layer] > RANK[layer] or \
                    (RANK[target_layer] == RANK[layer] and target_layer != layer):
                problems.append(f"{path}: includes {header}: {layer} -> {target_layer} "
                                "points up (or sideways)")
            elif target.startswith("src/") and layer != "daemon" and "/" not in header:
                problems.append(f"{path}: includes {header} bare; name its layer "
                                f"(\"{target[len('src/'):]}\")")
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
