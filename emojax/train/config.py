"""The estimator's training configuration and presets.

    python -m experiments.train_estimator --preset smoke|tiny|default --workdir DIR \\
        [--model NAME|module:Class] [--data NAME] [--manual-dir PATH] [--resume] [--set field=value ...]
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from emojax import config

TARGET_RE = re.compile(r"^(mean|per_rater|rater:\d+)$")
# The architecture each real dataset's input calls for (what ``--data`` picks without ``--model``).
ARCHITECTURE = {"emonet_face_hq": "embedding_heads", "goemotions_raw": "text_transformer"}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How an estimator is trained and evaluated.

    Attributes:
      model: a registered architecture name or ``module.path:ClassName``.
      model_config: overrides of the architecture's own ``Config`` fields.
      head: ``regression``, ``ordinal`` or ``single_label``.
      rater_link: give a head that reads one (regression) a per-category rater link,
        ``rating = offset + intensity``, so the model reports intensities rather
        than the raters' false-alarm level (:mod:`emojax.models.link`).
      absent_prior: weight of the L1 penalty on intensities that comes with the link (the
        prior that most categories are absent); ignored without a link.
      target: what the estimator learns from: ``mean`` (the raters' mean, default),
        ``per_rater`` (one row per rater) or ``rater:i`` (rater i alone). The world's latent
        intensities are never a training target; they are used only for evaluation.
      data: a named ``emojax_synthetic`` config (``small``, ``default``, ``plain``, ...), or a
        real dataset built from downloaded files: ``emonet_face_hq`` or ``goemotions_raw``
        (``docs/datasets.md``).
      manual_dir: the folder holding a real dataset's downloaded files.
      on_bad_row: what a real dataset's build does with a row it cannot use: ``error``
        (stop, naming file, line and field) or ``skip`` (leave it out, counted in the
        dataset's metadata).
      data_config: options of the real dataset's builder (e.g. ``test_fraction``,
        ``very_unclear``, ``vocab_size``, ``tokenizer``), or for simulated data fields of
        the named config to change (e.g. ``{"negation_rate": 0.6}``, a dataset of its own);
        unknown keys are an error.
      data_dir: where datasets are built (empty: ``$EMOJAX_DATA_DIR`` or
        ``~/.cache/emojax/datasets``).
      max_train_examples: use only the first n training items (0: all).
      batch_size, steps, learning_rate, warmup_steps, weight_decay: AdamW with linear
        warm-up then cosine decay to 1% of the peak.
      log_every, eval_every, checkpoint_every: in steps.
      keep_checkpoints: how many Orbax checkpoints to keep.
      baselines: also train the bag-of-words and single-label baselines.
      baseline_steps: steps of the single-label baseline (0: same as ``steps``).
      n_bootstrap: resamples for the CIs in ``eval.json``.
      seed: parameters, dropout and data order all derive from it.
    """

    model: str = "text_transformer"
    model_config: dict = dataclasses.field(default_factory=dict)
    head: str = "regression"
    rater_link: bool = True
    absent_prior: float = 0.1
    target: str = "mean"
    data: str = "default"
    data_dir: str = ""
    manual_dir: str = ""
    on_bad_row: str = "error"
    data_config: dict = dataclasses.field(default_factory=dict)
    max_train_examples: int = 0
    batch_size: int = 64
    steps: int = 3000
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    weight_decay: float = 0.01
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    baselines: bool = True
    baseline_steps: int = 0
    n_bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self):
        config.require(self, "target", lambda v: bool(TARGET_RE.match(v)), "mean, per_rater or rater:<i>")
        config.require(self, "head", lambda v: v in ("regression", "ordinal", "single_label"), "regression, ordinal or single_label")
        for name in ("batch_size", "steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints", "n_bootstrap"):
            config.int_at_least(self, 1, name)
        for name in ("max_train_examples", "warmup_steps", "baseline_steps", "seed"):
            config.int_at_least(self, 0, name)
        config.require(self, "learning_rate", lambda v: v > 0, "> 0")
        config.require(self, "weight_decay", lambda v: v >= 0, ">= 0")
        config.require(self, "absent_prior", lambda v: v >= 0, ">= 0")
        config.require(self, "rater_link", lambda v: isinstance(v, bool), "true or false")
        config.require(self, "model_config", lambda v: isinstance(v, dict), "a dict of the architecture's Config fields")
        config.require(self, "on_bad_row", lambda v: v in ("error", "skip"), "error or skip")
        config.require(self, "data_config", lambda v: isinstance(v, dict), "a dict of the dataset's options")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"TrainConfig: unknown keys {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def choose(cfg: TrainConfig, *, model: str | None = None, data: str | None = None, manual_dir: str | None = None,
           keep_model_config: bool = False) -> TrainConfig:
    """``cfg`` with the launcher's ``--model``, ``--data`` and ``--manual-dir`` applied.

    Without ``model``, a real dataset picks the architecture that reads its input
    (:data:`ARCHITECTURE`). A preset's ``model_config`` holds sizes of its own architecture,
    so another architecture starts from its defaults, unless ``keep_model_config`` (the user
    set ``model_config`` too).
    """
    changes = {name: v for name, v in (("model", model), ("data", data), ("manual_dir", manual_dir)) if v is not None}
    if model is None and data in ARCHITECTURE:
        changes["model"] = ARCHITECTURE[data]
    if changes.get("model", cfg.model) != cfg.model and not keep_model_config:
        changes["model_config"] = {}
    return dataclasses.replace(cfg, **changes)


PRESETS = {
    "smoke": TrainConfig(
        data="small", steps=40, batch_size=32, warmup_steps=5, log_every=10, eval_every=20, checkpoint_every=20,
        model_config={"d_model": 32, "num_heads": 2, "mlp_dim": 64, "hidden": 32, "num_layers": 1},
        baseline_steps=20, n_bootstrap=50,
    ),
    # A first look that shows the method working in under 3 minutes (README: its figure):
    # 8,000 items, since 512 are memorised long before 600 steps; 600 steps are too few for
    # the rater link to leave its early all-absent phase, so the first look goes without it.
    "tiny": TrainConfig(
        data="small", data_config={"num_train": 8000}, steps=600, batch_size=32, learning_rate=2e-3, warmup_steps=60,
        eval_every=300, checkpoint_every=300, n_bootstrap=200, rater_link=False, baseline_steps=300,
    ),
    # The tiny budget on the empathy environment's users' turns (data "conversation"): the
    # estimator of that environment's estimator_emotion reward (emojax.studies.empathy).
    "conversation": TrainConfig(
        data="conversation", steps=600, batch_size=32, learning_rate=2e-3, warmup_steps=60, eval_every=300,
        checkpoint_every=300, n_bootstrap=200, rater_link=False, baseline_steps=300,
    ),
    # 4,000 steps of 64 over the 48,000-item default data (about 5 epochs); the single-label
    # baseline gets 1,000 so the whole preset fits its time budget.
    "default": TrainConfig(steps=4000, baseline_steps=1000),
    # EmoNet's "expert-level" claim made to fail: one rater's ratings, 500 items.
    "one_rater": TrainConfig(target="rater:0", max_train_examples=500, steps=1000, warmup_steps=100),
    # The world without negation and irony: a bag of words should catch up.
    "plain": TrainConfig(data="plain", steps=4000, baseline_steps=1000),
}  # fmt: skip
