"""The GRPO task study end to end: the launcher's smoke preset on both tasks, 2 seeds.

Compile time is what these tests cost, so each task runs once (module fixtures), at
XLA:CPU's lowest optimisation level, and every check reads its work dir.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from emojax import config
from emojax.rl.config import GRPOConfig
from emojax.rl.tasks import need_reply, reverse
from emojax.studies import grpo_tasks as study
from emojax.world import dialogue, vocab
from experiments import grpo_tasks as launcher

FAST = {"xla_backend_optimization_level": 0}  # halves XLA:CPU compile time
KEYS = {"task", "preset", "seeds", "steps", "optimum_reward", "random_reward", "random_reward_se", "reward",
        "normalised", "final", "target", "reached", "steps_to_target", "traces", "config", "task_config", "seconds"}


@pytest.fixture(scope="module", params=study.TASKS)
def smoke(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(request.param)
    results = launcher.main(["--preset", "smoke", "--workdir", str(workdir), "--set", f"task={request.param}"],
                            compiler_options=FAST)
    return request.param, workdir, results


def test_smoke_writes_results_figures_and_logs(smoke):
    name, workdir, returned = smoke
    for file in ("results.json", "reward_curves.png", "normalised.png", "config.json", "metrics.jsonl",
                 "completions.jsonl"):
        assert (workdir / file).stat().st_size > 0, file
    results = json.loads((workdir / "results.json").read_text())
    assert KEYS <= set(results)
    assert results["task"] == name and results["preset"] == "smoke" and results["seeds"] == [0, 1]
    steps = getattr(study.PRESETS["smoke"], name).grpo.steps
    for key in ("reward", "normalised"):
        assert set(results[key]["per_seed"]) == {"0", "1"}
        per_seed = np.array([results[key]["per_seed"][s] for s in ("0", "1")])
        assert per_seed.shape == (2, steps) and np.all(np.isfinite(per_seed))
        np.testing.assert_allclose(results[key]["mean"], per_seed.mean(0), rtol=1e-6)
    # The bounds: the uniform policy scores well below the optimum; normalising maps them to 0 and 1.
    lo, hi = results["random_reward"], results["optimum_reward"]
    assert 0 <= lo < hi and results["random_reward_se"] < 0.05 * (hi - lo)
    reward = np.array(results["reward"]["mean"])
    np.testing.assert_allclose(results["normalised"]["mean"], (reward - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    window = study.final_window(steps)
    assert results["final"]["steps"] == [steps - window + 1, steps]
    np.testing.assert_allclose(results["final"]["reward"]["mean"], reward[-window:].mean(), rtol=1e-6)
    assert results["reached"] == (results["final"]["normalised"]["mean"] >= study.TARGET)
    # The chunk compiled once for the whole run (two chunks, two seeds in one program).
    assert results["traces"] == {"run_chunk_seeds": 1}
    assert returned["final"] == results["final"]


def test_smoke_logs_metrics_and_readable_completions(smoke):
    name, workdir, _ = smoke
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    assert {"reward", "reward_std", "seeds/0/reward", "seeds/1/reward", "entropy", "step_time"} <= set(rows[0])
    completions = [json.loads(line) for line in (workdir / "completions.jsonl").read_text().splitlines()]
    assert completions and {c["seed"] for c in completions} == {0, 1}
    prompt = completions[0]["prompt"]
    if name == "reverse":
        assert prompt.endswith("|") and len(prompt) == reverse.ReverseConfig().length + 1
    else:
        assert any(" ".join(p) in prompt for p in need_reply.NEED_PHRASES)


def test_resume_rewrites_results_without_training(smoke):
    """A second call on a finished work dir trains nothing and reports the same curves."""
    name, workdir, first = smoke
    cfg = dataclasses.replace(study.PRESETS["smoke"], task=name)
    again = study.run(cfg, str(workdir), compiler_options=FAST)
    assert again["trained_steps_this_call"] == 0
    assert again["reward"] == first["reward"]


def test_decoders():
    assert study.decoder("reverse")(np.array([3, 4, 12, reverse.SEP, 5, reverse.END, 0])) == "abj|c<end>"
    text = study.decoder("need_reply")(np.array([1, *dialogue.need_phrase_table()[1][:5]]))
    assert text == "what could i try ?"
    frames = np.array([need_reply.FRAME_ID["<inform>"], *vocab.ids(["coffee", "is", "good"]), vocab.EOS_ID])
    assert study.decoder("need_reply")(frames) == "in fact coffee is good"


def test_presets_validate_and_keep_the_task_as_hard_as_the_issue():
    assert set(study.PRESETS) == {"smoke", "tiny", "default"}
    for preset, cfg in study.PRESETS.items():
        for name in study.TASKS:
            setup = getattr(cfg, name)
            assert isinstance(setup.grpo, GRPOConfig) and setup.grpo == study.presets(name)[preset].replace(
                seeds=setup.grpo.seeds)  # each task keeps the GRPO run tuned for it
            assert setup.task == study.task_config(name, preset)
        assert cfg.reverse.task.length >= 6 and cfg.reverse.task.num_symbols >= 10
        assert cfg.reverse.grpo.seeds == cfg.need_reply.grpo.seeds
    assert study.PRESETS["tiny"].need_reply.grpo.learning_rate != study.PRESETS["tiny"].reverse.grpo.learning_rate
    with pytest.raises(KeyError):
        study.presets("nope")
    with pytest.raises(ValueError, match="task"):
        dataclasses.replace(study.PRESETS["smoke"], task="nope")


def test_cli_sets_nested_task_fields_and_rejects_unknown_ones(tmp_path):
    """Everything is a config field: the task, each task's config and GRPO run, the devices."""
    cfg = config.override(study.PRESETS["tiny"], {"task": "need_reply", "need_reply.task.pointers": "false",
                                                  "need_reply.grpo.seeds": "4,5", "devices": "2"})
    assert cfg.setup is cfg.need_reply and cfg.setup.task.pointers is False and cfg.setup.grpo.seeds == (4, 5)
    assert cfg.devices == 2 and cfg.reverse == study.PRESETS["tiny"].reverse
    for bad in ("task=nope", "reverse.task.nope=1", "need_reply.grpo.nope=1", "devices=0"):
        with pytest.raises(SystemExit):
            launcher.main(["--preset", "smoke", "--workdir", str(tmp_path), "--set", bad])


