"""RLVER in the world: the empathy environment beside RLVER's figures (issue 16, part one).

    python -m experiments.empathy --preset smoke|tiny|default --workdir DIR \\
        [--set conversation.acceptance=0.63 ...]

Writes ``DIR/run.json`` (the config), ``DIR/results.json`` and ``DIR/summary.md`` (the
per-turn changes and the reference policies' rows, paper vs ours) and prints the summary.
"""

from __future__ import annotations

import sys

from emojax import launch

LAUNCHER = launch.Launcher("empathy", __doc__, "emojax.studies.empathy:PRESETS")


def main(argv=None) -> dict:
    run = LAUNCHER.parse(argv)
    from emojax.studies import empathy as study

    with run:
        results = study.run(run.cfg, run.workdir)
        results["preset"] = run.preset
        run.write_json("results.json", results)
        print(open(run.write_text("summary.md", study.summary(results))).read())
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
