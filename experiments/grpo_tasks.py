"""GRPO on tasks with a known optimum (:mod:`emojax.studies.grpo_tasks`).

    python -m experiments.grpo_tasks --preset smoke|tiny|default --workdir DIR [--set task=need_reply] \\
        [--set reverse.grpo.learning_rate=3e-3] [--set reverse.task.length=8] [--set devices=2] \\
        [--set devices=4 --set fsdp=2 --set tensor=2] [--set reverse.grpo.policy.lora_rank=16]

The task and, for each task, its config and tuned GRPO run (seeds included: all run in one
program) are fields of one config. ``--set devices=N`` splits each step's batch over N
devices; on a CPU start with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``.
``fsdp`` and ``tensor`` split the weights and optimizer moments over those devices too
(:mod:`emojax.rl.sharding`). ``policy.lora_rank`` trains LoRA adapters on a frozen base
(:mod:`emojax.rl.lora`).
Resumes from ``DIR/checkpoints``. Writes ``DIR/run.json``, ``DIR/results.json``,
``DIR/reward_curves.png``, ``DIR/normalised.png``, and through the host loop
``DIR/config.json``, ``DIR/metrics.jsonl`` and ``DIR/completions.jsonl`` (decoded to text).
"""

from __future__ import annotations

import sys

from emojax import launch

LAUNCHER = launch.Launcher("grpo_tasks", __doc__, "emojax.studies.grpo_tasks:PRESETS")


def main(argv=None, *, compiler_options=None) -> dict:
    """Run the study from command-line arguments; ``compiler_options`` go to XLA (tests
    lower the optimisation level to compile faster)."""
    run = LAUNCHER.parse(argv)
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    from emojax.studies import grpo_tasks as study
    from emojax.studies import grpo_tasks_figures as figures

    with run:
        results = study.run(run.cfg, run.workdir, compiler_options=compiler_options)
        results["preset"] = run.preset
        run.write_json("results.json", results)
        run.written += figures.save_all(results, run.workdir)
        final = results["final"]
        run.say(f"task={run.cfg.task} seeds={results['seeds']}: random {results['random_reward']:.4f} "
                f"(se {results['random_reward_se']:.4f}), optimum {results['optimum_reward']:.4f}")  # fmt: skip
        run.say(f"final (steps {final['steps'][0]}-{final['steps'][1]}): reward {final['reward']['mean']:.4f}, "
                f"normalised {final['normalised']['mean']:.3f} (per seed "
                + ", ".join(f"{s}: {v:.3f}" for s, v in final["normalised"]["per_seed"].items()) + "); "
                + study.verdict(run.preset, results))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
