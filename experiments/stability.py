"""Preference labels versus emotion scores, as signals and as reward models (issue 5).

    python -m experiments.stability --preset smoke|tiny|default --workdir DIR [--set world.rho=0.3]

Writes ``DIR/config.json``, ``DIR/results.json``, ``DIR/summary.md`` and PNG figures, and
prints the headline table. Predictions: ``docs/predictions/stability.md``.
"""

from __future__ import annotations

import os
import sys
import time

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

from emojax import config  # noqa: E402
from emojax.studies.stability import figures, report, study  # noqa: E402


def main(argv=None) -> dict:
    preset, cfg, workdir = config.parse_cli(study.PRESETS, argv, description=__doc__)
    os.makedirs(workdir, exist_ok=True)
    config.write_json(os.path.join(workdir, "config.json"), {"preset": preset, **config.to_dict(cfg)})
    start = time.time()
    results = study.run(cfg, workdir)
    results["preset"] = preset
    results["seconds"]["wall"] = round(time.time() - start, 1)
    config.write_json(os.path.join(workdir, "results.json"), results)
    text = report.summary(results)
    with open(os.path.join(workdir, "summary.md"), "w") as f:
        f.write(text + "\n")
    paths = figures.save_all(results, workdir)
    print(f"[stability] preset={preset} {results['seconds']['wall']}s -> {workdir}")
    print(text)
    print("  figures:", ", ".join(os.path.basename(p) for p in paths))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
