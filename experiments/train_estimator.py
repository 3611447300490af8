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

import argparse
import dataclasses
import os
import sys

from emojax import config
from emojax.train import checkpoint
from emojax.train.config import PRESETS
from emojax.train.estimator import MAIN_KEYS, run
from emojax.train.real import ARCHITECTURE


def main(argv=None) -> dict | None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--model")
    extra.add_argument("--data")
    extra.add_argument("--manual-dir")
    extra.add_argument("--resume", action="store_true")
    extra.add_argument("--stop-after-steps", type=int)
    known, rest = extra.parse_known_args(argv)
    preset, cfg, workdir = config.parse_cli(PRESETS, rest, description=__doc__)
    overrides = {k: v for k, v in (("model", known.model), ("data", known.data), ("manual_dir", known.manual_dir)) if v is not None}
    if known.model is None and known.data in ARCHITECTURE:
        overrides["model"] = ARCHITECTURE[known.data]  # the architecture that reads the data's input
    if "model" in overrides and overrides["model"] != cfg.model and not any("model_config=" in a for a in rest):
        overrides["model_config"] = {}  # a preset's sizes belong to its own architecture
    cfg = dataclasses.replace(cfg, **overrides)
    if known.resume and checkpoint.manager(workdir, cfg.keep_checkpoints).latest_step() is None:
        raise SystemExit(f"--resume: no checkpoint in {os.path.join(workdir, 'checkpoints')}")
    results = run(cfg, workdir, stop_after_steps=known.stop_after_steps)
    if results is None:
        print(f"[train_estimator] stopped after {known.stop_after_steps} steps; resume with the same command")
        return None
    print(f"[train_estimator] preset={preset} model={cfg.model} -> {workdir}/eval.json")
    for k in MAIN_KEYS:
        print(f"  {k}: {results[k]:.3f}  CI {results[k + '_ci']}")
    for name, b in results.get("baselines", {}).items():
        print(f"  baseline {name}: spearman_mean {b['spearman_mean']:.3f}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
