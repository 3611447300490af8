"""The study's tables as Markdown, from ``results.json`` alone (README, summary.md, notebook)."""

from __future__ import annotations

from typing import Any

from emojax.studies import tables
from emojax.studies.stability.measure import CELLS, ESTIMATOR_CELLS
from emojax.studies.stability.comparisons import AS_USED

__all__ = ["ci", "summary"]

_COLUMNS = (
    ("retest ICC", "signal/retest_icc"), ("inter-judge ICC(2,1)", "signal/inter_judge_icc"),
    ("cross-frame ICC", "signal/cross_frame_icc"), ("RM seed-to-seed Spearman", "rm/mean/seed_spearman"),
    ("RM seed-to-seed Kendall", "rm/mean/seed_kendall"), ("RM gold accuracy", "rm/mean/gold_accuracy"),
    ("RM ECE", "rm/mean/ece"), ("RM calibration slope", "rm/mean/calibration_slope"),
)  # fmt: skip


def ci(c: dict[str, float] | None) -> str:
    """``0.51 [0.48, 0.54]`` for a :func:`~.study.seed_ci` dict (see :func:`emojax.studies.tables.interval`)."""
    return tables.interval(*(c.get(name) for name in ("mean", "lo", "hi"))) if c else "-"


def _headline(results) -> list[str]:
    cells = results["defaults"]["cells"]
    lines = ["| cell | " + " | ".join(n for n, _ in _COLUMNS) + " |", "|---" * (len(_COLUMNS) + 1) + "|"]
    for cell in [c for c in CELLS + ESTIMATOR_CELLS if c in cells]:
        lines.append(f"| {cell} | " + " | ".join(ci(cells[cell].get(name)) for _, name in _COLUMNS) + " |")
    return lines


def _comparisons(comp) -> list[str]:
    lines = ["| comparison (first - second) | RM stability difference | winner | gold-accuracy difference | winner |",
             "|---|---|---|---|---|"]  # fmt: skip
    name = lambda c, w: {"first": c["first"], "second": c["second"], "tie": "tie"}[w]  # noqa: E731
    for key, c in comp.items():
        s, a = c["stability"], c["gold_accuracy"]
        lines.append(f"| {key} | {ci(s['difference'])} | {name(c, s['winner'])} | {ci(a['difference'])} | "
                     f"{name(c, a['winner'])} |")  # fmt: skip
    return lines


def _signal_won(comparison: dict, metric: str) -> str:
    """``emotion``, ``preference`` or ``tie``: which signal won ``metric`` in a comparison."""
    winner = comparison[metric]["winner"]
    return "tie" if winner == "tie" else comparison[winner].split("_")[0]


