"""Every study's smoke ``results.json``, run and compared: proof that a refactor changed no result.

    python -m experiments.smoke_results run --out DIR       # each study's smoke preset -> DIR/<name>.json
    python -m experiments.smoke_results compare OLD NEW     # exit 1 and list the differences, if any

Each launcher runs in a fresh process with its own work dir under ``DIR/work``; wall times
and the run's own paths are taken out before comparing (:mod:`emojax.bench.smoke_results`).

To check a change: run ``run`` in a clean checkout of the commit before it
(``git worktree add /tmp/before COMMIT`` and ``cd /tmp/before``), then here, then ``compare``.
"""

from __future__ import annotations

import sys

from emojax.bench import smoke_results

if __name__ == "__main__":
    sys.exit(smoke_results.main(sys.argv[1:], __doc__))
