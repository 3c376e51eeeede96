#!/usr/bin/env python3
"""A/B two plumb binaries side by side, with make and ninja as a yardstick.

    python3 bench/ab.py OLD_BINARY NEW_BINARY [--graphs wide-1000,lattice-5000] [--runs 5]

Uses the graphs and the measuring of bench/run.py; the four runners take turns round by round,
so the machine's drift falls on all alike. Between full benchmark runs the ratios move by up to
0.1 on this machine, more than most single changes gain: judge a change here, not by comparing
two RESULTS.md files, and look at the round-by-round line: the same binary as OLD and NEW has
come out 9 % apart in medians of 5 rounds, so a change that wins 5 of 5 rounds says more than
one whose median moved.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402


def plumb_at(binary):
    def setup(d, tasks):
        cmd = bench.setup_plumb(d, tasks)
        cmd[0] = str(Path(binary).resolve())
        return cmd

    return setup


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--graphs", default="wide-1000,lattice-5000")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    bench.RUNNERS = {
        "old": plumb_at(a.old),
        "new": plumb_at(a.new),
        "make": bench.setup_make,
        "ninja": bench.setup_ninja,
    }
    base = Path(tempfile.mkdtemp(prefix="plumb-ab-"))
    print("graph         runner  wall (s)  cpu (s)  / best of make and ninja")
    try:
        for g in a.graphs.split(","):
            stats, _ = bench.measure_graph(g, bench.GRAPHS[g](), list(bench.RUNNERS), a.runs, base)
            best = min(stats["make"][0], stats["ninja"][0])
            for r, s in stats.items():
                print(f"{g:<13} {r:<6} {s[0]:9.3f} {s[1]:8.3f}  {s[0] / best:6.3f}", flush=True)
            # Round by round, new against old: the median of the ratios, and how often new won.
            pairs = [n / o for o, n in zip(stats["old"][4], stats["new"][4])]
            won = sum(r < 1 for r in pairs)
            print(f"{g:<13} new/old round by round: median {statistics.median(pairs):.3f}, new faster in {won} of {len(pairs)}", flush=True)
    finally:
        # Only now: deletions slow the file creations of whatever runs next (see README.md).
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
