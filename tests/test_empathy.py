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
    assert set(rows) == {*empathy.POLICIES, "base", *empathy.PRESETS["smoke"].rows}
    refs = results["references"]
    assert set(refs) == {"oracle", "need_blind"} and len(set(refs["need_blind"].values())) == 1
    assert "oracle (reads the hidden need)" in text
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
    for name in ("base", *empathy.PRESETS["smoke"].rows):
        row = rows[name]
        for field in ("score", "success", "failure", "gain_over_base"):
            assert set(row[field]) == {"mean", "ci"}, (name, field)
        assert set(row["gold"]) == set(empathy_table.GOLD)
        assert len(row["per_seed"]["score"]) == seeds
    for name in empathy.PRESETS["smoke"].rows:
        curve = json.loads((workdir / name / "evaluations.json").read_text())
        assert curve["steps"] == [0, 1, 2]  # the starting policies, then every chunk
        np.testing.assert_allclose(curve["figures"]["score"][0], rows["base"]["per_seed"]["score"])
        gain = np.array(rows[name]["per_seed"]["score"]) - np.array(rows["base"]["per_seed"]["score"])
        assert rows[name]["gain_over_base"]["mean"] == pytest.approx(gain.mean())
    assert [p["id"] for p in results["predictions"]] == list(range(1, 18))
    verdicts = {p["id"]: p["verdict"] for p in results["predictions"]}
    assert verdicts[9] != "not run" and {verdicts[i] for i in (6, 7, 8, 10, 11, 13, 14, 15, 16, 17)} == {"not run"}
    assert {p["verdict"] for p in results["predictions"]} <= {"held", "failed", "not run"}
    assert (workdir / "curves.png").exists() and (workdir / "estimator" / "eval.json").exists()
    assert "Predictions (docs/predictions/empathy.md" in (workdir / "summary.md").read_text()


def test_a_finished_row_is_reused(smoke):
    workdir, _ = smoke
    done = type("Done", (), {"config": empathy.PRESETS["smoke"].grpo, "task": None})()
    curve = empathy_grpo.train_row("grpo_user_emotion", done, None, str(workdir / "grpo_user_emotion"))
    assert curve["steps"][-1] == empathy.PRESETS["smoke"].grpo.steps  # nothing built, nothing trained


def test_the_ablation_rows_change_only_what_they_name():
    """The hard row trains where a served need is taken up less often (RLVER's 33.1/52.4);
    the KL row puts a KL penalty on; the PPO rows change the algorithm; all keep RLVER's
    reward and everything else."""
    cfg = empathy.PRESETS["tiny"]
    for row in ("grpo_user_emotion", "grpo_estimator_emotion"):
        assert empathy._setting(row, cfg) == (cfg.training, cfg.grpo)
    training, grpo = empathy._setting("grpo_user_emotion_hard", cfg)
    assert training.acceptance == pytest.approx(0.331 / 0.524) and grpo == cfg.grpo
    assert dataclasses.replace(training, acceptance=1.0) == cfg.training
    training, grpo = empathy._setting("grpo_user_emotion_kl", cfg)
    assert training == cfg.training and grpo == cfg.grpo.replace(beta=cfg.kl_beta) and cfg.kl_beta > 0
    training, grpo = empathy._setting("grpo_user_emotion_flattery", cfg)
    assert training == dataclasses.replace(cfg.training, flattery=cfg.flattery_control) and grpo == cfg.grpo
    assert cfg.flattery_control > cfg.training.flattery
    assert empathy.PRESETS["default"].rows == empathy.TABLE_ROWS and set(empathy.TABLE_ROWS) <= set(empathy.TRAINED_ROWS)
    # PPO's rows: the same run and conversations with the algorithm changed.
    assert empathy._setting("ppo_user_emotion", cfg) == (cfg.training, cfg.grpo.replace(algorithm="ppo"))
    hard, _ = empathy._setting("grpo_user_emotion_hard", cfg)
    assert empathy._setting("ppo_user_emotion_hard", cfg) == (hard, cfg.grpo.replace(algorithm="ppo"))
    for algo in ("grpo", "ppo"):  # think mode: a scratchpad before each reply, nothing else
        run = cfg.grpo.replace(algorithm=algo, think_tokens=cfg.think_tokens)
        assert empathy._setting(f"{algo}_user_emotion_think", cfg) == (cfg.training, run) and cfg.think_tokens > 0


