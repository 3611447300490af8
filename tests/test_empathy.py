"""The empathy study: RLVER's figures beside the world's, and GRPO rows on the user's emotion,
from one command."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from emojax.studies import empathy, empathy_grpo, empathy_table
from emojax.world import conversation


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from experiments import empathy as launcher

    workdir = tmp_path_factory.mktemp("empathy")
    fast = {"xla_backend_optimization_level": 0}  # compiles in half the time
    return workdir, launcher.main(["--preset", "smoke", "--workdir", str(workdir)], compiler_options=fast)


def test_smoke_run_writes_paper_beside_ours(smoke):
    workdir, results = smoke
    assert json.loads((workdir / "results.json").read_text())["preset"] == "smoke"
    text = (workdir / "summary.md").read_text()
    assert "RLVER logs" in text and "RLVER base (Qwen2.5-7B) | 13.3 | 2% | 76%" in text
    rows = {r["name"]: r for r in results["rows"]}
    assert set(rows) == {*empathy.POLICIES, "base", *empathy.GRPO_ROWS}
    for row in rows.values():
        assert 0 <= row["success"]["mean"] <= 1 and row["score"]["mean"] <= 100
        assert 1 <= row["turns"]["mean"] <= conversation.EVALUATION.max_turns
        assert row["score"]["ci"][0] <= row["score"]["mean"] <= row["score"]["ci"][1]
    ours = results["changes"]["ours"]
    assert ours["turns_counted"] > 0 and ours["share_5"] + ours["share_10"] > 0.9  # the rest: capped at 100


def test_smoke_run_trains_the_grpo_rows(smoke):
    workdir, results = smoke
    rows = {r["name"]: r for r in results["rows"]}
    seeds = len(empathy.PRESETS["smoke"].grpo.seeds)
    for name in ("base", *empathy.GRPO_ROWS):
        row = rows[name]
        for field in ("score", "success", "failure", "gain_over_base"):
            assert set(row[field]) == {"mean", "ci"}, (name, field)
        assert set(row["gold"]) == set(empathy_table.GOLD)
        assert len(row["per_seed"]["score"]) == seeds
    for name in empathy.GRPO_ROWS:
        curve = json.loads((workdir / name / "evaluations.json").read_text())
        assert curve["steps"] == [0, 1, 2]  # the starting policies, then every chunk
        np.testing.assert_allclose(curve["figures"]["score"][0], rows["base"]["per_seed"]["score"])
        gain = np.array(rows[name]["per_seed"]["score"]) - np.array(rows["base"]["per_seed"]["score"])
        assert rows[name]["gain_over_base"]["mean"] == pytest.approx(gain.mean())
    assert [p["id"] for p in results["predictions"]] == [1, 2, 3, 4, 5, 6]
    assert {p["verdict"] for p in results["predictions"]} <= {"held", "failed", "not run"}
    assert (workdir / "curves.png").exists() and (workdir / "estimator" / "eval.json").exists()
    assert "Predictions (docs/predictions/empathy.md" in (workdir / "summary.md").read_text()


def test_a_finished_row_is_reused(smoke):
    workdir, _ = smoke
    done = type("Done", (), {"config": empathy.PRESETS["smoke"].grpo, "task": None})()
    curve = empathy_grpo.train_row("grpo_user_emotion", done, None, str(workdir / "grpo_user_emotion"))
    assert curve["steps"][-1] == empathy.PRESETS["smoke"].grpo.steps  # nothing built, nothing trained


def test_the_world_can_show_the_opposite():
    """Users who never take a reply up: the behaviour policy's conversations go worse."""
    cfg = dataclasses.replace(empathy.PRESETS["smoke"], num_profiles=8, rows=())
    refusing = dataclasses.replace(cfg, conversation=dataclasses.replace(cfg.conversation, acceptance=0.0))
    score = lambda c: {r["name"]: r for r in empathy.run(c)["rows"]}["behaviour"]["score"]["mean"]  # noqa: E731
    assert score(refusing) < score(cfg) - 5


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="Config.repeats"):
        empathy.Config(repeats=1)
    with pytest.raises(ValueError, match="Config.rows"):
        empathy.Config(rows=("grpo_nothing",))
    with pytest.raises(ValueError, match="Config.estimator"):
        empathy.Config(estimator="")
    with pytest.raises(ValueError, match="Config.grpo"):
        empathy.Config(grpo=empathy.RLVER_GRPO.replace(seeds=(0,)))
    assert np.isclose(empathy.RLVER_BASE["failure"], 0.76)


def test_a_damaged_evaluations_file_is_named(tmp_path):
    row = tmp_path / "grpo_user_emotion"
    row.mkdir()
    (row / "evaluations.json").write_text('{"steps": [0, 1')
    done = type("Done", (), {"config": empathy.PRESETS["smoke"].grpo, "task": None})()
    with pytest.raises(ValueError, match=r"evaluations\.json: not the JSON this study writes \(line 1"):
        empathy_grpo.train_row("grpo_user_emotion", done, None, str(row))
