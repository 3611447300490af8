"""Train an emotion-intensity estimator on rater targets and evaluate it.

    python -m experiments.train_estimator --preset smoke|tiny|default --workdir DIR \\
        [--model NAME|module.path:Class] [--data NAME] [--manual-dir PATH] [--resume] \\
        [--stop-after-steps N] [--set field=value ...]

Real data (``docs/datasets.md``): ``--data emonet_face_hq`` or ``--data goemotions_raw`` with
``--manual-dir`` the folder of downloaded files; without ``--model`` the architecture that
reads the data's input is trained (``embedding_heads`` / ``text_transformer``). Bad rows stop
the build unless ``--set on_bad_row=skip``.

Resumes automatically from ``DIR/checkpoints``; ``--resume`` insists on a checkpoint.
Writes ``DIR/config.json``, ``DIR/metrics.jsonl``, ``DIR/eval.json`` (and W&B, offline
unless ``WANDB_MODE`` says otherwise).
"""

from __future__ import annotations

import os
import sys

from emojax import checkpoint, config
from emojax.train import config as train_config
from emojax.train.estimator import run
from emojax.train.evaluate import MAIN_KEYS


def _flags(parser) -> None:
    parser.add_argument("--model", help="a registered architecture or module.path:Class (default: what --data reads)")
    parser.add_argument("--data", help="a simulated dataset's name, emonet_face_hq or goemotions_raw")
    parser.add_argument("--manual-dir", help="the folder of a real dataset's downloaded files")
    parser.add_argument("--resume", action="store_true", help="insist on resuming from DIR/checkpoints")
    parser.add_argument("--stop-after-steps", type=int, help="stop (with a checkpoint) after this many steps")


def main(argv=None) -> dict | None:
    preset, cfg, workdir, assigned, flags = config.parse_launch(train_config.PRESETS, argv, __doc__, _flags)
    cfg = train_config.choose(cfg, model=flags.model, data=flags.data, manual_dir=flags.manual_dir,
                              keep_model_config="model_config" in assigned)
    if flags.resume and checkpoint.manager(workdir, cfg.keep_checkpoints).latest_step() is None:
        raise SystemExit(f"--resume: no checkpoint in {os.path.join(workdir, 'checkpoints')}")
    results = run(cfg, workdir, stop_after_steps=flags.stop_after_steps)
    if results is None:
        print(f"[train_estimator] stopped after {flags.stop_after_steps} steps; resume with the same command")
        return None
    print(f"[train_estimator] preset={preset} model={cfg.model} -> {workdir}/eval.json")
    for name in MAIN_KEYS:
        print(f"  {name}: {results[name]:.3f}  CI {results[name + '_ci']}")
    for name, b in results.get("baselines", {}).items():
        print(f"  baseline {name}: spearman_mean {b['spearman_mean']:.3f}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
