"""Train an emotion-intensity estimator on rater targets and evaluate it.

    python -m experiments.train_estimator --preset smoke|tiny|default --workdir DIR \\
        [--model NAME|module:Class] [--data NAME] [--manual-dir PATH] [--resume] [--stop-after-steps N]

Real data (``docs/datasets.md``): ``--data emonet_face_hq|goemotions_raw`` with ``--manual-dir``
the downloaded files; without ``--model`` the architecture that reads the data's input is
trained. Bad rows stop the build unless ``--set on_bad_row=skip``.

Resumes from ``DIR/checkpoints`` (``--resume`` insists on one). Writes ``DIR/run.json``,
``config.json``, ``metrics.jsonl``, ``eval.json`` and W&B's offline run.
"""

from __future__ import annotations

import sys

from emojax import launch


def _flags(parser) -> None:
    parser.add_argument("--model", help="a registered architecture or module.path:Class (default: what --data reads)")
    parser.add_argument("--data", help="a simulated dataset's name, emonet_face_hq or goemotions_raw")
    parser.add_argument("--manual-dir", help="the folder of a real dataset's downloaded files")
    parser.add_argument("--resume", action="store_true", help="insist on resuming from DIR/checkpoints")
    parser.add_argument("--stop-after-steps", type=int, help="stop (with a checkpoint) after this many steps")


LAUNCHER = launch.Launcher("train_estimator", __doc__, "emojax.train.config:PRESETS", _flags)


def main(argv=None) -> dict | None:
    run = LAUNCHER.parse(argv)
    from emojax import checkpoint
    from emojax.train import config as train_config
    from emojax.train import estimator, evaluate

    flags = run.flags
    run.cfg = train_config.choose(run.cfg, model=flags.model, data=flags.data, manual_dir=flags.manual_dir,
                                  keep_model_config="model_config" in run.assigned)  # fmt: skip
    estimator.check(run.cfg)  # a bad model fails before the work dir is made
    if flags.resume and checkpoint.manager(run.workdir, run.cfg.keep_checkpoints).latest_step() is None:
        raise SystemExit(f"--resume: no checkpoint in {run.path('checkpoints')}")
    with run:
        results = estimator.run(run.cfg, run.workdir, stop_after_steps=flags.stop_after_steps)
        if results is None:
            run.say(f"stopped after {flags.stop_after_steps} steps; resume with the same command")
            return None
        run.written.append(run.path("eval.json"))
        for name in evaluate.MAIN_KEYS:
            lo, hi = results[name + "_ci"]
            run.say(f"{name}: {results[name]:.3f} (95% bootstrap CI {lo:.3f} to {hi:.3f})")
        for name, b in results.get("baselines", {}).items():
            run.say(f"baseline {name}: spearman_mean {b['spearman_mean']:.3f}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
