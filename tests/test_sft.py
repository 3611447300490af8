"""Supervised pre-training of a policy on transcripts (the base policy of RLVER's table)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from emojax import config
from emojax.rl import learner, sft
from emojax.rl import policy as policy_lib
from emojax.rl.config import GRPOConfig
from emojax.rl.environments import make_environment
from emojax.world import weak_helper
from emojax.world import conversation as conv

CFG = dataclasses.replace(conv.TRAIN, max_turns=2)
POLICY = dataclasses.replace(policy_lib.PRESETS["smoke"], vocab_size=make_environment("empathy", CFG).vocab_size)


@pytest.fixture(scope="module")
def pretrained():
    data = jax.device_get(weak_helper.conversations(jax.random.key(0), conv.profiles(jax.random.key(1), 64), CFG,
                                                    weak_helper.HelperConfig(), 6))  # fmt: skip
    params, log = sft.train(sft.SFTConfig(steps=60, batch_size=16, learning_rate=1e-2, warmup_steps=5), POLICY, data,
                            log_every=10)  # fmt: skip
    return data, params, log


def test_pretraining_learns_the_speakers_tokens(pretrained):
    """The loss falls, and the trained policy gives the helper's own tokens a higher
    likelihood than a fresh one does (on held-out conversations)."""
    data, params, log = pretrained
    assert log[-1]["loss"] < 0.6 * log[0]["loss"]
    held = jax.device_get(weak_helper.conversations(jax.random.key(7), conv.profiles(jax.random.key(8), 32), CFG,
                                                    weak_helper.HelperConfig(), 6))  # fmt: skip
    graphdef, fresh = policy_lib.init(POLICY, jax.random.key(0))
    args = [jax.numpy.asarray(held[k]) for k in ("tokens", "mask", "policy_mask")]
    assert float(sft.loss(graphdef, params, *args)) < float(sft.loss(graphdef, fresh, *args)) - 1.0
    # Only the speaker's tokens count: a transcript with no policy token has loss 0.
    assert float(sft.loss(graphdef, params, args[0], args[1], np.zeros_like(args[2]))) == 0.0


def test_save_load_and_start_a_grpo_run_from_it(pretrained, tmp_path):
    _, params, _ = pretrained
    sft.save(str(tmp_path / "base"), params, {"policy": config.to_dict(POLICY)})
    loaded, meta = sft.load(str(tmp_path / "base"), POLICY)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(FileNotFoundError, match="no pre-trained policy"):
        sft.load(str(tmp_path / "nothing"), POLICY)
    with pytest.raises(ValueError, match="pre-trained policy"):
        sft.load(str(tmp_path / "base"), dataclasses.replace(POLICY, mlp_dim=POLICY.mlp_dim * 2))
    env = make_environment("empathy", CFG)
    cfg = GRPOConfig(policy=POLICY, num_prompts=2, group_size=2, max_new_tokens=6, steps=1, checkpoint_every=1,
                     seeds=(0,))  # fmt: skip
    run = learner.make_train(cfg, env, initial_params=loaded, profiles=env.profiles(jax.random.key(0), 8),
                             compiler_options={"xla_backend_optimization_level": 0})  # fmt: skip
    state = run.init(jax.random.key(3))
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    wrong = policy_lib.init(dataclasses.replace(POLICY, d_model=64), jax.random.key(0))[1]
    with pytest.raises(ValueError, match="initial_params are not parameters"):
        learner.make_train(cfg, env, initial_params=wrong)


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="SFTConfig.warmup_steps"):
        sft.SFTConfig(steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        sft.train(sft.SFTConfig(batch_size=8), POLICY, {"tokens": np.zeros((4, 5), np.int32)})
