#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Summary table of the benchmark suite (bench/run.sh).

Reads the medians bench/b1.sh and bench/scale.sh wrote (b1.json,
scale-N<N>.json) and the output of bench/failover_vs_ha.sh
(failover_vs_ha.txt) from a results directory and
prints one Markdown row per target of issue 10: the measured medians, the
baseline, and whether the target is met.

Usage: summary.py RESULTS_DIR
"""

import csv
import glob
import json
import math
import os
import re
import sys


def num(value):
    """A median as a float: inf for "inf", None when missing."""
    if value in (None, "-", ""):
        return None
    if value == "inf":
        return math.inf
    return float(value)


def fmt(value, unit=""):
    if value is None:
        return "-"
    if value == math.inf:
        return "none"
    if value == int(value):
        return "%d%s" % (value, unit)
    return "%.2f%s" % (value, unit)


def ratio(a, b):
    if a is None or b is None or b <= 0 or a < 0 or math.inf in (a, b):
        return "-"
    return "%.2fx" % (a / b)


def met(ok):
    if ok is None:
        return "not measured"
    return "met" if ok else "**missed**"


def load(results):
    runs = {}
    for path in glob.glob(os.path.join(results, "scale-N*.json")):
        with open(path) as f:
            data = json.load(f)
        runs[data["tunnels"]] = data
    return runs


def scale_rows(runs):
    rows = []
    for n in sorted(runs):
        data = runs[n]
        m = data["medians"]

        def get(scenario, key):
            return num(m.get(scenario, {}).get(key))

        if "sasync" in m and n > 1:
            resync = get("sasync", "resync_ms")
            lost = get("sasync", "resync_missing_child")
            rekeyed = get("sasync", "resync_rekeyed")
            ok = None if resync is None else (resync <= 2000 and lost == 0 and rekeyed == 0)
            rows.append(("B2", "bulk resync to a restarted standby (ms); CHILD SAs lost / rekeyed",
                         n, "-", "%s; %s / %s" % (fmt(get("ha", "resync_ms")),
                                                  fmt(get("ha", "resync_missing_child")),
                                                  fmt(get("ha", "resync_rekeyed"))),
                         "%s; %s / %s" % (fmt(resync), fmt(lost), fmt(rekeyed)),
                         ratio(resync, get("ha", "resync_ms")),
                         "<= 2 s, nothing lost, no CHILD SA rekeyed", met(ok)))
            lag = get("sasync", "lag_ms")
            rows.append(("B2", "standby lag behind the set-up (ms)", n, "-",
                         fmt(get("ha", "lag_ms")), fmt(lag), ratio(lag, get("ha", "lag_ms")),
                         "<= 1 s", met(None if lag is None else lag <= 1000)))
        if "sasync" in m:
            first = get("sasync", "first_reply_ms")
            act = get("sasync", "activate_ms")
            idle = get("sasync", "idle_rekeyed")
            ok = None
            if first is not None and act is not None:
                ok = first <= act + 100 and idle == 0
            rows.append(("B3", "kill -> first reply via the new primary (ms; kill -> activated); idle rekeyed",
                         n, "-",
                         "%s (%s); %s" % (fmt(get("ha", "first_reply_ms")), fmt(get("ha", "activate_ms")),
                                          fmt(get("ha", "idle_rekeyed"))),
                         "%s (%s); %s" % (fmt(first), fmt(act), fmt(idle)),
                         ratio(first, get("ha", "first_reply_ms")),
                         "<= activation + 100 ms, 0 idle rekeyed", met(ok)))
        if "plain" in m and "sasync" in m:
            cpu_p, cpu_s = get("plain", "cpu_a_ms"), get("sasync", "cpu_a_ms")
            rows.append(("B4", "CPU of the active's charon per tunnel set up (ms)", n,
                         fmt(cpu_p), fmt(get("ha", "cpu_a_ms")), fmt(cpu_s), ratio(cpu_s, cpu_p),
                         "<= 1.05x plain",
                         met(None if None in (cpu_p, cpu_s) else cpu_s <= 1.05 * cpu_p)))
            r_p, r_s = get("plain", "setup_rate"), get("sasync", "setup_rate")
            rows.append(("B4", "set-up rate (tunnels/s)", n, fmt(r_p), fmt(get("ha", "setup_rate")),
                         fmt(r_s), ratio(r_s, r_p), ">= 95 % of plain",
                         met(None if None in (r_p, r_s) else r_s >= 0.95 * r_p)))
            a_p, a_s, b_s = get("plain", "rss_a_kib"), get("sasync", "rss_a_kib"), get("sasync", "rss_b_kib")
            rows.append(("B5", "standby's memory per synced tunnel (KiB; the active's)", n,
                         fmt(a_p), fmt(get("ha", "rss_b_kib")), "%s (%s)" % (fmt(b_s), fmt(a_s)),
                         ratio(b_s, a_s), "<= the active's per tunnel",
                         met(None if None in (a_s, b_s) else b_s <= a_s)))
            over = None if None in (a_p, a_s) else a_s - a_p
            rows.append(("B5", "plugin's memory overhead on the active (KiB per tunnel)", n,
                         fmt(a_p), fmt(get("ha", "rss_a_kib")), "%s (+%s)" % (fmt(a_s), fmt(over)),
                         ratio(a_s, a_p), "<= 2 KiB", met(None if over is None else over <= 2)))
    return rows


def b1_rows(results):
    """B1 from bench/b1.sh's b1.json: the limit (the links alone) stands in
    the plain column, the ratio is applied / limit."""
    path = os.path.join(results, "b1.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        med = json.load(f)["medians"]
    rows = []
    ns = sorted(int(n) for n in med if "apply" in med[n] and "limit" in med[n])
    for n in ns:
        a, l = med[str(n)]["apply"], med[str(n)]["limit"]
        rows.append(("B1", "SA pairs applied per s on a standby, in-process (us per pair); "
                     "plain column: the same records through the links alone", n,
                     fmt(round(l["pairs_per_s"])), "-",
                     "%s (%s us)" % (fmt(round(a["pairs_per_s"])), fmt(round(a["us_per_pair"], 1))),
                     ratio(a["pairs_per_s"], l["pairs_per_s"]), ">= 20,000 pairs/s",
                     met(a["pairs_per_s"] >= 20000)))
    if len(ns) > 1:
        lo, hi = med[str(ns[0])]["apply"], med[str(ns[-1])]["apply"]
        growth = hi["us_per_pair"] / lo["us_per_pair"]
        rows.append(("B1", "time per SA pair at N = %d over N = %d (flat: <= 1.25x)" % (ns[-1], ns[0]),
                     ns[-1], "-", "-", "%.1f / %.1f us" % (hi["us_per_pair"], lo["us_per_pair"]),
                     "%.2fx" % growth, "flat from 1k to 100k", met(growth <= 1.25)))
    return rows


def b7_rows(results):
    path = os.path.join(results, "failover_vs_ha.txt")
    if not os.path.exists(path):
        return []
    rows = []
    with open(path) as f:
        text = f.read()
    for label, key in (("lan -> peer", "pings lost, lan -> peer"), ("peer -> lan", "pings lost, peer -> lan")):
        match = re.search(re.escape(key) + r"\s+(\S+)\s+(\S+)", text)
        if not match:
            continue
        ha, sasync = match.group(1), match.group(2)
        value = num("inf" if sasync == "no" else sasync)
        rows.append(("B7", "pings lost across a failover, 10 pps, " + label, 1, "-", ha, sasync,
                     ratio(value, num("inf" if ha == "no" else ha)), "<= 5",
                     met(None if value is None else value <= 5)))
    return rows


def b6_rows(results):
    path = os.path.join(results, "mid_sync.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rec = {r["scenario"]: r for r in csv.DictReader(f)}
    rows = []
    every = num(rec.get("every-exchange", {}).get("records_per_dpd"))
    for scenario in ("every-exchange", "coalesced"):
        if scenario not in rec:
            continue
        value = num(rec[scenario]["records_per_dpd"])
        ha = rec.get("ha", {}).get("records_per_dpd", "-")
        rows.append(("B6", "sync records per DPD exchange, mid_sync = " + scenario, 1, "-",
                     ha, fmt(value), ratio(value, num(ha)),
                     "<= 0.1 (coalesced)" if scenario == "coalesced" else "-",
                     met(None if value is None else value <= 0.1) if scenario == "coalesced" else ""))
    return rows


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: summary.py RESULTS_DIR")
    results = sys.argv[1]
    runs = load(results)
    rows = b1_rows(results) + scale_rows(runs) + b6_rows(results) + b7_rows(results)
    first = next(iter(runs.values()), None)
    if first:
        print("Measured %s on %s; medians of %d run(s); ratio: sasync / baseline (ha for B2, B3, B7; plain for B4, B5)."
              % (first["date"], first["machine"], first["runs"]))
        print()
    print("| bench | measure | N | plain | ha | sasync | ratio | target | |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    if not b1_rows(results):
        print("| B1 | in-process apply rate (bench/b1.sh) | | | | | | | not run |")


if __name__ == "__main__":
    main()
