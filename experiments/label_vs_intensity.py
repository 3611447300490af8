"""Label vs intensity agreement among simulated raters (EmoNet's argument).

    python -m experiments.label_vs_intensity --preset smoke|tiny|default --workdir DIR \\
        [--set raters_field=value ...]

Writes ``DIR/config.json``, ``DIR/results.json``, ``DIR/calibration.md``, ``DIR/summary.md``
and PNG figures.
"""

from __future__ import annotations

import os
import sys
import time

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

from emojax import config  # noqa: E402
from emojax.studies import label_vs_intensity as study  # noqa: E402
from emojax.studies import label_vs_intensity_figures as figures  # noqa: E402


def main(argv=None) -> dict:
    preset, cfg, workdir = config.parse_cli(study.PRESETS, argv, description=__doc__)
    os.makedirs(workdir, exist_ok=True)
    config.write_json(os.path.join(workdir, "config.json"), {"preset": preset, **config.to_dict(cfg)})
    start = time.time()
    results = study.run(cfg, workdir)
    results["preset"] = preset
    results["seconds"] = round(time.time() - start, 1)
    config.write_json(os.path.join(workdir, "results.json"), results)
    for name, text in (("calibration.md", study.calibration_table(results)), ("summary.md", study.results_table(results))):
        with open(os.path.join(workdir, name), "w") as f:
            f.write(text + "\n")
    paths = figures.save_all(results, workdir)
    held = {name: v["held"] for name, v in results["predictions"].items()}
    print(f"[label_vs_intensity] preset={preset} {results['seconds']}s -> {workdir}")
    print("  calibration checks:", results["calibration_checks"])
    print("  predictions held:", held)
    print("  figures:", ", ".join(os.path.basename(p) for p in paths))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