def test_set_tuples_follow_the_field_type():
    """``--set seeds=0,1`` gives ints, a str tuple stays str, ``[]`` or an empty value empties
    a tuple, and an empty default follows the annotation instead of becoming floats."""

    @config.pytree_config
    class Cfg:
        names: tuple[str, ...] = ()
        ints: tuple[int, ...] = ()
        flags: tuple[bool, ...] = (True,)
        scales: tuple[float, ...] = ()

    cfg = config.override(Cfg(), {"names": "need_act,ended", "ints": "[1, 2]", "flags": "false,1", "scales": "0.5"})
    assert cfg == Cfg(names=("need_act", "ended"), ints=(1, 2), flags=(False, True), scales=(0.5,))
    assert config.override(cfg, {"names": "", "ints": "[]"}) == Cfg(flags=(False, True), scales=(0.5,))
    with pytest.raises(ValueError, match="ints"):
        config.override(Cfg(), {"ints": "1.5"})
    grpo = config.override(study.PRESETS["smoke"], {"reverse.grpo.seeds": "3,5", "reverse.grpo.reward.clip": "-1,1"})
    assert grpo.reverse.grpo.seeds == (3, 5) and grpo.reverse.grpo.reward.clip == (-1.0, 1.0)


def test_devices_build_a_data_mesh_or_say_how():
    """``devices=N``: a one-axis ("data",) mesh over N devices; more than JAX sees is refused
    with the XLA flag that makes a CPU's cores into devices."""
    assert study.data_mesh(1) is None
    mesh = study.data_mesh(2)  # conftest gives 4 CPU devices
    assert mesh.axis_names == ("data",) and mesh.size == 2
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count=99"):
        study.data_mesh(99)
    with pytest.raises(ValueError):
        study.data_mesh(0)
    mesh = study.data_mesh(4, fsdp=2)  # data 2 x fsdp 2 x tensor 1
    assert mesh.axis_names == ("data", "fsdp", "tensor") and mesh.devices.shape == (2, 2, 1)
    with pytest.raises(ValueError, match="not a multiple of fsdp"):
        study.data_mesh(2, fsdp=4)
    assert study.Config(fsdp=2).fsdp == 2  # checked with devices when the mesh is made, in any --set order
