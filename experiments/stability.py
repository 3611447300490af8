"""Preference labels versus emotion scores, as signals and as reward models (issue 5).

    python -m experiments.stability --preset smoke|tiny|default --workdir DIR [--set world.rho=0.3]

Writes ``DIR/run.json`` (the config), ``DIR/results.json``, ``DIR/summary.md`` and PNG
figures, and prints the headline table. Predictions: ``docs/predictions/stability.md``.
"""

from __future__ import annotations

import os
import sys

from emojax import launch

LAUNCHER = launch.Launcher("stability", __doc__, "emojax.studies.stability.study:PRESETS")


def main(argv=None) -> dict:
    run = LAUNCHER.parse(argv)
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    from emojax.studies.stability import figures, report, study

    if run.cfg.estimator and os.path.isdir(run.cfg.estimator):
        run.inputs["estimator"] = launch.input_record(run.cfg.estimator, "config.json")
    with run:
        results = study.run(run.cfg, run.workdir)
        results["preset"] = run.preset
        run.write_json("results.json", results)
        text = run.write_text("summary.md", report.summary(results))
        run.written += figures.save_all(results, run.workdir)
        print(open(text).read())
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
