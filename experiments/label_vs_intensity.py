"""Label vs intensity agreement among simulated raters (EmoNet's argument).

    python -m experiments.label_vs_intensity --preset smoke|tiny|default --workdir DIR \\
        [--set raters.noise_scale=1.5 ...]

Writes ``DIR/run.json`` (the config), ``DIR/results.json``, ``DIR/calibration.md``,
``DIR/summary.md`` and PNG figures.
"""

from __future__ import annotations

import sys

from emojax import launch

LAUNCHER = launch.Launcher("label_vs_intensity", __doc__, "emojax.studies.label_vs_intensity:PRESETS")


def main(argv=None) -> dict:
    run = LAUNCHER.parse(argv)
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    from emojax.studies import label_vs_intensity as study
    from emojax.studies import label_vs_intensity_figures as figures

    with run:
        results = study.run(run.cfg, run.workdir)
        results["preset"] = run.preset
        run.write_json("results.json", results)
        run.write_text("calibration.md", study.calibration_table(results))
        run.write_text("summary.md", study.results_table(results))
        run.written += figures.save_all(results, run.workdir)
        run.say(f"calibration checks: {results['calibration_checks']}")
        run.say(f"predictions held: { {name: p['held'] for name, p in results['predictions'].items()} }")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
