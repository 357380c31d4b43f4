#!/usr/bin/env python3
"""bench/report.py OUT_DIR RESULTS_DIR - the arithmetic of bench/run.

Reads what bench/run left in OUT_DIR (one directory per case: meta, wrk
output with a WRK_JSON line from bench/wrk_report.lua, loadgen JSON, the
detach log named in meta), prints the table and the targets, writes
RESULTS_DIR/<timestamp>.json and latest.json, and draws RESULTS_DIR/acks.png
with gnuplot.
"""

import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys


def read_meta(path):
    meta = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "=" in line:
                    key, value = line.rstrip("\n").split("=", 1)
                    meta[key] = value
    return meta


def wrk_json(path):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("WRK_JSON "):
                    return json.loads(line[len("WRK_JSON "):])
    except OSError:
        pass
    return None


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    index = max(0, min(len(values) - 1, int(round(p / 100.0 * len(values))) - 1))
    return values[index]


TS = re.compile(r"^ts=(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z ")


def ts_ms(line):
    m = TS.match(line)
    if not m:
        return None
    y, mo, d, h, mi, s, ms = (int(x) for x in m.groups())
    t = datetime.datetime(y, mo, d, h, mi, s, tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 1000 + ms


def scan_log(path):
    """Counts of detach's events, waited_ms of every start, start times."""
    result = {"accepted": 0, "started": 0, "ended": 0, "rejected": 0, "failed": 0,
              "errors": 0, "waited_ms": [], "started_ms": []}
    if not path or not os.path.exists(path):
        return None
    with open(path, errors="replace") as f:
        for line in f:
            if " event=accepted " in line:
                result["accepted"] += 1
            elif " event=started " in line:
                result["started"] += 1
                m = re.search(r" waited_ms=(\d+)", line)
                if m:
                    result["waited_ms"].append(int(m.group(1)))
                t = ts_ms(line)
                if t is not None:
                    result["started_ms"].append(t)
            elif " event=ended " in line:
                result["ended"] += 1
                if " result=failed" in line:
                    result["failed"] += 1
            elif " event=rejected " in line:
                result["rejected"] += 1
            if " level=error " in line:
                result["errors"] += 1
    return result


def summarize_wrk(w):
    if not w:
        return None
    seconds = w["duration_us"] / 1e6
    errors = w["errors"]
    ok = w["requests"] - errors["status"]
    return {
        "requests": w["requests"],
        "ok": ok,
        "non_2xx": errors["status"],
        "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        "timeouts": errors["timeout"],
        "seconds": round(seconds, 3),
        "acks_per_s": round(ok / seconds, 1) if seconds else 0,
        "answers_per_s": round(w["requests"] / seconds, 1) if seconds else 0,
        "latency_ms": {k: round(w["latency_us"][k] / 1000.0, 3)
                       for k in ("mean", "p50", "p90", "p99", "p99_9", "max")},
    }


def collect(out_dir):
    cases = {}
    for name in sorted(os.listdir(out_dir)):
        directory = os.path.join(out_dir, name)
        meta_path = os.path.join(directory, "meta")
        if not os.path.isdir(directory) or name == "profile" or not os.path.exists(meta_path):
            continue
        meta = read_meta(meta_path)
        case = {"name": name, "system": meta.get("system"), "case": meta.get("case"),
                "title": meta.get("title")}
        measured = summarize_wrk(wrk_json(os.path.join(directory, "wrk.txt")))
        warmup = summarize_wrk(wrk_json(os.path.join(directory, "wrk_warmup.txt")))
        if measured:
            case["wrk"] = measured
        if warmup:
            case["wrk_warmup"] = {k: warmup[k] for k in ("requests", "ok", "non_2xx", "socket_errors")}
        for extra in ("loadgen", "fire", "bare", "bare2", "warmup"):
            data = load_json(os.path.join(directory, extra + ".json"))
            if data is None:
                continue
            if extra in ("loadgen", "fire", "warmup"):
                data.pop("url", None)
            if extra == "warmup":   # only what says it went as meant
                data = {k: data.get(k) for k in ("sent", "answered", "status", "errors")}
            case[extra] = data
        log = scan_log(meta.get("log"))
        if log:
            waited = log.pop("waited_ms")
            starts = log.pop("started_ms")
            log["waited_ms_p50"] = percentile(waited, 50)
            log["waited_ms_p99"] = percentile(waited, 99)
            log["waited_ms_max"] = max(waited) if waited else None
            if len(starts) > 1 and max(starts) > min(starts):
                log["start_rate_per_s"] = round((len(starts) - 1) / ((max(starts) - min(starts)) / 1000.0), 1)
            case["log"] = log
        for key, value in meta.items():
            if key in ("system", "case", "title", "log"):
                continue
            try:
                case.setdefault("meta", {})[key] = int(value)
            except ValueError:
                case.setdefault("meta", {})[key] = value
        seen_ok = (measured["ok"] if measured else 0) + (warmup["ok"] if warmup else 0)
        case["ok_seen"] = seen_ok
        cases[name] = case
    return cases


def fmt(value, digits=0):
    if value is None:
        return "-"
    if isinstance(value, float) and not digits and abs(value) < 10:
        return f"{value:.1f}"
    if isinstance(value, float) and digits and abs(value) >= 100:
        return f"{value:,.0f}"
    if isinstance(value, float) and digits:
        return f"{value:.{digits}f}"
    if isinstance(value, (int, float)):
        return f"{value:,.0f}"
    return str(value)


def ratio(a, b):
    if not a or not b:
        return None
    return a / b


def build_table(cases):
    order = ["return", "proxy", "c_a", "proxy_again", "c_a_again", "c_spool", "c_b", "c_a2", "c_b2",
             "c_a3", "c_b3", "c_b_default", "c_ref_memory", "c_ref_memory_huge", "c_c_none", "c_c", "s_a", "s_b",
             "php_a", "php_b", "fcgiwrap_a", "fcgiwrap_b"]
    proxy = cases.get("proxy", {}).get("wrk", {}).get("acks_per_s")
    proxy_again = cases.get("proxy_again", {}).get("wrk", {}).get("acks_per_s")
    php = {"a": cases.get("php_a", {}).get("wrk", {}).get("acks_per_s"),
           "b": cases.get("php_b", {}).get("wrk", {}).get("acks_per_s")}
    rows = []
    for name in order:
        case = cases.get(name)
        if not case or "wrk" not in case:
            continue
        w = case["wrk"]
        log = case.get("log")
        meta = case.get("meta", {})
        if log and meta.get("drained") == 0:   # killed after its measurement
            done = "not waited for"
            wait = f"{fmt(log['waited_ms_p50'])}/{fmt(log['waited_ms_p99'])}"
        elif log:
            done = f"{log['ended']:,}/{log['accepted']:,}"
            wait = f"{fmt(log['waited_ms_p50'])}/{fmt(log['waited_ms_p99'])}"
        elif "markers" in meta:
            done = f"{meta['markers']:,}/{case['ok_seen']:,}"
            wait = "-"
        else:
            done, wait = "-", "-"
        rss = meta.get("rss_kb_loaded") or meta.get("rss_kb_with_jobs") or meta.get("rss_kb")
        row = {
            "name": name,
            "system": case["system"],
            "case": case["case"],
            "acks_per_s": w["acks_per_s"],
            "x_proxy": ratio(w["acks_per_s"], proxy_again if name.endswith("_again") and proxy_again
                             else proxy),
            "x_php": ratio(w["acks_per_s"], php.get(case["case"])) if case["case"] in php else None,
            "p50": w["latency_ms"]["p50"], "p99": w["latency_ms"]["p99"],
            "p99_9": w["latency_ms"]["p99_9"],
            "non_2xx": w["non_2xx"], "socket_errors": w["socket_errors"],
            "done": done, "wait": wait,
            "rss_mib": round(rss / 1024.0, 1) if rss else None,
        }
        rows.append(row)
    return rows


def table_text(rows):
    header = ["system", "case", "acks/s", "x proxy", "x PHP", "p50 ms", "p99 ms", "p99.9 ms",
              "non-2xx", "sock err", "jobs ended/acked", "ack->start p50/p99 ms", "RSS MiB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        cells = [r["system"], r["case"], fmt(r["acks_per_s"]),
                 fmt(r["x_proxy"], 2) if r["x_proxy"] is not None else "-",
                 fmt(r["x_php"], 1) if r["x_php"] is not None else "-",
                 fmt(r["p50"], 2), fmt(r["p99"], 2), fmt(r["p99_9"], 2),
                 fmt(r["non_2xx"]), fmt(r["socket_errors"]), r["done"], r["wait"],
                 fmt(r["rss_mib"], 1) if r["rss_mib"] is not None else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(cases):
    result = []

    def add(name, met, detail):
        result.append({"target": name, "met": bool(met) if met is not None else None,
                       "detail": detail})

    def acks(name):
        return cases.get(name, {}).get("wrk", {}).get("acks_per_s")

    def p99(name):
        return cases.get(name, {}).get("wrk", {}).get("latency_ms", {}).get("p99")

    # Ratios between cases measured back to back: detach's (a) again just
    # before PHP-FPM's, the proxy again just before it.  Results from
    # before those cases existed have (a) and the first proxy only.
    c_a, php_a, proxy = acks("c_a"), acks("php_a"), acks("proxy")
    again, proxy_again = acks("c_a_again"), acks("proxy_again")
    if php_a and again:
        detail = (f"{again:,.0f} (detach's (a) just before PHP-FPM's) vs PHP-FPM {php_a:,.0f}: "
                  f"{again / php_a:.2f}x")
        if c_a:
            detail += f"; (a) at the run's start {c_a:,.0f}: {c_a / php_a:.2f}x"
        add("no-job acks/s >= 2.5x PHP-FPM", again >= 2.5 * php_a, detail)
    elif php_a and c_a:
        add("no-job acks/s >= 2.5x PHP-FPM", c_a >= 2.5 * php_a,
            f"{c_a:,.0f} vs PHP-FPM {php_a:,.0f}: {c_a / php_a:.2f}x")
    if c_a and proxy:
        detail = f"{c_a:,.0f} vs proxy {proxy:,.0f}: {c_a / proxy:.2f}x"
        mean = c_a / proxy
        if again and proxy_again:
            mean = (mean + again / proxy_again) / 2
            detail += (f" at the run's start; {again:,.0f} vs {proxy_again:,.0f}: "
                       f"{again / proxy_again:.2f}x before PHP-FPM; mean {mean:.2f}x")
        add("no-job acks/s >= nginx proxy ceiling", mean >= 1.0, detail)
    for b_name, label in (("c_b", "2-s C jobs"),
                          ("c_b_default", "2-s C jobs, job memory as needed (the default)")):
        if b_name not in cases:
            continue
        c_b = acks(b_name)
        if not (c_a and c_b):
            continue
        add(f"{label}: acks/s >= 80% of no-job", c_b >= 0.8 * c_a,
            f"{c_b:,.0f} vs {c_a:,.0f}: {100 * c_b / c_a:.0f}%")
        bound = p99("c_ref_memory") if b_name == "c_b_default" else None
        ref = cases.get("c_ref_memory", {}).get("meta", {})
        detail = f"{p99(b_name):.2f} ms vs {p99('c_a'):.2f} ms: {p99(b_name) / p99('c_a'):.2f}x"
        ratios = [p99(b_name) / p99("c_a")]
        if b_name == "c_b":
            # The pairs measured back to back after the first: the median
            # of the ratios, as one 10-s p99 moves by a quarter run to run.
            for pair in ("2", "3"):
                if p99("c_a" + pair) and p99("c_b" + pair):
                    ratios.append(p99("c_b" + pair) / p99("c_a" + pair))
                    detail += (f"; pair {pair}: {p99('c_b' + pair):.2f} vs "
                               f"{p99('c_a' + pair):.2f} ms: {ratios[-1]:.2f}x")
            if len(ratios) > 1:
                detail += f"; median of the {len(ratios)} pairs {statistics.median(ratios):.2f}x"
        if bound:
            detail += (f"; {bound:.2f} ms for /noop beside a bare process holding "
                       f"{ref.get('hold_mib')} MiB as the measured run began and taking "
                       f"{ref.get('grow_mib_per_s')} MiB/s more, as this case did (the "
                       f"machine's bound)")
            huge = p99("c_ref_memory_huge")
            if huge:
                detail += (f", {huge:.2f} ms with that memory taken as detach's memory "
                           f"thread takes it (huge pages, 32 MiB at once)")
        add(f"{label}: ack p99 <= 1.5x no-job p99", statistics.median(ratios) <= 1.5, detail)
        w = cases[b_name]["wrk"]
        warm = cases[b_name].get("wrk_warmup", {})
        add(f"{label}: no errors", w["non_2xx"] == 0 and w["socket_errors"] == 0 and
            warm.get("non_2xx", 0) == 0 and warm.get("socket_errors", 0) == 0,
            f"non-2xx {w['non_2xx'] + warm.get('non_2xx', 0)}, "
            f"socket errors {w['socket_errors'] + warm.get('socket_errors', 0)}")
        log = cases[b_name].get("log") or {}
        if cases[b_name].get("meta", {}).get("drained") == 0:
            continue   # acks only: its queue was not worked off
        add(f"{label}: every acked job completes",
            log.get("ended") == log.get("accepted") and
            log.get("accepted", 0) >= cases[b_name]["ok_seen"] and log.get("failed", 1) == 0,
            f"ended {log.get('ended')} of accepted {log.get('accepted')} "
            f"(wrk saw {cases[b_name]['ok_seen']} 200s); ack->start p50/p99 "
            f"{log.get('waited_ms_p50')}/{log.get('waited_ms_p99')} ms")
    for c_name, label in (("c_c", "detach_sleep"),):
        cc = cases.get(c_name)
        if not cc or "meta" not in cc:
            continue
        m = cc["meta"]
        jobs = m.get("in_flight_before", 0)
        delta_kb = m.get("rss_kb_with_jobs", 0) - m.get("rss_kb_before", 0)
        per_job = delta_kb / jobs if jobs else None
        sys_kb = m.get("mem_available_kb_before", 0) - m.get("mem_available_kb_with_jobs", 0)
        cc["memory_per_job_kib"] = round(per_job, 2) if per_job else None
        cc["system_memory_per_job_kib"] = round(sys_kb / jobs, 2) if jobs else None
        add(f"{jobs:,} C jobs in flight ({label}): < 64 KiB per job",
            per_job is not None and per_job < 64,
            f"VmRSS {m.get('rss_kb_before', 0) / 1024:.1f} -> "
            f"{m.get('rss_kb_with_jobs', 0) / 1024:.1f} MiB: {per_job:.1f} KiB/job "
            f"(system-wide MemAvailable drop: {sys_kb / jobs:.1f} KiB/job, kernel stacks and "
            f"page tables included)" if per_job else "no jobs in flight")
        # "With none": the same server just before its jobs were fired, back
        # to back, with (a), minutes earlier, beside it; results from before
        # that case existed have (a) only.
        c_c = acks(c_name)
        base_name = c_name + "_none" if acks(c_name + "_none") else "c_a"
        base = acks(base_name)
        if c_c and base:
            add(f"{jobs:,} C jobs in flight ({label}): acks as fast as with none (>= 90%)",
                c_c >= 0.9 * base and m.get("in_flight_after", 0) >= jobs,
                (f"{c_c:,.0f} vs (a) {base:,.0f}: " if base_name == "c_a" else
                 f"{c_c:,.0f} vs {base:,.0f} on the same server just before the jobs came: ") +
                f"{100 * c_c / base:.0f}%, p99 {p99(c_name):.2f} vs {p99(base_name):.2f} ms" +
                (f"; vs (a) at the run's start {c_a:,.0f}: {100 * c_c / c_a:.0f}%"
                 if c_a and base_name != "c_a" else "") +
                f"; in flight before/after the run: {jobs}/{m.get('in_flight_after')}")
    room, ref = cases.get("s_room", {}).get("loadgen"), cases.get("c_ref", {}).get("loadgen")
    bound = cases.get("c_ref_spawns", {}).get("loadgen")
    if room and ref:
        room_p99 = room["latency_us"]["ok"]["p99"] / 1000.0
        ref_p99 = ref["latency_us"]["ok"]["p99"] / 1000.0
        m = cases["s_room"].get("meta", {})
        add("script jobs: ack p99 while the queue has room as without jobs (<= 1.5x)",
            room_p99 <= 1.5 * ref_p99,
            f"{room['ok_before_first_non_2xx']} acks before the first 503 "
            f"(max_jobs {m.get('max_jobs')} + queue {m.get('queue')}); p99 {room_p99:.2f} ms "
            f"vs {ref_p99:.2f} ms for /noop with the same client" +
            (f"; {bound['latency_us']['ok']['p99'] / 1000.0:.2f} ms for /noop beside 64 bare "
             f"spawns of the same script (the machine's bound)" if bound else ""))
        statuses = room.get("status", {})
        clean = (set(statuses) <= {"200", "503"} and statuses.get("503", 0) > 0 and
                 sum(room["errors"].values()) == 0)
        late_ok = room["ok"] - room["ok_before_first_non_2xx"]
        add("script jobs: past the queue, clean 503", clean,
            f"statuses {statuses}, socket errors {sum(room['errors'].values())}, "
            f"503 p99 {room['latency_us']['non_2xx']['p99'] / 1000.0:.2f} ms; "
            f"{late_ok} 200s after the first 503 (room freed by ending jobs)")
    spawn = cases.get("spawn")
    if spawn and spawn.get("log") and spawn.get("bare"):
        bare = [spawn["bare"]["spawns_per_s"]] + ([spawn["bare2"]["spawns_per_s"]] if spawn.get("bare2") else [])
        bare_rate = sum(bare) / len(bare)
        rate = spawn["log"].get("start_rate_per_s")
        spawn["bare_spawns_per_s"] = round(bare_rate, 1)
        add("script jobs: start rate >= 80% of a bare posix_spawn loop",
            rate is not None and rate >= 0.8 * bare_rate,
            f"{rate} starts/s vs {bare_rate:.1f} spawns/s ({', '.join(f'{b:.0f}' for b in bare)}): "
            f"{100 * rate / bare_rate:.0f}%" if rate else "no start rate")
    return result


def profile_summary(out_dir):
    profile = {}
    directory = os.path.join(out_dir, "profile")
    for name in ("callgrind_self", "callgrind_inclusive", "perf_self", "perf_children"):
        path = os.path.join(directory, name + ".txt")
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                profile[name] = f.read()
    meta = read_meta(os.path.join(directory, "meta"))
    if meta:
        profile["hardware_instructions_counter"] = meta.get("hardware_instructions") == "1"
    for name in ("callgrind_load",):
        data = load_json(os.path.join(directory, name + ".json"))
        if data:
            data.pop("url", None)
            profile[name] = data
    return profile


def plot(cases, results_dir, stamp):
    systems = [
        ("nginx return", ["return", None, None]),
        ("nginx proxy", ["proxy", None, None]),
        ("detach C", ["c_a", "c_b", "c_c"]),
        ("detachd script", ["s_a", "s_b", None]),
        ("PHP-FPM", ["php_a", "php_b", None]),
        ("fcgiwrap", ["fcgiwrap_a", "fcgiwrap_b", None]),
    ]
    data_path = os.path.join(results_dir, "acks.dat")
    with open(data_path, "w") as f:
        for label, names in systems:
            values = []
            for name in names:
                value = cases.get(name, {}).get("wrk", {}).get("acks_per_s") if name else None
                values.append(f"{value:.1f}" if value else "-")
            f.write(f"\"{label}\" {' '.join(values)}\n")
    png = os.path.join(results_dir, "acks.png")
    script = f"""
set terminal pngcairo size 1100,600 font "DejaVu Sans,10"
set output "{png}"
set title "Acknowledgements per second behind one nginx worker (wrk -t2 -c32, 2 cores) - {stamp}"
set datafile missing "-"
v(x) = x < 10 ? sprintf("%.1f", x) : sprintf("%.0f", x)
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [0.1:300000]
set ylabel "2xx answers per second (log scale)"
set grid ytics
set key top right
set xtics nomirror
set format y "%g"
set xtics font ",9"
plot "{data_path}" using 2:xtic(1) title "(a) no job", \\
     "" using 3 title "(b) a 2-s job per trigger", \\
     "" using 4 title "(c) with 10,000 jobs in flight", \\
     "" using ($0-0.25):2:(v($2)) with labels offset 0,0.6 font ",8" notitle, \\
     "" using ($0):3:(v($3)) with labels offset 0,0.6 font ",8" notitle, \\
     "" using ($0+0.25):4:(v($4)) with labels offset 0,0.6 font ",8" notitle
"""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return None
    run = subprocess.run([gnuplot], input=script, text=True, capture_output=True, timeout=60)
    if run.returncode != 0:
        sys.stderr.write("gnuplot: " + run.stderr)
        return None
    return png


def main():
    out_dir, results_dir = sys.argv[1], sys.argv[2]
    os.makedirs(results_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    machine = read_meta(os.path.join(out_dir, "machine"))
    cases = collect(out_dir)
    rows = build_table(cases)
    goals = targets(cases)
    result = {
        "timestamp": stamp,
        "machine": machine,
        "cases": cases,
        "table": rows,
        "targets": goals,
        "profile": profile_summary(out_dir),
    }
    png = plot(cases, results_dir, stamp)
    if png:
        result["plot"] = os.path.basename(png)
    for name in (f"{stamp}.json", "latest.json"):
        with open(os.path.join(results_dir, name), "w") as f:
            json.dump(result, f, indent=1, sort_keys=False)
            f.write("\n")

    print()
    print(f"machine: {machine.get('nproc')} cores ({machine.get('cpu')}), "
          f"{int(machine.get('mem_total_kb', 0)) // 1024} MiB, Linux {machine.get('kernel')}, "
          f"nginx {machine.get('nginx')}, PHP {machine.get('php_fpm')}, wrk {machine.get('wrk')}")
    print(f"wrk -t{machine.get('threads')} -c{machine.get('connections')}, "
          f"{machine.get('warmup_s')} s warm-up + {machine.get('seconds_per_case')} s per case, "
          f"one nginx worker")
    print()
    print(table_text(rows))
    print()
    for name in ("s_room", "c_ref", "c_ref_spawns"):
        lg = cases.get(name, {}).get("loadgen")
        if lg:
            print(f"{name}: {cases[name]['title']}: statuses {lg['status']}, "
                  f"2xx p50/p99 {lg['latency_us']['ok']['p50'] / 1000:.2f}/"
                  f"{lg['latency_us']['ok']['p99'] / 1000:.2f} ms, "
                  f"{lg['ok_before_first_non_2xx']} 2xx before the first non-2xx")
    spawn = cases.get("spawn")
    if spawn:
        print(f"spawn: bare posix_spawn loop {spawn.get('bare_spawns_per_s')} /s, "
              f"detachd job starts {spawn.get('log', {}).get('start_rate_per_s')} /s "
              f"({spawn.get('log', {}).get('ended')} ended)")
    for name in ("c_c",):
        cc = cases.get(name)
        if cc and "memory_per_job_kib" in cc:
            print(f"{name}: {cc['meta'].get('in_flight_before')} jobs in flight: "
                  f"{cc['memory_per_job_kib']} KiB VmRSS per job, "
                  f"{cc['system_memory_per_job_kib']} KiB system-wide per job; threads "
                  f"{cc['meta'].get('threads_before')} -> {cc['meta'].get('threads_with_jobs')}; "
                  f"fired in {cc.get('fire', {}).get('seconds')} s")
    print()
    print("targets:")
    for goal in goals:
        state = "MET    " if goal["met"] else "NOT MET"
        print(f"  {state} {goal['target']}: {goal['detail']}")
    print()
    profile = result["profile"]
    if "callgrind_self" in profile:
        print("callgrind, self cost (bench_app /noop under loadgen):")
        print("\n".join(profile["callgrind_self"].splitlines()[:40]))
    if "perf_self" in profile:
        print("perf -e cpu-clock, self (bench_app /noop under wrk):")
        print("\n".join(profile["perf_self"].splitlines()[:40]))
    print()
    print(f"results: {os.path.join(results_dir, stamp + '.json')} (and latest.json)"
          + (f", plot: {png}" if png else ""))


if __name__ == "__main__":
    main()
