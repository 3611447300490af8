"""Scoring the predictions of ``docs/predictions/stability.md`` from a results dict.

Why a module of its own: the predictions were committed before the study ran, and each is
scored by a rule written here from the prediction's own words, reading only
``results`` (never re-running anything). A prediction the results cannot yet speak to is
marked ``"not measured"`` rather than dropped.
"""

from __future__ import annotations

from typing import Any

__all__ = ["score"]

AS_USED = "as used: graded emotion vs binary preference"


def _row_verdicts(rows, keep, check) -> dict[str, Any]:
    picked = [r for r in rows if keep(r)]
    if not picked:
        return {"held": None, "status": "not measured (no phase point in this regime)", "points": 0}
    ok = [bool(check(r["comparisons"][AS_USED])) for r in picked]
    return {"held": all(ok), "points": len(ok), "points_held": sum(ok),
            "settings": [{k: r[k] for k in ("rho", "genuine_share", "non_attitude_share", "noise_scale")} for r in picked]}


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

    for name in ("P6", "P7"):
        out[name] = {"held": None, "status": "not measured yet (diagnostics and filtered reward models come next)"}

    gap = abs(e["rm/mean/seed_spearman"]["mean"] - p["rm/mean/seed_spearman"]["mean"])
    shifts = {f"{cell}/{how}": abs(cells[cell][f"rm/{how}/seed_spearman"]["mean"] - cells[cell]["rm/mean/seed_spearman"]["mean"])
              for cell in ("emotion_graded", "preference_binary") for how in ("worst", "uncertainty")}  # fmt: skip
    out["P8"] = {"held": max(shifts.values()) < gap, "signal_gap": gap, "aggregation_shifts": shifts}
    return out
