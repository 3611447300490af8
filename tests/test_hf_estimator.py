"""An estimator on a real backbone: a local Hugging Face checkpoint as the encoder, trained by
the existing trainer on GoEmotions-format text tokenized by the checkpoint's own
tokenizer.json, frozen or with LoRA, its metrics in eval.json."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import real_files as rf
from emojax import checkpoint, hf, tracking
from emojax.hf import toy
from emojax.hf.estimator import HFEncoder
from emojax.rl import policy
from emojax.train import estimator, loop
from emojax.train.estimator import load_estimator
from emojax.train.evaluate import MAIN_KEYS
from experiments import train_estimator

MODEL = "emojax.hf.estimator:HFEncoder"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny random Qwen2-family checkpoint with the bundled tokenizer (394 ids,
    :mod:`emojax.hf.toy`) beside it, and GoEmotions files."""
    root = tmp_path_factory.mktemp("hf_estimator")
    ckpt = toy.write_random(str(root / "ckpt"), policy.PRESETS["smoke"], jax.random.key(0))
    return {"ckpt": ckpt, "go": rf.write_goemotions(root / "go"), "data": str(root / "data"), "root": root}


def _train(files, name, model_config):
    workdir = str(files["root"] / name)
    argv = ["--preset", "smoke", "--workdir", workdir, "--data", "goemotions_raw", "--manual-dir", files["go"],
            "--set", f"data_dir={files['data']}", "--set", "n_bootstrap=20", "--set", "baselines=false",
            "--model", MODEL, "--set", json_set("data_config", {"tokenizer": os.path.join(files["ckpt"], "tokenizer.json")}),
            "--set", json_set("model_config", {"checkpoint": files["ckpt"], **model_config})]  # fmt: skip
    train_estimator.main(argv)
    return workdir


def json_set(name, value):
    return f"{name}={json.dumps(value)}"


@pytest.mark.parametrize("train", ["frozen", "lora"])
def test_a_checkpoint_encoder_trains_through_the_trainer_and_reports(files, train):
    workdir = _train(files, train, {"train": train, "lora_rank": 4, "pooling": "last" if train == "lora" else "mean"})
    on_disk = json.loads(open(os.path.join(workdir, "eval.json")).read())
    for key in MAIN_KEYS:
        assert isinstance(on_disk[key], float), key
    losses = [r["loss"] for r in tracking.read_metrics(workdir) if "loss" in r]
    assert losses[-1] < losses[0]
    model_config = json.loads(open(os.path.join(workdir, "config.json")).read())["train"]["model_config"]
    assert model_config["token_id_offset"] == 1  # the fixture tokenizer's id 0 is not padding: ids were shifted
    # The encoder's base weights are the checkpoint's after training (frozen, or under adapters).
    cfg = estimator.load_config(workdir)
    built = loop.init(cfg)
    restored = checkpoint.restore(checkpoint.manager(workdir, cfg.keep_checkpoints), built.state)[0]
    model, _ = nnx.merge(built.graphdef, restored)
    net = model.net if hasattr(model, "net") else model
    base = hf.load(files["ckpt"]).state
    kernel = net.encoder.layers[0].self_attn.q_proj.kernel.get_value()
    np.testing.assert_array_equal(np.asarray(kernel), np.asarray(base["layers"][0]["self_attn"]["q_proj"]["kernel"].get_value()))
    if train == "lora":
        assert float(jnp.max(jnp.abs(net.encoder.layers[0].self_attn.q_proj.lora_b.get_value()))) > 0
    tokens = jnp.zeros((2, 12), jnp.int32).at[:, :4].set(7)
    assert load_estimator(workdir)(tokens, tokens != 0).shape == (2, 40)


def test_bad_encoder_configs_say_what_to_fix(files):
    with pytest.raises(ValueError, match="checkpoint"):
        HFEncoder.Config()
    with pytest.raises(ValueError, match="train"):
        HFEncoder.Config(checkpoint="x", train="half")
    too_many = HFEncoder.Config(checkpoint=files["ckpt"], vocab_size=999, token_id_offset=1)
    with pytest.raises(ValueError, match="tokenizer.json"):
        HFEncoder(too_many, 1, rngs=nnx.Rngs(0))
