#!/usr/bin/env python3
"""Issue 3's targets checked against one bench/run.sh run.

usage: targets.py HARNESS.csv [--features FEATURES-AB.txt] [--alloc ALLOC.txt] [--soak SOAK.txt]

Reads the harness's median table (Sluice and nginx in the same run), the same-minute features
vs bare A/B (bench/features-ab.sh), the allocation check (bench/alloc-check.sh) and, when
given, the soak (bench/soak.sh), and prints one Markdown table: each target, the figures, met
or not. Exit status 0 when every target given is met, 1 otherwise.
"""
import csv
import re
import statistics
import sys


def rows(path):
    with open(path) as f:
        return {(r["scenario"], r["target"]): r for r in csv.DictReader(f)}


def num(row, key):
    value = row.get(key, "") if row else ""
    return float(value) if value not in ("", None) else None


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    table = rows(argv[1])
    extra = {}
    args = argv[2:]
    while args:
        flag, path = args[0], args[1]
        extra[flag.lstrip("-")] = open(path).read()
        args = args[2:]

    out = []
    all_met = True

    def add(name, figures, ok, target):
        nonlocal all_met
        if ok is None:
            verdict = "not measured"
            all_met = False
        else:
            verdict = "**yes**" if ok else "**no**"
            all_met = all_met and ok
        out.append(f"| {name} | {figures} | {target} | {verdict} |")

    def pair(scenario):
        return table.get((scenario, "nginx")), table.get((scenario, "sluice"))

    n, s = pair("small")
    if n and s:
        r = num(s, "rps") / num(n, "rps")
        add("small req/s", f"{num(s, 'rps'):,.0f} vs {num(n, 'rps'):,.0f} = {r:.2f}×", r >= 0.8, "≥ 0.8×")
        c = num(s, "cpu_s_per_10k") / num(n, "cpu_s_per_10k")
        add("small CPU s/10k", f"{num(s, 'cpu_s_per_10k'):.3f} vs {num(n, 'cpu_s_per_10k'):.3f} = {c:.2f}×", c <= 1.25, "≤ 1.25×")
    else:
        add("small", "-", None, "")
    n, s = pair("16k")
    if n and s:
        r = num(s, "rps") / num(n, "rps")
        add("16k req/s", f"{num(s, 'rps'):,.0f} vs {num(n, 'rps'):,.0f} = {r:.2f}×", r >= 0.9, "≥ 0.9×")
    for scenario in ("rate5k", "rate10k"):
        n, s = pair(scenario)
        if not (n and s):
            add(scenario, "-", None, "")
            continue
        p99 = num(s, "p99_ms") / num(n, "p99_ms")
        p999 = num(s, "p999_ms") / num(n, "p999_ms")
        errors = int(num(s, "errors") or 0) + int(num(s, "non2xx") or 0)
        add(f"{scenario} p99 / p99.9",
            f"{num(s, 'p99_ms'):.3f} / {num(s, 'p999_ms'):.3f} ms vs {num(n, 'p99_ms'):.3f} / {num(n, 'p999_ms'):.3f} = {p99:.2f}× / {p999:.2f}×",
            p99 <= 1.2 and p999 <= 1.0 and errors == 0, "≤ 1.2× / ≤ 1.0×")
    n, s = pair("idle1000")
    if s:
        rss = num(s, "rss_idle_mib")
        per = num(s, "kib_per_conn")
        if rss is not None:
            add("idle RSS", f"{rss:.1f} MiB (nginx {num(n, 'rss_idle_mib') or 0:.1f})", rss <= 14, "≤ 14 MiB")
        if per is not None:
            add("per idle keep-alive connection", f"{per:.2f} KiB (nginx {num(n, 'kib_per_conn') or 0:.2f})", per <= 4, "≤ 4 KiB")
    # Start-up is measured at every proxy start; the harness reports the median of all of them.
    raw_path = argv[1][: -len(".csv")] + "-raw.csv"
    try:
        with open(raw_path) as f:
            starts = [float(r["startup_ms"]) for r in csv.DictReader(f) if r["target"] == "sluice" and r["startup_ms"]]
    except OSError:
        starts = [num(r, "startup_ms") for (sc, t), r in table.items() if t == "sluice" and num(r, "startup_ms") is not None]
    if starts:
        start = statistics.median(starts)
        add("start-up to first proxied response", f"{start:.1f} ms (median of {len(starts)} starts)", start <= 25, "≤ 25 ms")

    if "features" in extra:
        m = re.search(r"median features/bare: ([0-9.]+)", extra["features"])
        ratio = float(m.group(1)) if m else None
        add("features vs bare (same minute)", f"{ratio:.3f}" if ratio else "-", ratio >= 0.9 if ratio else None, "≥ 0.9×")
    else:
        add("features vs bare", "-", None, "≥ 0.9×")
    if "alloc" in extra:
        m = re.search(r"allocations per proxied request: ([0-9.]+) \(threshold ([0-9.]+)", extra["alloc"])
        if m:
            per, limit = float(m.group(1)), float(m.group(2))
            add("allocations per request", f"{per:.1f} (threshold {limit:g})", per <= limit, "≤ committed threshold")
        else:
            add("allocations per request", "-", None, "")
    else:
        add("allocations per request", "-", None, "")
    if "soak" in extra:
        growth = re.search(r"RSS growth: (-?[0-9]+) KiB", extra["soak"])
        load = re.search(r"ok=([0-9]+) non2xx=([0-9]+) errors=([0-9]+)", extra["soak"])
        if growth and load:
            kib = int(growth.group(1))
            bad = int(load.group(2)) + int(load.group(3))
            add("RSS over the soak", f"{kib / 1024:+.2f} MiB, {int(load.group(1)):,} ok, {bad} errors/non-2xx",
                kib < 2048 and bad == 0, "growth < 2 MiB, 0 errors")
        else:
            add("RSS over the soak", "-", None, "growth < 2 MiB, 0 errors")

    print("| target | Sluice (vs nginx, same run) | wanted | met? |")
    print("|---|---|---|---|")
    print("\n".join(out))
    print()
    print("every target met" if all_met else "not every target met")
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
