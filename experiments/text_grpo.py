"""GRPO on real text: a local Hugging Face checkpoint learns from a simulated user's emotion
(:mod:`emojax.studies.text_grpo`).

    python -m experiments.text_grpo --preset smoke|tiny --workdir DIR
    python -m experiments.text_grpo --workdir DIR --set policy=/models/Qwen2.5-0.5B-Instruct \\
        --set user=/models/Qwen2.5-7B-Instruct [--set run.lora_rank=0] [--set dtype=float32]

``smoke`` and ``tiny`` train a random checkpoint (written into ``DIR/random_policy`` with
the bundled tokenizer) against a rule user (``user=rule:length``: pleased by long replies),
to see the loop learn with no download; ``default`` is RLVER's run on the checkpoints you
name (no network: the folders must hold ``config.json``, safetensors, ``tokenizer.json``
and a chat template). Resumes from ``DIR/checkpoints``. Writes ``DIR/run.json``,
``DIR/results.json``, ``DIR/metrics.jsonl``, ``DIR/evaluations.json``,
``DIR/transcripts.jsonl``, ``DIR/curves.png`` and ``DIR/final/`` (the trained policy,
adapters merged, as a Hugging Face folder).
"""

from __future__ import annotations

import sys

from emojax import launch

LAUNCHER = launch.Launcher("text_grpo", __doc__, "emojax.studies.text_grpo:PRESETS")


def main(argv=None) -> dict:
    run = LAUNCHER.parse(argv)
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    from emojax.studies import text_grpo as study
    from emojax.studies import text_grpo_figures as figures

    try:
        study.check_inputs(run.cfg)
    except (ValueError, FileNotFoundError) as err:  # before the work dir is claimed: nothing written
        print(f"[text_grpo] {err}", file=sys.stderr)
        raise SystemExit(2) from None
    with run:
        results = study.run(run.cfg, run.workdir)
        results["preset"] = run.preset
        run.write_json("results.json", results)
        run.written += figures.save_all(results, run.workdir)
        run.say(study.summary(results))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
