"""Benchmarks, one subcommand each.

    taskset -c 0 python -m experiments.bench estimator --out FILE.json [--quick]
        [--min-time S] [--min-steps N] [--no-torch] [--same-process]

``estimator``: training-step throughput of the estimators (the default preset's text
transformer, the EmoNet-Face embedding heads at batch 32 and 256, and their PyTorch peer)
against the fp32 matmul peak measured in the same run; see :mod:`emojax.bench.estimator`.
Each configuration is timed in a fresh interpreter unless ``--same-process``.

    taskset -c 0 python -m experiments.bench grpo --out FILE.json [--quick] [--no-trl]
        [--chunk K] [--calls N] [--trl-steps N] [--seeds S] [--seed-strategy vmap|map|auto]
        [--same-process]

``grpo``: one GRPO step (4 prompts x 8 completions x 32 new tokens, then one update) of the
2x64 and 4x256 policies and the 2x64 step for 16 seeds in one program, against TRL's
``GRPOTrainer`` on the same shapes when TRL is installed; see :mod:`emojax.bench.grpo`.

Timings are taken on one thread: start the process on one core (``taskset -c 0``; if it
was started on several, it pins itself to the first of them), XLA's CPU backend is told to
use one thread (``XLA_FLAGS`` is set before JAX is imported; the process re-executes itself
if JAX was already imported without it) and torch uses ``set_num_threads(1)``. Two torch
threads on two cores show random 5-15x step-time spikes on these machines.
"""

from __future__ import annotations

import argparse
import os
import sys

ONE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
_REEXEC_MARK = "EMOJAX_BENCH_REEXEC"


def pin_one_thread() -> None:
    """One core, one thread: must run before JAX (and torch) are imported.

    Adds the one-thread XLA flags to ``XLA_FLAGS`` (keeping the user's others), sets
    ``OMP_NUM_THREADS=1`` unless set, and narrows the CPU affinity to one core if the
    process may run on several. If JAX is already imported without the flags, re-executes
    the process with them (once).
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:
            print(f"[bench] affinity {cpus}: pinning to cpu {cpus[0]} (start with `taskset -c N` to choose)", file=sys.stderr)
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
        os.execv(sys.executable, [sys.executable, "-m", "experiments.bench", *sys.argv[1:]])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    est = sub.add_parser("estimator", help="training-step throughput of the estimators vs the matmul peak")
    est.add_argument("--out", required=True, help="where the JSON goes (written atomically)")
    est.add_argument("--quick", action="store_true", help="tiny sizes and 3 steps (a smoke test, not a measurement)")
    est.add_argument("--min-time", type=float, default=2.0, help="seconds timed per configuration, at least")
    est.add_argument("--min-steps", type=int, default=50, help="steps timed per configuration, at least")
    est.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    est.add_argument("--same-process", action="store_true", help="time every configuration in this process")
    grpo = sub.add_parser("grpo", help="one GRPO step of emojax against TRL's GRPOTrainer")
    _grpo_args(grpo)
    args = parser.parse_args(argv)
    if args.benchmark == "grpo":
        from emojax.bench import grpo as grpo_bench  # after XLA_FLAGS were set

        return grpo_bench.main(args)

    # Imported here, after the launcher had the chance to set XLA_FLAGS.
    from emojax import config
    from emojax.bench import estimator

    result = estimator.run_estimator(
        quick=args.quick,
        min_time=args.min_time,
        min_steps=args.min_steps,
        torch_peer_enabled=not args.no_torch,
        isolate=not args.same_process,
    )
    config.write_json(args.out, result)
    print(estimator.table(result))
    print(f"[bench] -> {args.out}")
    return result


def _grpo_args(parser) -> None:
    """The ``grpo`` subcommand's options (see :func:`emojax.bench.grpo.run_grpo`)."""
    parser.add_argument("--out", required=True, help="where the JSON goes (written atomically)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no TRL (a smoke test, not a measurement)")
    parser.add_argument("--chunk", type=int, default=8, help="steps per run_chunk call (checkpoint_every)")
    parser.add_argument("--calls", type=int, default=7, help="timed calls per configuration")
    parser.add_argument("--trl-steps", type=int, default=10, help="timed TRL steps per configuration")
    parser.add_argument("--seeds", type=int, default=16, help="seeds of the one-program entry")
    parser.add_argument("--seed-strategy", default="map", choices=("vmap", "map", "auto"),
                        help="how the seeds entry runs its seeds (map: fastest on one CPU core, measured)")
    parser.add_argument("--no-trl", action="store_true", help="skip TRL's GRPOTrainer")
    parser.add_argument("--same-process", action="store_true", help="time every configuration in this process")


if __name__ == "__main__":
    pin_one_thread()
    main()