def test_reference_replies_perform_the_acts_of_their_users_need():
    """A reference row's reply performs exactly the acts its table gives the user's hidden
    need, as the world's own reader parses them."""
    import jax

    from emojax.studies import empathy_reference as ref
    from emojax.world import acts, user

    chat, _ = conversation.reset(conversation.profiles(jax.random.key(2), 64), conversation.EVALUATION)
    table = np.zeros((user.NUM_NEEDS, acts.NUM_ACTS), bool)
    table[0, acts.ACT_INDEX["reflection"]] = table[1, acts.ACT_INDEX["solution"]] = True
    table[2, [acts.ACT_INDEX["information"], acts.ACT_INDEX["question"]]] = True
    table[3, acts.ACT_INDEX["flattery"]] = True
    replies = ref.fixed_replies(jax.random.key(3), chat, jax.numpy.asarray(table))
    done = jax.vmap(acts.parse)(replies).counts > 0
    np.testing.assert_array_equal(np.asarray(done), table[np.asarray(chat.user.need)])
    assert ref.ACT_SETS.shape == (255, acts.NUM_ACTS) and len({tuple(r) for r in ref.ACT_SETS}) == 255


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


def test_the_weak_helper_base_policy_is_trained_once_then_loaded(tmp_path):
    """``base_policy=weak_helper``: pre-trained into ``workdir/base_policy`` on the helper's
    conversations with the training profiles, then loaded (equal) by a later run."""
    import jax

    from emojax.rl import sft

    cfg = dataclasses.replace(empathy.PRESETS["smoke"], base_policy="weak_helper", sft_conversations=16,
                              sft=sft.SFTConfig(steps=3, batch_size=8, warmup_steps=1))  # fmt: skip
    profiles = conversation.profiles(jax.random.key(0), cfg.train_profiles)
    first = empathy._base_policy(cfg, str(tmp_path), profiles)
    assert (tmp_path / "base_policy" / "checkpoints").is_dir()
    again = empathy._base_policy(cfg, str(tmp_path), profiles)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert empathy._base_policy(dataclasses.replace(cfg, base_policy=""), str(tmp_path), profiles) is None
    with pytest.raises(ValueError, match="Config.base_policy"):
        dataclasses.replace(cfg, base_policy="gpt")


def _fake_row(score, gain, sd, low=None):
    c = lambda m, lo=None: {"mean": m, "ci": [m - 5 if lo is None else lo, m + 5]}  # noqa: E731
    return {"score": c(score, low), "gain_over_base": c(gain), "seed_sd": {"score": sd}, "largest_fall": c(1.0),
            "change_over_base": {name: c(0.0) for name in empathy_table.GOLD},
            "gold": {name: c(0.5) for name in empathy_table.GOLD}}  # fmt: skip


@pytest.mark.parametrize("ppo_score, verdict", [(40.0, "held"), (70.0, "failed")])
def test_ppo_and_think_predictions_can_fail(ppo_score, verdict):
    """Predictions 10, 11, 16 and 17 are judged on the rows' figures: each flips when they do."""
    rows = {"grpo_user_emotion": _fake_row(60.0, 30.0, 5.0),
            "ppo_user_emotion": _fake_row(ppo_score, ppo_score - 30.0, 8.0 if verdict == "held" else 2.0),
            "ppo_user_emotion_hard": _fake_row(ppo_score - 10.0, 10.0 if verdict == "held" else -2.0, 4.0),
            "grpo_user_emotion_think": _fake_row(62.0 if verdict == "held" else 90.0, 32.0, 5.0),
            "ppo_user_emotion_think": _fake_row(ppo_score, 0.0, 1.0)}  # fmt: skip
    rows = {name: {"name": name, **row} for name, row in rows.items()}
    verdicts = {p["id"]: p["verdict"] for p in empathy_table.score_predictions(rows, None)}
    assert [verdicts[i] for i in (10, 11, 16, 17)] == [verdict] * 4


def test_every_trained_row_has_its_own_colour():
    from emojax.studies import empathy_figures

    colours = [empathy_figures._COLOURS[row] for row in empathy.TRAINED_ROWS]
    assert len(set(colours)) == len(colours)
