#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Plots of the benchmark suite (bench/run.sh), with gnuplot.

Reads the medians in a results directory and writes PNGs beside them:
- b1.png from b1.json: SA pairs applied per second on a standby against N,
  with the limit (the same records through the AEAD and TCP alone), and the
  time per pair against N (flat is the target);
- scale.png from scale-N<N>.json, when there are two N or more: the active
  charon's CPU and memory per tunnel against N, for each scenario (plain,
  ha, sasync), and the standby's lag behind the set-up.
A plot whose data is missing is left out, with a line saying so.

Usage: plot.py RESULTS_DIR
"""

import glob
import json
import os
import subprocess
import sys


def series(points):
    """gnuplot inline data: one "x y" line per point, then "e"."""
    return "".join("%s %s\n" % p for p in points) + "e\n"


def value(v):
    """A median as a float, None when missing or not finite."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def gnuplot(script, out):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    print("plot.py: wrote %s" % out)


def plot_b1(results):
    path = os.path.join(results, "b1.json")
    if not os.path.exists(path):
        print("plot.py: no b1.json, no b1.png")
        return
    with open(path) as f:
        data = json.load(f)
    med = {int(n): m for n, m in data["medians"].items()}
    ns = sorted(n for n in med if "apply" in med[n])
    apply = [(n, med[n]["apply"]["pairs_per_s"]) for n in ns]
    limit = [(n, med[n]["limit"]["pairs_per_s"]) for n in ns if "limit" in med[n]]
    per = [(n, med[n]["apply"]["us_per_pair"]) for n in ns]
    out = os.path.join(results, "b1.png")
    gnuplot("""set terminal png size 1000,420
set output '%s'
set multiplot layout 1,2 title 'B1: a standby applying N synthetic SA pairs in-process (%s)'
set logscale xy
set xrange [%d:%d]
set yrange [5000:*]
set xlabel 'N (SA pairs)'
set ylabel 'pairs per second'
# between the target and the limit, where no line runs
set key at graph 0.97, graph 0.62 right
set grid
plot '-' with linespoints title 'applied (sasync)', '-' with linespoints title 'limit: AEAD + TCP alone', 20000 with lines dashtype 2 title 'target 20,000/s'
%s%sunset logscale y
set yrange [0:*]
set ylabel 'us per pair (wall clock)'
set key default
set key bottom right
plot '-' with linespoints title 'applied (sasync): flat is the target'
%sunset multiplot
""" % (out, data.get("date", "?"), ns[0] / 2, ns[-1] * 2, series(apply),
       series(limit), series(per)),
            out)


def plot_scale(results):
    runs = {}
    for path in glob.glob(os.path.join(results, "scale-N*.json")):
        with open(path) as f:
            data = json.load(f)
        runs[data["tunnels"]] = data["medians"]
    ns = sorted(n for n in runs if n > 1)
    if len(ns) < 2:
        print("plot.py: scale data for %d N > 1, no scale.png (BENCH_LONG=1 "
              "adds N = 10,000)" % len(ns))
        return
    panels = [("cpu_a_ms", "active charon CPU per tunnel set up (ms)"),
              ("rss_a_kib", "active charon memory per tunnel (KiB)"),
              ("lag_ms", "standby lag behind the set-up (ms)")]
    out = os.path.join(results, "scale.png")
    script = """set terminal png size 1400,420
set output '%s'
set multiplot layout 1,3 title 'Tunnels from one peer, kernel-libipsec'
set logscale x
set xrange [%d:%d]
set xlabel 'N (tunnels)'
set grid
set key top left
""" % (out, ns[0] / 2, ns[-1] * 2)
    for key, label in panels:
        plots, data = [], ""
        for scenario in ("plain", "ha", "sasync"):
            points = [(n, value(runs[n].get(scenario, {}).get(key)))
                      for n in ns]
            points = [p for p in points if p[1] is not None]
            if points:
                plots.append("'-' with linespoints title '%s'" % scenario)
                data += series(points)
        if plots:
            script += "set ylabel '%s'\nplot %s\n%s" % (label, ", ".join(plots), data)
    gnuplot(script + "unset multiplot\n", out)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    plot_b1(sys.argv[1])
    plot_scale(sys.argv[1])


if __name__ == "__main__":
    main()
