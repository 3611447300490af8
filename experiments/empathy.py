"""RLVER in the world: the empathy environment beside RLVER's figures, and GRPO and PPO on the
simulated user's emotion (its own report, or the trained estimator reading its words).

    python -m experiments.empathy --preset smoke|tiny|default --workdir DIR \\
        [--set rows=grpo_user_emotion,ppo_user_emotion] [--set base_policy=weak_helper] \\
        [--set conversation.acceptance=0.63 ...]

Rows: ``grpo_user_emotion``, ``grpo_estimator_emotion`` (the presets' two), and
``grpo_user_emotion_hard``, ``grpo_user_emotion_kl``, ``grpo_user_emotion_flattery``,
``ppo_user_emotion``, ``ppo_user_emotion_hard``, ``grpo_user_emotion_think``,
``ppo_user_emotion_think`` (``--set grpo.vf_coef=...`` and the other PPO fields of the run
apply to the ``ppo_*`` rows; ``--set think_tokens=...`` to the ``*_think`` rows).
``base_policy=weak_helper`` starts every row from a policy pre-trained on a weak helper's
conversations (RLVER's starting point in the world).

Writes ``DIR/run.json`` (the config), ``DIR/results.json``, ``DIR/summary.md`` (the per-turn
changes, the reference policies' and the trained rows, paper vs ours, the predictions scored),
``DIR/curves.png`` and one folder per trained row (checkpoints, metrics, held-out
evaluations; a finished row is reused, also by a launch that asks for other rows in the
same work dir: ``--set rows=...`` can build the table a row at a time), and prints the summary.
"""

from __future__ import annotations

import sys

from emojax import launch

# A work dir gathers rows: a launch with other ``rows`` and the same config otherwise reuses
# the rows it finds and trains the rest (each row's directory checks its own config).
LAUNCHER = launch.Launcher("empathy", __doc__, "emojax.studies.empathy:PRESETS", parts=("rows",))


def main(argv=None, *, compiler_options=None) -> dict:
    """Run the study from command-line arguments; ``compiler_options`` go to XLA (tests
    lower the optimisation level to compile faster)."""
    run = LAUNCHER.parse(argv)
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    from emojax.studies import empathy as study
    from emojax.studies import empathy_figures

    with run:
        results = study.run(run.cfg, run.workdir, compiler_options=compiler_options)
        results["preset"] = run.preset
        run.write_json("results.json", results)
        run.written += empathy_figures.save_all(results, run.workdir)
        print(open(run.write_text("summary.md", study.summary(results))).read())
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
