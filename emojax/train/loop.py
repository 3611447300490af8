"""Supervised training of an estimator: a jitted step with donated state, and the host loop.

The model and its optimizer are split once into a static graph and a state pytree
(``nnx.split``); the step is a pure function ``(state, batch) -> (state, metrics)``
compiled once with the state's buffers donated, so parameters and optimizer moments are
updated in place. Dropout keys live in the state (NNX ``Rngs``), so a restored state
continues the same random stream: an interrupted and resumed run equals an uninterrupted
one bit for bit (tested).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from emojax import checkpoint, interrupt, progress as progress_lib
from emojax.models import get_architecture, get_head, link
from emojax.models.heads import Head
from emojax.train import data as data_lib
from emojax.train.config import TrainConfig
from emojax.world import language


class Built(NamedTuple):
    graphdef: Any
    state: Any  # (model, optimizer) state
    head: Head


def resolve_model(cfg: TrainConfig, head_name: str | None = None):
    """(architecture class, its validated Config, head) of ``cfg``, without building weights."""
    cls = get_architecture(cfg.model)
    head = get_head(head_name or cfg.head)
    names = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = set(cfg.model_config) - names
    if unknown:
        raise ValueError(f"model_config: {cls.__name__}.Config has no fields {sorted(unknown)} (fields: {sorted(names)})")
    return cls, cls.Config(**cfg.model_config), head


def uses_link(cfg: TrainConfig, head: Head) -> bool:
    """Whether the model carries a rater link (:mod:`emojax.models.link`)."""
    return cfg.rater_link and head.uses_link


def build_model(cfg: TrainConfig, head_name: str | None = None, seed: int | None = None, offsets=None):
    """The architecture of ``cfg.model`` with the head's output size, freshly initialised
    (wrapped in the rater link, starting at ``offsets``, when the head reads one and
    ``cfg.rater_link``)."""
    cls, model_cfg, head = resolve_model(cfg, head_name)
    seed = cfg.seed if seed is None else seed
    model = cls(model_cfg, head.outputs_per_category, rngs=nnx.Rngs(params=seed, dropout=seed + 1))
    if uses_link(cfg, head):
        model = link.Linked(model, offsets)
    return model, head


def schedule(cfg: TrainConfig, steps: int) -> optax.Schedule:
    warmup = min(cfg.warmup_steps, max(steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(0.0, cfg.learning_rate, warmup, max(steps, warmup + 1), cfg.learning_rate * 0.01)


def init(cfg: TrainConfig, head_name: str | None = None, steps: int | None = None, offsets=None) -> Built:
    model, head = build_model(cfg, head_name, offsets=offsets)
    tx = optax.adamw(schedule(cfg, steps or cfg.steps), weight_decay=cfg.weight_decay)
    optimizer = nnx.Optimizer(model, tx, wrt=trainable(model))
    graphdef, state = nnx.split((model, optimizer))
    return Built(graphdef, state, head)


def trainable(model: nnx.Module):
    """What the optimizer updates: the architecture's ``trainable`` filter if it has one (a
    frozen or LoRA encoder, :mod:`emojax.hf.estimator`), else every ``nnx.Param``; a rater
    link's offsets always train."""
    net = model.net if isinstance(model, link.Linked) else model
    own = getattr(net, "trainable", None)
    if own is None:
        return nnx.Param
    return nnx.Any(own, nnx.All(nnx.Param, nnx.Not(nnx.PathContains("net")))) if net is not model else own


def make_step(built: Built, target: str, absent_prior: float = 0.0) -> Callable:
    """The compiled training step ``(state, batch) -> (state, metrics)``.

    ``absent_prior`` weighs an L1 penalty on the latent intensities (see
    :mod:`emojax.models.link`); 0 leaves the head's loss alone.
    """
    graphdef, head = built.graphdef, built.head

    def step(state, batch):
        model, optimizer = nnx.merge(graphdef, state)
        tokens, y = data_lib.targets(batch, target)
        # 1 where a rater rated: all of them for the simulated data; real data miss raters
        # and (GoEmotions) categories (emojax.train.data.target_mask).
        category_mask = jnp.broadcast_to(data_lib.target_mask(batch, target), y.shape)

        def loss_fn(model):
            raw = model(tokens, language.mask(tokens), deterministic=False)
            loss = head.loss(raw, y, category_mask)
            if absent_prior:
                loss = loss + absent_prior * jnp.mean(head.value(raw) * category_mask)
            return loss

        loss, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, trainable(model)))(model)
        optimizer.update(model, grads)
        # The barrier keeps XLA from sharing ``g ** 2`` between this norm and Adam's second
        # moment: shared, it is written out as a gradient-sized buffer (45 MB of scratch per
        # embedding-heads step, page-faulted in each time: 18 ms of a 38 ms step at batch 32).
        return nnx.state((model, optimizer)), {"loss": loss, "grad_norm": optax.tree.norm(jax.lax.optimization_barrier(grads))}

    return jax.jit(step, donate_argnums=0)


