"""The text-GRPO run (:mod:`emojax.studies.text_grpo`, ``experiments.text_grpo``): a work dir
that resumes to the same policy after Ctrl-C, its files, the merged checkpoint at the end,
clear refusals, and the rule users and random checkpoints the presets stand on."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import jax
import numpy as np
import pytest

from emojax import hf, interrupt, tracking
from emojax.hf import dialogue, rule_users, text_grpo, toy
from emojax.rl import policy
from emojax.studies import text_grpo as study

# save_every does not divide steps: the last step and a stopped step are saved too.
SMOKE = dataclasses.replace(study.PRESETS["smoke"], steps=3, save_every=2, eval_every=2)


def _tensors(path):
    m = hf.load(path)
    return [np.asarray(x) for x in jax.tree.leaves(m.state)]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    where = str(tmp_path_factory.mktemp("text_grpo") / "whole")
    return where, study.run(SMOKE, where)


def _rows(where, name):
    return [json.loads(line) for line in open(os.path.join(where, name))]


def test_a_run_writes_its_files_and_a_trained_checkpoint_that_loads(whole):
    where, results = whole
    assert results["steps"] == 3 and sorted(results["evaluations"]) == [0, 2, 3]  # and the last step's
    assert [r["step"] for r in tracking.read_metrics(where)] == [1, 2, 3]
    transcripts = _rows(where, "transcripts.jsonl")
    assert [t["step"] for t in transcripts] == [1, 2, 3]
    assert transcripts[0]["messages"][0]["content"] in [o for _, o in study.TOPICS]
    start, trained = _tensors(os.path.join(where, "random_policy")), _tensors(results["final"])
    assert len(start) == len(trained) and any(not np.array_equal(a, b) for a, b in zip(start, trained))
    assert hf.load_tokenizer(results["final"]).template == hf.load_tokenizer(os.path.join(where, "random_policy")).template
    assert sorted(os.listdir(os.path.join(where, "checkpoints"))) == ["2", "3"]  # keep_checkpoints=2
    # A finished run called again trains nothing and leaves the policy as it was.
    again = study.run(SMOKE, where)
    assert again["first"] is None and again["steps"] == 3 and again["evaluations"] == results["evaluations"]
    for a, b in zip(_tensors(again["final"]), trained, strict=True):
        np.testing.assert_array_equal(a, b)


def test_ctrl_c_saves_the_step_and_the_rerun_ends_equal_to_an_uninterrupted_run(whole, tmp_path, monkeypatch):
    where, _ = whole
    cut = str(tmp_path / "cut")
    step = text_grpo.TextTrainer.step
    calls = [0]

    def patched(self, key):
        calls[0] += 1
        if calls[0] == 1:
            interrupt._handler(signal.SIGINT, None)  # what Ctrl-C does between two steps' Python code
        return step(self, key)

    with monkeypatch.context() as m:
        m.setattr(text_grpo.TextTrainer, "step", patched)
        with pytest.raises(interrupt.Interrupted) as stop:
            study.run(SMOKE, cut)
    assert stop.value.step == 1 and interrupt.requested() is None  # step 1 is not a save step: saved anyway
    with open(os.path.join(cut, "transcripts.jsonl"), "a") as f:  # a hard kill after a row, before its save
        f.write(json.dumps({"step": 2, "messages": []}) + "\n" + '{"step": 3, "mess')  # and a torn line
    resumed = study.run(SMOKE, cut)
    assert resumed["first"]["step"] == 2  # steps 2 and 3 ran again, from the state saved at 1
    for a, b in zip(_tensors(resumed["final"]), _tensors(os.path.join(where, "final")), strict=True):
        np.testing.assert_array_equal(a, b)
    assert _rows(cut, "transcripts.jsonl") == _rows(where, "transcripts.jsonl")
    assert tracking.read_metrics(cut) == tracking.read_metrics(where)
    assert json.load(open(os.path.join(cut, "evaluations.json"))) == json.load(open(os.path.join(where, "evaluations.json")))


def test_lora_on_a_bfloat16_checkpoint_saves_merged_in_bfloat16(tmp_path):
    from emojax.hf import safetensors_io

    source = toy.write_random(str(tmp_path / "bf16"), policy.PRESETS["smoke"], jax.random.key(2), dtype="BF16")
    cfg = dataclasses.replace(SMOKE, policy=source, random_policy="", eval_every=0, steps=2,
                              run=dataclasses.replace(SMOKE.run, lora_rank=2))  # fmt: skip
    results = study.run(cfg, str(tmp_path / "run"))
    header, _ = safetensors_io.read_header(os.path.join(results["final"], "model.safetensors"))
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"BF16"}
    start, trained = _tensors(source), _tensors(results["final"])  # merged: the same tensors, moved
    assert len(start) == len(trained) and any(not np.array_equal(a, b) for a, b in zip(start, trained))
    assert sorted(f for f in os.listdir(results["final"]) if not f.endswith(".safetensors")) == [
        "chat_template.jinja", "config.json", "tokenizer.json", "tokenizer_config.json"]  # fmt: skip


def test_the_launcher_runs_and_refuses_a_default_run_without_checkpoints(tmp_path, capsys):
    from experiments import text_grpo as launcher

    results = launcher.main(["--preset", "smoke", "--workdir", str(tmp_path / "smoke"), "--set", "eval_every=0"])
    assert results["steps"] == 2 and os.path.isfile(tmp_path / "smoke" / "curves.png")
    assert "trained policy in" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        launcher.main(["--workdir", str(tmp_path / "default")])
    assert "Config.policy: this preset trains a checkpoint you name: --set policy=DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        launcher.main(["--workdir", str(tmp_path / "nouser"), "--set", f"policy={tmp_path / 'smoke' / 'final'}"])
    assert "Config.user: name the simulated user's checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        launcher.main(["--workdir", str(tmp_path / "missing"), "--set", f"policy={tmp_path / 'nowhere'}",
                       "--set", "user=rule:length"])  # fmt: skip
    assert f"Config.policy: {tmp_path / 'nowhere'} is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        launcher.main(["--preset", "smoke", "--workdir", str(tmp_path / "rule"), "--set", "user=rule:nobody"])
    assert "unknown user 'nobody'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "default") and not os.path.exists(tmp_path / "rule")  # nothing written


def test_profiles_are_fixed_by_key_follow_the_persona_mix_and_hold_out_what_they_say():
    a, oa = study.profiles(jax.random.key(0), 2000)
    b, ob = study.profiles(jax.random.key(0), 2000)
    c, _ = study.profiles(jax.random.key(1), 2000)
    assert a == b and oa == ob and a != c
    share = np.mean([p.persona == "negative" for p in a])
    assert abs(share - 0.41) < 0.04  # the world's mix, RLVER's 41%
    assert {p.need for p in a} == {"be_heard", "solution", "information", "reassurance"}
    held, _ = study.profiles(jax.random.key(0), 2000, evaluation=True)
    trained_pairs, held_pairs = {(p.need, p.topic) for p in a}, {(p.need, p.topic) for p in held}
    assert trained_pairs.isdisjoint(held_pairs) and len(trained_pairs) == 24 and len(held_pairs) == 8
    assert {p.need for p in held} == {p.need for p in a} and {p.topic for p in held} == {p.topic for p in a}


def test_the_length_user_answers_in_the_format_and_the_registry_resolves_names():
    view = [{"role": "system", "content": "..."}, {"role": "assistant", "content": "hi"}]
    short = rule_users.length_user([view + [{"role": "user", "content": "ok"}]], 8, jax.random.key(0))
    long = rule_users.length_user([view + [{"role": "user", "content": "x" * 60}]], 8, jax.random.key(0))
    assert dialogue.parse(short[0], 10)[0] == -5 and dialogue.parse(long[0], 10)[0] == 5
    assert rule_users.make_user("length") is rule_users.length_user
    assert rule_users.make_user("emojax.hf.rule_users:length_user") is rule_users.length_user
    with pytest.raises(ValueError, match="unknown user .nobody."):
        rule_users.make_user("nobody")


def test_a_random_checkpoint_is_fixed_by_its_key_and_loads_with_the_bundled_tokenizer(tmp_path):
    cfg = policy.PRESETS["smoke"]
    one = toy.write_random(str(tmp_path / "a"), cfg, jax.random.key(5))
    two = toy.write_random(str(tmp_path / "b"), cfg, jax.random.key(5))
    for x, y in zip(_tensors(one), _tensors(two), strict=True):
        np.testing.assert_array_equal(x, y)
    m, tok = hf.load(one), hf.load_tokenizer(one)
    assert m.config.vocab_size == toy.vocab_size() >= tok.tokenizer.get_vocab_size(with_added_tokens=True)
    enc = tok.encode_chat([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    assert sum(enc["assistant_masks"]) > 0
