"""Label vs intensity agreement among simulated raters (EmoNet's argument).

    python -m experiments.label_vs_intensity --preset smoke|tiny|default --workdir DIR \\
        [--set raters_field=value ...]

Writes ``DIR/config.json``, ``DIR/results.json``, ``DIR/calibration.md`` and PNG figures.
"""

from __future__ import annotations

import os
import sys
import time

from emojax import config
from emojax.studies import label_vs_intensity as study
from emojax.studies import label_vs_intensity_figures as figures


def main(argv=None) -> dict:
    preset, cfg, workdir = config.parse_cli(study.PRESETS, argv, description=__doc__)
    os.makedirs(workdir, exist_ok=True)
    config.write_json(os.path.join(workdir, "config.json"), {"preset": preset, **config.to_dict(cfg)})
    start = time.time()
    results = study.run(cfg)
    results["preset"] = preset
    results["seconds"] = round(time.time() - start, 1)
    config.write_json(os.path.join(workdir, "results.json"), results)
    with open(os.path.join(workdir, "calibration.md"), "w") as f:
        f.write(study.calibration_table(results) + "\n")
    paths = figures.save_all(results, workdir)
    held = {k: v["held"] for k, v in results["predictions"].items()}
    print(f"[label_vs_intensity] preset={preset} {results['seconds']}s -> {workdir}")
    print("  calibration checks:", results["calibration_checks"])
    print("  predictions held:", held)
    print("  figures:", ", ".join(os.path.basename(p) for p in paths))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