def make_predict(graphdef, state, head: Head, scale: str = "latent") -> Callable[[jax.Array, jax.Array], jax.Array]:
    """A pure ``predict(tokens, mask) -> [batch, 40]`` over a (model, optimizer) state, on the
    ``latent`` scale (absent as 0) or the raters' scale (``ratings``)."""
    read = reader(head, scale)

    def predict(tokens, mask):
        model, _ = nnx.merge(graphdef, state)
        return read(model(tokens, mask, deterministic=True))

    return predict


def reader(head: Head, scale: str) -> Callable:
    if scale not in ("latent", "ratings"):
        raise ValueError(f"scale must be 'latent' or 'ratings', got {scale!r}")
    return head.predict if scale == "latent" else head.ratings


def _starting_offsets(cfg: TrainConfig, head_name: str | None, source, n: int = 4096):
    """The link's starting offsets from the first ``n`` training items (None: no link)."""
    if not uses_link(cfg, get_head(head_name or cfg.head)):
        return None
    first = data_lib.read_all(source, limit=n)
    return link.initial_offsets(data_lib.targets(first, cfg.target)[1])


def fit(
    cfg: TrainConfig,
    train_source,
    workdir: str | None,
    *,
    head_name: str | None = None,
    steps: int | None = None,
    tracker=None,
    stop_after_steps: int | None = None,
    resume: bool = True,
    on_eval: Callable[[int, Built, Any], dict] | None = None,
    tag: str = "",
    progress: bool = True,
) -> tuple[Built, int]:
    """Train for ``steps`` (default ``cfg.steps``); checkpoints in ``workdir`` if given.

    Returns the final state and the step reached (less than ``steps`` when stopped early by
    ``stop_after_steps``, after saving a checkpoint there).
    """
    steps = steps or cfg.steps
    built = init(cfg, head_name, steps, offsets=_starting_offsets(cfg, head_name, train_source))
    state, start = built.state, 0
    mngr = checkpoint.manager(workdir, cfg.keep_checkpoints) if workdir else None
    if mngr is not None and resume:
        restored = checkpoint.restore(mngr, state)
        if restored is not None:
            state, meta = restored
            start = int(meta["step"])
    name = (tag or "training").rstrip("/")
    if start and progress:
        print(f"[{progress_lib.label()}] {name}: resuming from step {start} of {steps}", flush=True)
    if tracker is not None:
        tracker.rewind(start)  # rows logged after the checkpoint are logged again
    step_fn = make_step(built, cfg.target, cfg.absent_prior if uses_link(cfg, built.head) else 0.0)
    loader = data_lib.train_batches(cfg, train_source)
    end = min(steps, stop_after_steps) if stop_after_steps is not None else steps
    window, t0 = [], time.perf_counter()
    # Without a work dir there is nowhere to save: Ctrl-C then stops at once, as usual.
    deferred = interrupt.deferred() if mngr is not None else contextlib.nullcontext()
    with progress_lib.phase(name, steps, unit="steps", initial=start, enabled=progress) as bar, deferred:
        for step in range(start, end):
            state, metrics = step_fn(state, data_lib.as_arrays(loader[step]))
            window.append(metrics)
            done = step + 1
            row = {}
            if done % cfg.log_every == 0 or done == end:
                means = {n: float(jnp.mean(jnp.stack([m[n] for m in window]))) for n in window[0]}
                means["examples_per_s"] = len(window) * cfg.batch_size / (time.perf_counter() - t0)
                means["learning_rate"] = float(schedule(cfg, steps)(step))
                if tracker is not None:
                    tracker.log(done, {f"{tag}{n}": v for n, v in means.items()})
                row = {"loss": means["loss"]}
                window, t0 = [], time.perf_counter()
            bar.update(**row)
            if on_eval is not None and (done % cfg.eval_every == 0 or done == steps):
                evaluated = on_eval(done, built._replace(state=state), tracker)
                if tracker is not None and evaluated:
                    tracker.log(done, {f"{tag}{n}": v for n, v in evaluated.items()})
            stop = interrupt.requested() if mngr is not None else None
            if mngr is not None and (done % cfg.checkpoint_every == 0 or done == end or stop):
                checkpoint.save(mngr, done, state, {"step": done, "data_seed": cfg.seed, "data_position": done})
            if stop:
                raise interrupt.Interrupted(stop, done, workdir)
    return built._replace(state=state), max(start, end)
