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

    taskset -c 0 python -m experiments.bench dialogue --out FILE.json [--quick] [--calls N] [--seeds S]

``dialogue``: a GRPO step over whole conversations (the 2x64 policy, the ``empathy``
environment, 8 turns, 8 groups of 4) compiled as one program against the same step with
the conversation stepped on the host turn by turn, and 16 seeds in one program against 16
one after another; see :mod:`emojax.bench.dialogue`.

Timings are taken on one thread (:func:`emojax.bench.cli.pin_one_thread`): one core, XLA's
CPU backend on one thread, torch ``set_num_threads(1)``. Two torch threads on two cores show
random 5-15x step-time spikes on these machines.
"""

from __future__ import annotations

import sys

from emojax.bench import cli


def main(argv=None) -> dict:
    args = cli.bench_parser(__doc__).parse_args(argv)
    # Imported after parsing, and after __main__ pinned the thread (XLA_FLAGS before JAX).
    from emojax.bench import dialogue, estimator, grpo

    return {"grpo": grpo, "estimator": estimator, "dialogue": dialogue}[args.benchmark].main(args)


if __name__ == "__main__":
    cli.pin_one_thread("experiments.bench")
    main(sys.argv[1:])
