"""Every study's smoke ``results.json``, run and compared: proof that a refactor changed no result.

Launcher and usage: :mod:`experiments.smoke_results`. :func:`run` starts each launcher in a
fresh process (as a user would), with its own work dir and data dir under ``DIR/work``, and
keeps its ``results.json`` (``eval.json`` for the estimator) with what legitimately differs
between two runs taken out: wall times and the paths of the run's own directories.
:func:`compare` then wants the two sets equal, number for number (exactly, unless ``rtol``
says otherwise).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys

# name: (launcher module, extra arguments, the file the launcher writes)
STUDIES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "label_vs_intensity": ("experiments.label_vs_intensity", (), "results.json"),
    "stability": ("experiments.stability", (), "results.json"),
    "context_gap": ("experiments.context_gap", ("--set", "train.data_dir={data}"), "results.json"),
    "grpo_reverse": ("experiments.grpo_tasks", ("--set", "task=reverse"), "results.json"),
    "grpo_need_reply": ("experiments.grpo_tasks", ("--set", "task=need_reply"), "results.json"),
    "train_estimator": ("experiments.train_estimator", ("--set", "data_dir={data}"), "eval.json"),
    "empathy": ("experiments.empathy", (), "results.json"),
}

# Keys whose values are wall-clock measurements, not results.
_TIMING = re.compile(r"(^seconds$|_s$|_s_median$|^wall|^step_time|^elapsed)")


def normalise(obj, paths: tuple[str, ...] = ()):
    """``obj`` without timing keys, and with the run's own directories written as ``<run>``."""
    if isinstance(obj, dict):
        return {name: normalise(v, paths) for name, v in obj.items() if not _TIMING.search(str(name))}
    if isinstance(obj, list):
        return [normalise(v, paths) for v in obj]
    if isinstance(obj, str):
        for p in paths:
            obj = obj.replace(p, "<run>")
        return obj
    return obj


def differences(old, new, where: str = "", rtol: float = 0.0) -> list[str]:
    """Every place where ``new`` differs from ``old`` (keys, types, values)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = [f"{where}/{name}: only in old" for name in old if name not in new]
        out += [f"{where}/{name}: only in new" for name in new if name not in old]
        for name in old:
            if name in new:
                out += differences(old[name], new[name], f"{where}/{name}", rtol)
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: length {len(old)} -> {len(new)}"]
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, f"{where}[{i}]", rtol)]
    numbers = (int, float)
    if isinstance(old, numbers) and isinstance(new, numbers) and not isinstance(old, bool) and not isinstance(new, bool):
        if old == new or (isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new)):
            return []
        if rtol and math.isclose(old, new, rel_tol=rtol, abs_tol=rtol):
            return []
        return [f"{where}: {old!r} -> {new!r}"]
    return [] if type(old) is type(new) and old == new else [f"{where}: {old!r} -> {new!r}"]


def run(out: str, only: tuple[str, ...] = ()) -> None:
    out = os.path.abspath(out)
    for name, (module, extra, filename) in STUDIES.items():
        if only and name not in only:
            continue
        work, data = os.path.join(out, "work", name), os.path.join(out, "work", name + "_data")
        shutil.rmtree(work, ignore_errors=True)
        argv = [sys.executable, "-m", module, "--preset", "smoke", "--workdir", work,
                *(a.format(data=data) for a in extra)]
        print(f"[smoke_results] {name}: {' '.join(argv[1:])}", flush=True)
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "WANDB_MODE": "disabled"})
        with open(os.path.join(work, filename)) as f:
            results = normalise(json.load(f), (work, data))
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)


def compare(old_dir: str, new_dir: str, rtol: float = 0.0) -> list[str]:
    found = []
    for name in STUDIES:
        paths = [os.path.join(d, f"{name}.json") for d in (old_dir, new_dir)]
        if not all(os.path.exists(p) for p in paths):
            found.append(f"{name}: missing in {[p for p in paths if not os.path.exists(p)]}")
            continue
        old, new = (json.load(open(p)) for p in paths)
        diffs = differences(old, new, name, rtol)
        print(f"[smoke_results] {name}: {'identical' if not diffs else f'{len(diffs)} differences'}")
        found += diffs
    return found


def main(argv=None, doc: str | None = None) -> int:
    """The ``run`` and ``compare`` subcommands; the exit status is 1 when ``compare`` finds differences."""
    parser = argparse.ArgumentParser(description=doc or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run every study's smoke preset")
    r.add_argument("--out", required=True)
    r.add_argument("--only", default="", help="comma-separated study names (default: all)")
    c = sub.add_parser("compare", help="compare two run directories")
    c.add_argument("old")
    c.add_argument("new")
    c.add_argument("--rtol", type=float, default=0.0, help="relative (and absolute) tolerance; 0: exact")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.out, tuple(n for n in args.only.split(",") if n))
        return 0
    diffs = compare(args.old, args.new, args.rtol)
    for d in diffs[:50]:
        print("  " + d)
    print(f"[smoke_results] {'no differences' if not diffs else f'{len(diffs)} differences'}")
    return 1 if diffs else 0
