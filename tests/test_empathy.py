"""The empathy study, part one: RLVER's figures beside the world's, from one command."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from emojax.studies import empathy
from emojax.world import conversation


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from experiments import empathy as launcher

    workdir = tmp_path_factory.mktemp("empathy")
    return workdir, launcher.main(["--preset", "smoke", "--workdir", str(workdir)])


def test_smoke_run_writes_paper_beside_ours(smoke):
    workdir, results = smoke
    assert json.loads((workdir / "results.json").read_text())["preset"] == "smoke"
    text = (workdir / "summary.md").read_text()
    assert "RLVER logs" in text and "RLVER base (Qwen2.5-7B) | 13.3 | 2% | 76%" in text
    rows = {r["name"]: r for r in results["rows"]}
    assert set(rows) == set(empathy.POLICIES)
    for row in rows.values():
        assert 0 <= row["success"]["mean"] <= 1 and row["score"]["mean"] <= 100
        assert 1 <= row["turns"]["mean"] <= conversation.EVALUATION.max_turns
        assert row["score"]["ci"][0] <= row["score"]["mean"] <= row["score"]["ci"][1]
    ours = results["changes"]["ours"]
    assert ours["turns_counted"] > 0 and ours["share_5"] + ours["share_10"] > 0.9  # the rest: capped at 100


def test_the_world_can_show_the_opposite():
    """Users who never take a reply up: the behaviour policy's conversations go worse."""
    cfg = dataclasses.replace(empathy.PRESETS["smoke"], num_profiles=8)
    refusing = dataclasses.replace(cfg, conversation=dataclasses.replace(cfg.conversation, acceptance=0.0))
    score = lambda c: {r["name"]: r for r in empathy.run(c)["rows"]}["behaviour"]["score"]["mean"]  # noqa: E731
    assert score(refusing) < score(cfg) - 5


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="Config.repeats"):
        empathy.Config(repeats=1)
    assert np.isclose(empathy.RLVER_BASE["failure"], 0.76)
