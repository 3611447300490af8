"""GRPO on tasks with a known optimum (:mod:`emojax.studies.grpo_tasks`).

    python -m experiments.grpo_tasks --preset smoke|tiny|default --workdir DIR [--set task=need_reply] \\
        [--set reverse.grpo.learning_rate=3e-3] [--set reverse.task.length=8] [--set devices=2]

The task and, for each task, its config and tuned GRPO run (seeds included: all run in one
program) are fields of one config. ``--set devices=N`` splits each step's batch over N
devices; on a CPU start with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``.
Resumes from ``DIR/checkpoints``. Writes ``DIR/results.json``, ``DIR/reward_curves.png``,
``DIR/normalised.png``, and through the host loop ``DIR/config.json``, ``DIR/metrics.jsonl``
and ``DIR/completions.jsonl`` (decoded to text).
"""

from __future__ import annotations

import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

from emojax import config  # noqa: E402
from emojax.studies import grpo_tasks as study  # noqa: E402
from emojax.studies import grpo_tasks_figures as figures  # noqa: E402


def main(argv=None, *, compiler_options=None) -> dict:
    """Run the study from command-line arguments; ``compiler_options`` go to XLA (tests
    lower the optimisation level to compile faster)."""
    preset, cfg, workdir = config.parse_cli(study.PRESETS, argv, description=__doc__)
    results = study.run(cfg, workdir, compiler_options=compiler_options)
    results["preset"] = preset
    config.write_json(os.path.join(workdir, "results.json"), results)
    paths = figures.save_all(results, workdir)
    final = results["final"]
    print(f"[grpo_tasks] task={cfg.task} preset={preset} seeds={results['seeds']} "
          f"{results['seconds']['total']}s -> {workdir}")  # fmt: skip
    print(f"  random {results['random_reward']:.4f} (se {results['random_reward_se']:.4f}), "
          f"optimum {results['optimum_reward']:.4f}")  # fmt: skip
    print(f"  final (steps {final['steps'][0]}-{final['steps'][1]}): reward {final['reward']['mean']:.4f}, "
          f"normalised {final['normalised']['mean']:.3f} (per seed "
          + ", ".join(f"{s}: {v:.3f}" for s, v in final["normalised"]["per_seed"].items())
          + f"); target {results['target']} {'reached' if results['reached'] else 'NOT reached'}")
    print("  figures:", ", ".join(p.rsplit("/", 1)[-1] for p in paths))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