def _phase(results) -> list[str]:
    rows = results.get("phase") or []
    if not rows:
        return []
    alpha = results.get("rater_alpha", {})
    lines = ["| rho | Spearman(e, gold) | genuine | non-attitude | rater noise (alpha) | steadier RM | more gold-accurate RM |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        c = r["comparisons"][AS_USED]
        a = alpha.get(str(r["noise_scale"]))
        lines.append(f"| {r['rho']} | {r['spearman_e_gold']:.2f} | {r['genuine_share']} | {r['non_attitude_share']} | "
                     f"{r['noise_scale']} ({a:.2f}) | {_signal_won(c, 'stability')} | {_signal_won(c, 'gold_accuracy')} |")  # fmt: skip
    return lines


def _phase_counts(results) -> list[str]:
    """Wins per (rater noise, rho), counted over the preference mixtures."""
    rows = results["phase"]
    alpha = results.get("rater_alpha", {})
    lines = ["Wins counted over the preference mixtures (emotion / preference / tie):", "",
             "| rater noise (alpha) | rho | steadier RM | more gold-accurate RM |", "|---|---|---|---|"]  # fmt: skip
    for ns in sorted({r["noise_scale"] for r in rows}, reverse=True):
        for rho in sorted({r["rho"] for r in rows}):
            picked = [r["comparisons"][AS_USED] for r in rows if r["noise_scale"] == ns and r["rho"] == rho]
            count = lambda m: [_signal_won(c, m) for c in picked]  # noqa: E731
            fmt = lambda ws: " / ".join(str(ws.count(w)) for w in ("emotion", "preference", "tie"))  # noqa: E731
            a = alpha.get(str(ns))
            lines.append(f"| {ns} ({a:.2f}) | {rho} | {fmt(count('stability'))} | {fmt(count('gold_accuracy'))} |")
    return lines


def _diagnostics(results) -> list[str]:
    diag = results.get("diagnostics")
    if not diag:
        return []
    by = sorted(diag["by_reasks"].items(), key=lambda kv: int(kv[0]))
    classes = [c for c in by[0][1] if c != "artifact_classified_as"]
    lines = ["", "## Diagnostic: classifying annotations by consistency (precision / recall, chance = prevalence)",
             "| re-asks | " + " | ".join(f"{c} P / R (chance)" for c in classes) + " | artifacts classified genuine |",
             "|---" * (len(classes) + 2) + "|"]  # fmt: skip
    for r, d in by:
        cells = [f"{d[c]['precision']['mean']:.2f} / {d[c]['recall']['mean']:.2f} ({d[c]['prevalence']['mean']:.2f})"
                 for c in classes]  # fmt: skip
        lines.append(f"| {r} | " + " | ".join(cells) + f" | {d['artifact_classified_as']['genuine']['mean']:.2f} |")
    lines += ["", "Reward models on filtered preference labels (binary, Bradley-Terry):",
              "| labels | gold accuracy | seed-to-seed Spearman | labels kept |", "|---|---|---|---|"]
    for name, f in diag["filters"].items():
        lines.append(f"| {name} | {ci(f['gold_accuracy'])} | {ci(f['seed_spearman'])} | {ci(f['labels_kept'])} |")
    return lines + ["", *_comparisons(diag["comparisons"])]


def _estimator_line(results: dict[str, Any]) -> list[str]:
    """Which estimator read the estimator rows, and how well it reads (its rows mean little
    without it)."""
    quality = results.get("estimator_spearman")
    if not results.get("estimator"):
        return []
    if quality is None:
        return ["", f"Estimator rows: read by {results['estimator']} (no eval.json: its quality is unknown)."]
    lo, hi = quality["ci"]
    return ["", f"Estimator rows: read by {results['estimator']}, mean Spearman {quality['spearman_mean']:.3f} "
                f"[{lo:.3f}, {hi:.3f}] against the latent intensities on its test items."]


def summary(results: dict[str, Any]) -> str:
    """The headline table, the comparisons, calibration, phase diagram and predictions."""
    cal = results["calibration"]
    lines = ["## Defaults: every cell of the 2x2 (mean [95% CI] over seeds)", *_headline(results),
             *_estimator_line(results), "",
             "## Paired seed differences (a win when the CI excludes 0)", *_comparisons(results["defaults"]["comparisons"]),
             "", "## Calibration (ours vs literature)",
             f"raw agreement {cal['ours']['raw_agreement']:.3f} (InstructGPT {cal['literature']['raw_agreement']}), "
             f"retest disagreement {cal['ours']['retest_disagreement']:.3f} (Abercrombie et al. "
             f"{cal['literature']['retest_disagreement']}), stable share 5th-95th percentile "
             f"{cal['ours']['stable_share_p5_p95'][0]:.2f}-{cal['ours']['stable_share_p5_p95'][1]:.2f} "
             f"(Converse re-analysis {cal['literature']['stable_share_range']}); within 3 points: {cal['within_3_points']}",
             "", f"Read-out difference between the true states after the two replies, sd over pairs: "
             f"{results.get('reaction_readout_sd', float('nan')):.3f} (0-7 scale)",
             "Realised Spearman(e, gold) by rho: " + ", ".join(f"{name}: {v:.2f}" for name, v in
                                                                  sorted(results["spearman_e_gold"].items())),
             "Emotion raters' mean per-category interval alpha by noise_scale: " + ", ".join(
                 f"{name}: {v:.2f}" for name, v in results.get("rater_alpha", {}).items())]  # fmt: skip
    phase = _phase(results)
    if phase:
        lines += ["", "## Phase diagram (graded emotion vs binary preference)", *_phase_counts(results), "", *phase]
    lines += _diagnostics(results)
    lines += ["", "## Predictions (docs/predictions/stability.md)"]
    for name, v in results["predictions"].items():
        lines.append(f"- {name}: {'held' if v['held'] else 'not measured' if v['held'] is None else 'failed'}")
    return "\n".join(lines)
