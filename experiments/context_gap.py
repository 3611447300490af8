"""The estimator's gap to a bag of words as the world's negation and irony rates vary.

    python -m experiments.context_gap --preset smoke|tiny|default --workdir DIR \\
        [--only I,J] [--set field=value ...]

Trains one estimator per ``(negation_rate, irony_rate)`` point under ``DIR/points/`` (a
finished point is reused), then writes ``DIR/results.json`` and ``DIR/summary.md``.
``--only 0,2`` trains just those points (by position) and writes no report: run two such
processes on two cores, then the plain command to report.
Predictions: ``docs/predictions/context_gap.md``.
"""

from __future__ import annotations

import sys

from emojax import launch


def _flags(parser) -> None:
    parser.add_argument("--only", help="train just these points (positions, e.g. 0,2) and write no report")


LAUNCHER = launch.Launcher("context_gap", __doc__, "emojax.studies.context_gap:PRESETS", _flags)


def main(argv=None) -> dict | None:
    run = LAUNCHER.parse(argv)
    from emojax.studies import context_gap as study

    points = run.cfg.points()
    chosen = None
    if run.flags.only is not None:
        try:
            chosen = [int(i) for i in run.flags.only.split(",")]
        except ValueError:
            raise SystemExit(f"--only {run.flags.only!r}: expected point positions like 0,2") from None
        if bad := [i for i in chosen if not 0 <= i < len(points)]:
            raise SystemExit(f"--only: positions {bad} out of range; this preset has {len(points)} points: {points}")
    with run:
        if chosen is not None:
            for i in chosen:
                run.say(f"point {i} {points[i]} -> {study.train_point(run.cfg, run.workdir, *points[i])}")
            return None
        results = study.run(run.cfg, run.workdir)
        results["preset"] = run.preset
        run.write_json("results.json", results)
        print(open(run.write_text("summary.md", study.summary(results))).read())
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
