"""The estimator's gap to a bag of words as the world's negation and irony rates vary.

    python -m experiments.context_gap --preset smoke|tiny|default --workdir DIR \\
        [--only I,J] [--set field=value ...]

Trains one estimator per ``(negation_rate, irony_rate)`` point under ``DIR/points/`` (a
finished point is reused), then writes ``DIR/config.json``, ``DIR/results.json`` and
``DIR/summary.md``. ``--only 0,2`` trains just those points (by position) and writes no
report: run two such processes on two cores, then the plain command to report.
Predictions: ``docs/predictions/context_gap.md``.
"""

from __future__ import annotations

import os
import sys
import time

from emojax import config
from emojax.studies import context_gap as study


def _flags(parser) -> None:
    parser.add_argument("--only", help="train just these points (positions, e.g. 0,2) and write no report")


def main(argv=None) -> dict | None:
    preset, cfg, workdir, _, flags = config.parse_launch(study.PRESETS, argv, __doc__, _flags)
    points = cfg.points()
    if flags.only is not None:
        try:
            chosen = [int(i) for i in flags.only.split(",")]
        except ValueError:
            raise SystemExit(f"--only {flags.only!r}: expected point positions like 0,2") from None
        bad = [i for i in chosen if not 0 <= i < len(points)]
        if bad:
            raise SystemExit(f"--only: positions {bad} out of range; this preset has {len(points)} points: {points}")
        for i in chosen:
            path = study.train_point(cfg, workdir, *points[i])
            print(f"[context_gap] point {i} {points[i]} -> {path}")
        return None
    start = time.time()
    os.makedirs(workdir, exist_ok=True)
    config.write_json(os.path.join(workdir, "config.json"), {"preset": preset, **config.to_dict(cfg)})
    results = study.run(cfg, workdir)
    results["preset"] = preset
    results["seconds"] = round(time.time() - start, 1)
    config.write_json(os.path.join(workdir, "results.json"), results)
    text = study.summary(results)
    with open(os.path.join(workdir, "summary.md"), "w") as f:
        f.write(text + "\n")
    print(f"[context_gap] preset={preset} {results['seconds']}s -> {workdir}\n{text}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
