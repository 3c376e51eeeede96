#!/usr/bin/env python3
"""Benchmark plumb against real peers on the same machine, in one run.

    python3 bench/run.py                 # everything, writes bench/RESULTS.md
    python3 bench/run.py --quick         # small graphs only, 1 run each (a smoke test)

Every runner gets the same synthetic graph and the same work per task: run `true`, then create
`out/<id>`, with parallelism 2. Runners: plumb (release build), ninja, GNU make -j2, Luigi 3.8.1
(local scheduler, 2 workers, in a throwaway venv; sizes past 5 minutes are skipped) and the floor,
`xargs -P2` running the same per-task command with no dependency tracking.

Reported per graph and runner: median wall time of several runs, CPU time (user+system of the
runner and everything it started), peak memory (largest resident set of the runner or any
process it waited for), tasks per second, and the ratios plumb/ninja, plumb/make, plumb/floor.
Then the resume pass (each runner again on the completed wide-10000: the time to decide that
nothing is left to do) and planning at scale (plumb validate and plan on a 100,000-task
lattice).
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUMB = ROOT / "target" / "release" / "plumb"
VENV = ROOT / "bench" / ".venv"
LUIGI_VERSION = "3.8.1"
LUIGI_LIMIT = 300.0  # seconds


# ---------------------------------------------------------------- graphs

def wide(n):
    tasks = [(f"t{i}", []) for i in range(n)]
    return tasks + [("sink", [f"t{i}" for i in range(n)])]


def chain(n):
    return [(f"t{i}", [f"t{i - 1}"] if i else []) for i in range(n)]


def lattice(n, width=50, fan_in=3):
    tasks = []
    for i in range(n):
        layer, j = divmod(i, width)
        deps = [] if layer == 0 else [f"t{(layer - 1) * width + (j + k) % width}" for k in range(fan_in)]
        tasks.append((f"t{i}", deps))
    return tasks


GRAPHS = {
    "wide-1000": lambda: wide(1000),
    "chain-1000": lambda: chain(1000),
    "lattice-5000": lambda: lattice(5000),
    "wide-10000": lambda: wide(10000),
}


# ---------------------------------------------------------------- runners: setup writes files, cmd runs

def setup_plumb(d, tasks):
    (d / "pipelines").mkdir()
    (d / "plumb.toml").write_text("")
    lines = ["[pipeline]", "workers = 2", ""]
    for tid, deps in tasks:
        lines.append(f"[tasks.{tid}]")
        lines.append(f'command = "true && touch out/{tid}"')
        lines.append(f'outputs = ["out/{tid}"]')
        if deps:
            lines.append("requires = [" + ", ".join(f'"{x}"' for x in deps) + "]")
    (d / "pipelines" / "g.toml").write_text("\n".join(lines) + "\n")
    return [str(PLUMB), "run", "g"]


def setup_ninja(d, tasks):
    lines = ["rule t", "  command = true && touch $out", ""]
    for tid, deps in tasks:
        lines.append(f"build out/{tid}: t" + ("".join(f" out/{x}" for x in deps)))
    (d / "build.ninja").write_text("\n".join(lines) + "\n")
    return ["ninja", "-j2"]


def setup_make(d, tasks):
    # `all` names every task: a lattice's last task needs only 4,375 of the 5,000, and make
    # builds only what its goal needs.
    lines = ["all:" + "".join(f" out/{tid}" for tid, _ in tasks), ""]
    for tid, deps in tasks:
        lines.append(f"out/{tid}:" + "".join(f" out/{x}" for x in deps))
        lines.append(f"\ttrue && touch $@")
    (d / "Makefile").write_text("\n".join(lines) + "\n")
    return ["make", "-s", "-j2"]


def setup_xargs(d, tasks):
    (d / "ids.txt").write_text("".join(f"{tid}\n" for tid, _ in tasks))
    return ["sh", "-c", "xargs -P2 -I{} sh -c 'true && touch out/{}' < ids.txt"]


def setup_luigi(d, tasks):
    deps = {tid: ds for tid, ds in tasks}
    (d / "graph.py").write_text(
        "import subprocess, luigi\n"
        f"DEPS = {deps!r}\n"
        "class T(luigi.Task):\n"
        "    id = luigi.Parameter()\n"
        "    def requires(self):\n"
        "        return [T(id=x) for x in DEPS[self.id]]\n"
        "    def output(self):\n"
        "        return luigi.LocalTarget('out/' + self.id)\n"
        "    def run(self):\n"
        "        subprocess.run('true && touch out/' + self.id, shell=True, check=True)\n"
        "if __name__ == '__main__':\n"
        "    ok = luigi.build([T(id=x) for x in DEPS], workers=2, local_scheduler=True, log_level='WARNING')\n"
        "    raise SystemExit(0 if ok else 1)\n"
    )
    return [str(VENV / "bin" / "python"), "graph.py"]


RUNNERS = {
    "plumb": setup_plumb,
    "ninja": setup_ninja,
    "make": setup_make,
    "luigi": setup_luigi,
    "xargs -P2 (floor)": setup_xargs,
}


# ---------------------------------------------------------------- measuring

def timed(cmd, cwd, timeout=None):
    """Run cmd; return (wall seconds, cpu seconds, peak RSS in MB), or None on timeout.

    os.wait4 gives the resource use of exactly this runner and the processes it waited for."""
    err = tempfile.TemporaryFile()
    start = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
    timer = threading.Timer(timeout, p.kill) if timeout else None
    if timer:
        timer.start()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    if timer:
        timer.cancel()
        if wall >= timeout:
            return None
    if p.returncode != 0:
        err.seek(0)
        raise SystemExit(f"{cmd[0]} failed in {cwd} (exit {p.returncode}): {err.read().decode()[-2000:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0


def fresh(kind, runner, tasks, base):
    d = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=base))
    (d / "out").mkdir()
    cmd = RUNNERS[runner](d, tasks)
    return d, cmd


def measure_graph(kind, tasks, runners, runs, base):
    """Time every runner on one graph, `runs` rounds, interleaved (round 1 of every runner,
    then round 2, ...) so the machine's drift falls on all runners alike, the order rotated by
    one each round. Each run starts from
    a fresh directory. Luigi runs once. Returns ({runner: (median wall, median cpu, peak MB,
    number of runs, wall of each run) or None}, {runner: (dir, cmd) of its last run})."""
    samples = {r: [] for r in runners}
    last = {}
    skipped = set()
    for round_ in range(runs):
        # Each round starts one runner later, so that over the rounds every runner takes every
        # place in the order and none always follows the same one (or Luigi's long run).
        k = round_ % len(runners)
        for r in runners[k:] + runners[:k]:
            if r in skipped or (r == "luigi" and round_ > 0):
                continue
            # Nothing is deleted until the whole benchmark is over: on ext4 without a journal
            # (this machine), creating a file scans past every inode of its block group deleted
            # in the last minutes, so deleting one run's files slows the next run's `touch` by up
            # to 10x, and whichever runner followed a deletion lost.
            d, cmd = fresh(kind, r, tasks, base)
            last[r] = (d, cmd)
            res = timed(cmd, d, timeout=LUIGI_LIMIT if r == "luigi" else None)
            if res is None:
                skipped.add(r)
                continue
            made = len(os.listdir(d / "out"))
            if made != len(tasks):
                raise SystemExit(f"{r} made {made} of the {len(tasks)} outputs in {d}: it did not run the whole graph")
            samples[r].append(res)
    stats = {}
    for r in runners:
        ss = samples[r]
        stats[r] = None if r in skipped or not ss else (
            statistics.median(s[0] for s in ss),
            statistics.median(s[1] for s in ss),
            max(s[2] for s in ss),
            len(ss),
            [s[0] for s in ss],
        )
    return stats, last


def ensure_luigi():
    py = VENV / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "import luigi"], capture_output=True).returncode == 0:
        return True
    print(f"setting up Luigi {LUIGI_VERSION} in {VENV} ...", flush=True)
    for base in (shutil.which("python3"), "/usr/bin/python3"):
        if not base:
            continue
        shutil.rmtree(VENV, ignore_errors=True)
        if subprocess.run([base, "-m", "venv", str(VENV)], capture_output=True).returncode != 0:
            continue
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", f"luigi=={LUIGI_VERSION}"], capture_output=True, text=True)
        if r.returncode == 0:
            return True
        print(r.stderr[-500:])
    print("Luigi could not be installed; it is left out")
    return False


def fmt(x, unit=""):
    return "–" if x is None else f"{x:.3f}{unit}" if x < 10 else f"{x:.2f}{unit}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median is reported)")
    ap.add_argument("--quick", action="store_true", help="wide-1000 and chain-1000 only, 1 run, no Luigi")
    ap.add_argument("--no-luigi", action="store_true")
    ap.add_argument("--scale", action="store_true", help="with --quick: also plan the 100k lattice")
    ap.add_argument("--graphs", help="comma-separated subset of " + ", ".join(GRAPHS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    a = ap.parse_args()
    graphs = ["wide-1000", "chain-1000"] if a.quick else list(GRAPHS)
    if a.graphs:
        graphs = a.graphs.split(",")
        unknown = [g for g in graphs if g not in GRAPHS]
        if unknown:
            raise SystemExit(f"unknown graph {unknown[0]!r}; choose from {', '.join(GRAPHS)}")
    runs = 1 if a.quick else a.runs

    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    runners = list(RUNNERS)
    missing = [r for r in ("ninja", "make") if not shutil.which(r)]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)} (apt-get install ninja-build make)")
    if a.quick or a.no_luigi or not ensure_luigi():
        runners.remove("luigi")

    base = Path(tempfile.mkdtemp(prefix="plumb-bench-"))
    results = {}
    wide_dirs = {}
    try:
        for g in graphs:
            tasks = GRAPHS[g]()
            stats, last = measure_graph(g, tasks, runners, runs, base)
            for r in runners:
                results[(g, r)] = stats[r]
                s_ = stats[r]
                print(f"{g:<13} {r:<18} " + ("skipped (over 5 min)" if s_ is None else f"{s_[0]:.3f} s"), flush=True)
                # The floor has no notion of done: it would simply run everything again.
                if g == "wide-10000" and s_ is not None and r != "xargs -P2 (floor)":
                    wide_dirs[r] = last[r]

        # Resume: each runner again on its completed wide-10000.
        resume = {}
        rounds = {r: [] for r in wide_dirs}
        for round_ in range(max(runs, 5)):
            for r, (d, cmd) in wide_dirs.items():
                if r == "luigi" and round_ > 0:
                    continue
                res = timed(cmd, d, timeout=LUIGI_LIMIT)
                if res:
                    rounds[r].append(res)
        for r, ss in rounds.items():
            resume[r] = (statistics.median(s[0] for s in ss), max(s[2] for s in ss)) if ss else None
            print(f"resume        {r:<18} {fmt(resume[r][0] if resume[r] else None, ' s')}", flush=True)

        # Planning at scale.
        scale = {}
        if not a.quick or a.scale:
            d = base / "scale"
            d.mkdir()
            setup_plumb(d, lattice(100_000))
            (d / "pipelines" / "g.toml").rename(d / "pipelines" / "lattice.toml")
            # The first plan creates state/ (a new project's database), untimed. Each timed plan
            # then starts without the compiled-pipeline cache, as after any edit of the file:
            # with it, plan takes a fifth of the time and would flatter the figure.
            subprocess.run([str(PLUMB), "plan", "lattice"], cwd=d, stdout=subprocess.DEVNULL, check=True)

            def sample(verb):
                shutil.rmtree(d / "state" / "cache", ignore_errors=True)
                return timed([str(PLUMB), verb, "lattice"], d)

            for verb in ("validate", "plan"):
                samples = [sample(verb) for _ in range(runs)]
                scale[verb] = (statistics.median(s[0] for s in samples), max(s[2] for s in samples))
                print(f"100k lattice  plumb {verb:<12} {scale[verb][0]:.3f} s, {scale[verb][1]:.0f} MB", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    write(a.out, graphs, runners, results, resume, scale, runs)
    print(f"wrote {a.out}")


def write(path, graphs, runners, results, resume, scale, runs):
    lines = ["# Benchmark results", ""]
    lines.append(f"Written by `python3 bench/run.py` on {time.strftime('%Y-%m-%d %H:%M %Z')}: "
                 f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
                 f"median of {runs} runs, runners interleaved round by round so drift falls on all alike, their order rotated by one each round "
                 f"(Luigi: 1 run, skipped past {LUIGI_LIMIT:.0f} s). "
                 "Every task runs `true && touch out/<id>`; parallelism 2 everywhere. "
                 "CPU is user+system time of the runner and all it started; memory is the peak "
                 "resident set of the largest process. Compare ratios, not absolute times: this "
                 "machine's speed drifts by up to 20 % over tens of minutes.")
    lines.append("")
    lines.append("| graph | runner | wall (s) | CPU (s) | peak MB | tasks/s |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: |")
    for g in graphs:
        n = len(GRAPHS[g]())
        for r in runners:
            s = results.get((g, r))
            if s is None:
                lines.append(f"| {g} | {r} | > {LUIGI_LIMIT:.0f} (skipped) | | | |")
            else:
                lines.append(f"| {g} | {r} | {fmt(s[0])} | {fmt(s[1])} | {s[2]:.0f} | {n / s[0]:.0f} |")
    lines.append("")
    lines.append("Ratios of wall time (below 1.00: plumb is faster). The first four are ratios of the "
                 "medians; the last pairs plumb with the better of make and ninja in the same round, "
                 "where the drift between rounds cancels out, and gives the median of those ratios and "
                 "in how many rounds plumb was at or below:")
    lines.append("")
    lines.append("| graph | plumb/ninja | plumb/make | plumb/best of make and ninja | plumb/floor | round by round |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for g in graphs:
        p = results.get((g, "plumb"))
        nj, mk, fl = results.get((g, "ninja")), results.get((g, "make")), results.get((g, "xargs -P2 (floor)"))
        if not p:
            continue
        best = min(x[0] for x in (nj, mk) if x)
        rounds = [pw / min(n, m) for pw, n, m in zip(p[4], nj[4], mk[4])]
        paired = f"{statistics.median(rounds):.2f}; {sum(r <= 1 for r in rounds)} of {len(rounds)}"
        lines.append(f"| {g} | {p[0] / nj[0]:.2f} | {p[0] / mk[0]:.2f} | {p[0] / best:.2f} | {p[0] / fl[0]:.2f} | {paired} |")
    if resume:
        lines += ["", "Resume pass: each runner again on its completed wide-10000 (deciding nothing is left):", ""]
        lines.append("| runner | wall (s) | peak MB |")
        lines.append("| --- | ---: | ---: |")
        for r in runners:
            v = resume.get(r)
            if v:
                lines.append(f"| {r} | {v[0]:.3f} | {v[1]:.0f} |")
        p = resume.get("plumb")
        best = min(resume[r][0] for r in ("ninja", "make") if resume.get(r))
        if p:
            lines.append("")
            lines.append(f"plumb/best of make and ninja on the resume pass: {p[0] / best:.2f}")
    if scale:
        lines += ["", "Planning at scale: a 100,000-task lattice (layers of 50, 3 requires each; "
                  "plan without the compiled-pipeline cache, as after an edit):", ""]
        lines.append("| command | wall (s) | peak MB |")
        lines.append("| --- | ---: | ---: |")
        for verb, (w, m) in scale.items():
            lines.append(f"| plumb {verb} | {w:.3f} | {m:.0f} |")
    Path(path).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
