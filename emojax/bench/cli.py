"""The benchmark tools' command lines and one-thread pinning; imports no JAX.

Kept light on purpose: ``pin_one_thread`` must run before JAX (or torch) is imported, and
``--help`` should not wait for them.
"""

from __future__ import annotations

import argparse
import os
import sys

ONE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
_REEXEC_MARK = "EMOJAX_BENCH_REEXEC"


def pin_one_thread(module: str) -> None:
    """One core, one thread, for the process started as ``python -m module``.

    Adds the one-thread XLA flags to ``XLA_FLAGS`` (keeping the user's others), sets
    ``OMP_NUM_THREADS=1`` unless set, and narrows the CPU affinity to one core if the
    process may run on several. If JAX is already imported without the flags, re-executes
    ``python -m module`` with them (once).
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:
            print(f"[bench] affinity {cpus}: pinning to cpu {cpus[0]} (start with `taskset -c N` to choose)",
                  file=sys.stderr)
            os.sched_setaffinity(0, {cpus[0]})
    except AttributeError:  # not Linux
        pass
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" in flags:  # the user chose
        return
    os.environ["XLA_FLAGS"] = f"{flags} {ONE_THREAD_XLA_FLAGS}".strip()
    if "jax" in sys.modules:  # too late for this process: start again with the flags
        if os.environ.get(_REEXEC_MARK):
            raise RuntimeError("jax was imported before XLA_FLAGS could be set, even after re-executing")
        os.environ[_REEXEC_MARK] = "1"
        os.execv(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]])


def _parser(doc: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def _out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="where the JSON goes (written atomically)")


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """``experiments.bench``: the ``estimator``, ``grpo`` and ``dialogue`` subcommands."""
    parser = _parser(doc)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    est = sub.add_parser("estimator", help="training-step throughput of the estimators vs the matmul peak")
    _out(est)
    est.add_argument("--quick", action="store_true", help="tiny sizes and 3 steps (a smoke test, not a measurement)")
    est.add_argument("--min-time", type=float, default=2.0, help="seconds timed per configuration, at least")
    est.add_argument("--min-steps", type=int, default=50, help="steps timed per configuration, at least")
    est.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    est.add_argument("--same-process", action="store_true", help="time every configuration in this process")
    grpo = sub.add_parser("grpo", help="one GRPO step of emojax against TRL's GRPOTrainer")
    _out(grpo)
    grpo.add_argument("--quick", action="store_true", help="tiny sizes, no TRL (a smoke test, not a measurement)")
    grpo.add_argument("--chunk", type=int, default=8, help="steps per run_chunk call (checkpoint_every)")
    grpo.add_argument("--calls", type=int, default=7, help="timed calls per configuration")
    grpo.add_argument("--trl-steps", type=int, default=10, help="timed TRL steps per configuration")
    grpo.add_argument("--seeds", type=int, default=16, help="seeds of the one-program entry")
    grpo.add_argument("--seed-strategy", default="map", choices=("vmap", "map", "auto"),
                      help="how the seeds entry runs its seeds (map: fastest on one CPU core, measured)")
    grpo.add_argument("--no-trl", action="store_true", help="skip TRL's GRPOTrainer")
    grpo.add_argument("--same-process", action="store_true", help="time every configuration in this process")
    dialogue = sub.add_parser("dialogue", help="a GRPO step over conversations: compiled vs stepped on the host")
    _out(dialogue)
    dialogue.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    dialogue.add_argument("--calls", type=int, default=5, help="timed calls per entry")
    dialogue.add_argument("--seeds", type=int, default=16, help="seeds of the one-program entry")
    return parser


def gpu_check_parser(doc: str) -> argparse.ArgumentParser:
    """``experiments.gpu_check``."""
    parser = _parser(doc)
    _out(parser)
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on any device: checks that the script works")
    parser.add_argument("--budget-s", type=float, default=240.0, help="start no part after this many seconds")
    parser.add_argument("--only", default="", help="comma-separated prefixes of the parts to run (default: all)")
    return parser
