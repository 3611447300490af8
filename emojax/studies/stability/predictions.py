"""Scoring the predictions of ``docs/predictions/stability.md`` from a results dict.

Why a module of its own: the predictions were committed before the study ran, and each is
scored by a rule written here from the prediction's own words, reading only
``results`` (never re-running anything). A prediction the results cannot yet speak to is
marked ``"not measured"`` rather than dropped.
"""

from __future__ import annotations

from typing import Any

from emojax.studies.stability.comparisons import AS_USED

__all__ = ["score"]


def _row_verdicts(rows, keep, check) -> dict[str, Any]:
    picked = [r for r in rows if keep(r)]
    if not picked:
        return {"held": None, "status": "not measured (no phase point in this regime)", "points": 0}
    ok = [bool(check(r["comparisons"][AS_USED])) for r in picked]
    return {"held": all(ok), "points": len(ok), "points_held": sum(ok),
            "settings": [{name: r[name] for name in ("rho", "genuine_share", "non_attitude_share", "noise_scale")} for r in picked]}


def score(results: dict[str, Any]) -> dict[str, Any]:
    """``{P1: {"held": bool | None, ...evidence}}`` for every prediction."""
    cells = results["defaults"]["cells"]
    comp = results["defaults"]["comparisons"]
    out: dict[str, Any] = {}

    e, p = cells["emotion_graded"], cells["preference_binary"]
    disjoint = {m: e[f"signal/{m}"]["lo"] > p[f"signal/{m}"]["hi"] for m in ("retest_icc", "inter_judge_icc")}
    out["P1"] = {"held": all(disjoint.values()), "emotion_ci_above_preference": disjoint,
                 "emotion_graded": {m: e[f"signal/{m}"] for m in disjoint},
                 "preference_binary": {m: p[f"signal/{m}"] for m in disjoint}}  # fmt: skip

    parts = {name: comp[name]["stability"]["winner"] == "first" for name in (
        "emotion: graded vs binary", "preference: graded vs binary", "binary: emotion vs preference")}  # fmt: skip
    out["P2"] = {"held": all(parts.values()), "parts": parts}

    rows = results.get("phase", [])
    if rows:
        noisiest = max(r["noise_scale"] for r in rows)
        cleanest = min(r["noise_scale"] for r in rows)
        out["P3"] = _row_verdicts(
            rows, lambda r: r["noise_scale"] == noisiest and r["genuine_share"] >= 0.7 and r["non_attitude_share"] <= 0.1,
            lambda c: c["stability"]["winner"] == "second" and c["gold_accuracy"]["winner"] == "second")
        out["P4"] = _row_verdicts(
            rows, lambda r: r["rho"] <= 0.25 and r["noise_scale"] == cleanest,
            lambda c: c["stability"]["winner"] == "first" and c["gold_accuracy"]["winner"] == "second")
    else:
        out["P3"] = out["P4"] = {"held": None, "status": "not measured (phase diagram skipped)"}

    c = comp[AS_USED]
    out["P5"] = {"held": c["stability"]["winner"] == "first" and c["gold_accuracy"]["winner"] in ("first", "tie"),
                 "stability": c["stability"], "gold_accuracy": c["gold_accuracy"]}  # fmt: skip

    diag = results.get("diagnostics")
    if diag:
        by = diag["by_reasks"]
        rs = sorted(by, key=int)
        na_recall = {r: by[r]["non_attitude"]["recall"]["mean"] for r in rs}
        expected = {r: 1 - 2 ** -int(r) for r in rs}
        parts = {
            "non_attitude_recall_rises": all(na_recall[a] < na_recall[b] for a, b in zip(rs, rs[1:])),
            "non_attitude_recall_near_1_minus_2^-r": all(abs(na_recall[r] - expected[r]) <= 0.1 for r in rs),
            "non_attitude_precision_above_chance": all(
                by[r]["non_attitude"]["precision"]["mean"] > by[r]["non_attitude"]["prevalence"]["mean"] for r in rs),
            "constructed_recall_below_0.8": all(by[r]["constructed"]["recall"]["mean"] < 0.8 for r in rs),
            "artifact_classified_genuine_over_0.8": all(
                by[r]["artifact_classified_as"]["genuine"]["mean"] > 0.8 for r in rs),
        }  # fmt: skip
        out["P6"] = {"held": all(parts.values()), "parts": parts, "non_attitude_recall": na_recall,
                     "expected": expected}  # fmt: skip
        comp = diag["comparisons"]
        parts7 = {"consistency beats pooled": comp["consistency vs pooled"]["gold_accuracy"]["winner"] == "first",
                  "consistency beats abstain": comp["consistency vs abstain"]["gold_accuracy"]["winner"] == "first"}
        out["P7"] = {"held": all(parts7.values()), "parts": parts7}
    else:
        out["P6"] = out["P7"] = {"held": None, "status": "not measured (diagnostics skipped)"}

    gap = abs(e["rm/mean/seed_spearman"]["mean"] - p["rm/mean/seed_spearman"]["mean"])
    shifts = {f"{cell}/{how}": abs(cells[cell][f"rm/{how}/seed_spearman"]["mean"] - cells[cell]["rm/mean/seed_spearman"]["mean"])
              for cell in ("emotion_graded", "preference_binary") for how in ("worst", "uncertainty")}  # fmt: skip
    out["P8"] = {"held": max(shifts.values()) < gap, "signal_gap": gap, "aggregation_shifts": shifts}
    return out
