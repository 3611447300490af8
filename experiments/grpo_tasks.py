"""GRPO on tasks with a known optimum (issue 4, item 7).

    python -m experiments.grpo_tasks --task reverse|need_reply --preset smoke|tiny|default \\
        --workdir DIR [--seeds N] [--set field=value ...] [--set task.field=value ...]

``--seeds N`` runs seeds ``0..N-1`` in one program (default 4). ``--set`` changes the GRPO
config (:class:`emojax.rl.config.GRPOConfig`, e.g. ``--set learning_rate=3e-3``);
``--set task.length=8`` changes the task's (``ReverseConfig``, ``NeedReplyConfig``).
Resumes from ``DIR/checkpoints`` when there are any. ``--devices N`` splits each step's batch
over the first N devices (a one-axis mesh); on a CPU, the cores become devices with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (set before Python starts).

Writes ``DIR/results.json`` (reward and normalised curves per seed and mean, the random
policy's and the optimal rewards, the final normalised score), ``DIR/reward_curves.png``,
``DIR/normalised.png``, and through the host loop ``DIR/config.json``,
``DIR/metrics.jsonl`` and ``DIR/completions.jsonl`` (decoded to text).
"""

from __future__ import annotations

import argparse
import sys

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

from emojax import config  # noqa: E402
from emojax.studies import grpo_tasks as study  # noqa: E402
from emojax.studies import grpo_tasks_figures as figures  # noqa: E402


def _mesh(devices: int):
    """A one-axis ("data",) mesh over the first ``devices`` devices, or None for one."""
    import jax

    if devices < 1:
        raise SystemExit(f"--devices must be >= 1, got {devices}")
    if devices == 1:
        return None
    if len(jax.devices()) < devices:
        raise SystemExit(f"--devices {devices}: JAX sees {len(jax.devices())} ({jax.devices()}); on a CPU, start "
                         f"with XLA_FLAGS=--xla_force_host_platform_device_count={devices}")
    return jax.make_mesh((devices,), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                         devices=jax.devices()[:devices])


def main(argv=None, *, compiler_options=None) -> dict:
    """Run the study from command-line arguments; ``compiler_options`` go to XLA (tests
    lower the optimisation level to compile faster)."""
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--task", choices=study.TASKS)
    extra.add_argument("--seeds", type=int, default=4)
    extra.add_argument("--set", action="append", default=[])
    extra.add_argument("--devices", type=int, default=1)
    known, rest = extra.parse_known_args(argv)
    task_sets = {}
    for item in known.set:
        if item.startswith("task."):
            if "=" not in item:
                raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
            k, v = item[len("task."):].split("=", 1)
            task_sets[k.strip()] = v.strip()
        else:
            rest += ["--set", item]
    preset, cfg, workdir = config.parse_cli(study.presets(known.task or study.TASKS[0]), rest, description=__doc__)
    if known.task is None:
        raise SystemExit(f"--task is required: one of {study.TASKS}")
    try:
        task_cfg = config.override(study.task_config(known.task, preset), task_sets)
    except ValueError as err:
        raise SystemExit(f"--set task.*: {err}") from None
    if known.seeds < 1:
        raise SystemExit(f"--seeds must be >= 1, got {known.seeds}")
    results = study.run(known.task, cfg, workdir, known.seeds, task_cfg=task_cfg, preset=preset,
                        compiler_options=compiler_options, mesh=_mesh(known.devices))
    paths = figures.save_all(results, workdir)
    final = results["final"]
    print(f"[grpo_tasks] task={known.task} preset={preset} seeds={results['seeds']} "
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
