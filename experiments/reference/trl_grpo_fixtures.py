"""Reference values for emojax.rl from Hugging Face TRL's own GRPO code.

Writes ``tests/fixtures/trl_grpo_losses.json``, which ``tests/test_rl_losses.py`` and
``tests/test_rl_advantages.py`` compare against (they need neither torch nor TRL).

    pip install -e '.[bench]'   # torch, trl==1.16.0, transformers
    python -m experiments.reference.trl_grpo_fixtures --out tests/fixtures/trl_grpo_losses.json

What TRL code runs (TRL 1.16.0, torch CPU, float64):

* Loss. The unmodified method ``trl.GRPOTrainer._compute_loss`` is called as a plain
  function on a stand-in ``self`` that holds only the attributes it reads (loss_type,
  epsilons, beta, importance_sampling_level, max_completion_length, the entropy bonus
  switches, a single-process accelerator whose gather/reduce are the identity, one
  accumulation step, ``steps_per_generation=1``; vLLM, off-policy masking, entropy
  masking and MoE aux loss off). Its model forward
  ``_get_per_token_logps_and_entropies`` is replaced by a stub that returns leaf
  tensors ``logp`` and ``entropy``, so the loss, its gradients with respect to them
  (``torch.autograd``), and the metrics TRL logs are TRL's. ``old_per_token_logps`` is
  left out of the inputs for the mu = 1 cases, so TRL takes ``logp.detach()``.
  Truncation masking happens in TRL's generation step, not in the loss; the harness
  zeroes ``completion_mask`` of truncated rows as that step does, and sets
  ``num_items_in_batch`` to the masked token count as that step does.
* Advantages. TRL computes them inline in ``_generate_and_score_completions``. The
  harness takes that method's source with ``inspect``, cuts the block from
  ``unscorable_mask = ...`` to ``advantages = torch.nan_to_num(...)`` (the
  ``sum_then_normalize`` path), and executes it verbatim in the module's namespace
  with one reward function (weight 1). The same is done for ``RLOOTrainer``'s block
  (to ``is_std_zero = ...``; no KL in the reward, no clipping, no normalisation).

Inputs are drawn from ``numpy.random.default_rng(SEED)`` in float32, so the JAX side
(float32) sees exactly the values TRL saw (in float64).
"""

from __future__ import annotations

import argparse
import inspect
import json
import textwrap
import types
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import trl
from trl.trainer import grpo_trainer, rloo_trainer

SEED = 20240604
BATCH, TIME = 6, 7
MAX_COMPLETION_LENGTH = 10  # larger than TIME: dr_grpo divides by the config value
LENGTHS = (7, 5, 3, 1, 0, 6)  # one sequence without loss tokens
TRUNCATED = (False, True, False, False, False, True)
EPSILON_LOW, EPSILON_HIGH = 0.2, 0.28


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    f32 = np.float32
    logp = np.log(rng.uniform(0.05, 0.95, (BATCH, TIME))).astype(f32)
    advantages = rng.normal(0.0, 1.0, BATCH).astype(f32)
    advantages[2] = 0.0
    # Per-sequence drift so that sequence-level (GSPO) ratios leave the clip range too:
    # towards the advantage's side for rows 0, 1, 4, against it for rows 3, 5.
    drift = 0.35 * np.sign(advantages) * np.array([1, 1, 0, -1, 1, -1])
    old_logp = (logp - drift[:, None] + rng.normal(0.0, 0.25, (BATCH, TIME))).astype(f32)
    ref_logp = (logp + rng.normal(0.0, 0.3, (BATCH, TIME))).astype(f32)
    entropy = rng.uniform(0.0, 3.0, (BATCH, TIME)).astype(f32)
    mask = (np.arange(TIME)[None, :] < np.array(LENGTHS)[:, None]).astype(np.int64)
    return dict(logp=logp, old_logp=old_logp, ref_logp=ref_logp, advantages=advantages,
                entropy=entropy, mask=mask, truncated=np.array(TRUNCATED))


def _loss_cases() -> list[dict]:
    cases = []
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo"):
        for level in ("token", "sequence"):
            for beta in (0.0, 0.04):
                for use_old in (False, True):
                    cases.append(dict(loss_type=loss_type, importance_sampling_level=level,
                                      beta=beta, use_old_logp=use_old))
    base = dict(importance_sampling_level="token", beta=0.04, use_old_logp=True)
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo"):
        cases.append(dict(base, loss_type=loss_type, entropy_coef=0.01))
        cases.append(dict(base, loss_type=loss_type, mask_truncated=True))
    cases.append(dict(base, loss_type="dapo", delta=1.1))
    cases.append(dict(base, loss_type="grpo", importance_sampling_level="sequence",
                      entropy_coef=0.05, mask_truncated=True))
    for case in cases:
        case.setdefault("entropy_coef", 0.0)
        case.setdefault("delta", None)
        case.setdefault("mask_truncated", False)
        case.update(epsilon_low=EPSILON_LOW, epsilon_high=EPSILON_HIGH,
                    max_completion_length=MAX_COMPLETION_LENGTH)
    return cases


def _identity(x, *args, **kwargs):
    return x


def _trl_loss(case: dict, x: dict[str, np.ndarray]) -> dict:
    """Runs TRL's ``GRPOTrainer._compute_loss`` on one case (see module doc)."""
    f64 = torch.float64
    logp = torch.tensor(x["logp"], dtype=f64, requires_grad=True)
    entropy = torch.tensor(x["entropy"], dtype=f64, requires_grad=True)
    mask = torch.tensor(x["mask"])
    if case["mask_truncated"]:  # as in _generate_and_score_completions
        mask = mask * (~torch.tensor(x["truncated"])).unsqueeze(1).int()

    def forward_stub(model, input_ids, attention_mask, logits_to_keep, **kwargs):
        assert logits_to_keep == TIME
        return logp, entropy, None

    fake = types.SimpleNamespace(
        _get_per_token_logps_and_entropies=forward_stub,
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level=case["importance_sampling_level"],
        beta=case["beta"],
        loss_type=case["loss_type"],
        epsilon_low=case["epsilon_low"],
        epsilon_high=case["epsilon_high"],
        args=types.SimpleNamespace(use_bias_correction_kl=False, delta=case["delta"],
                                   steps_per_generation=1),
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        model=types.SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        max_completion_length=case["max_completion_length"],
        accelerator=types.SimpleNamespace(num_processes=1, gather=_identity, reduce=_identity,
                                          sync_gradients=True),
        _entropy_bonus_enabled=case["entropy_coef"] != 0.0,
        entropy_coef=case["entropy_coef"],
        use_adaptive_entropy=False,
        aux_loss_enabled=False,
        _metrics=defaultdict(lambda: defaultdict(list)),
    )
    inputs = {
        "prompt_ids": torch.zeros((BATCH, 1), dtype=torch.long),
        "prompt_mask": torch.ones((BATCH, 1), dtype=torch.long),
        "completion_ids": torch.zeros((BATCH, TIME), dtype=torch.long),
        "completion_mask": mask,
        "advantages": torch.tensor(x["advantages"], dtype=f64),
        "ref_per_token_logps": torch.tensor(x["ref_logp"], dtype=f64),
        "num_items_in_batch": mask.sum(),
    }
    if case["use_old_logp"]:
        inputs["old_per_token_logps"] = torch.tensor(x["old_logp"], dtype=f64)
    loss = grpo_trainer.GRPOTrainer._compute_loss(fake, None, inputs)
    grad_logp, grad_entropy = torch.autograd.grad(loss, (logp, entropy), allow_unused=True)
    metrics = {name: v[0] for name, v in fake._metrics["train"].items()}
    zeros = np.zeros((BATCH, TIME))
    return {
        "config": case,
        "loss": loss.item(),
        "grad_logp": (zeros if grad_logp is None else grad_logp.numpy()).tolist(),
        "grad_entropy": (zeros if grad_entropy is None else grad_entropy.numpy()).tolist(),
        "metrics": {name: (None if np.isnan(v) else v) for name, v in metrics.items()},
    }


def _source_block(method, first: str, last: str) -> str:
    """The lines of ``method``'s source from the one holding ``first`` to ``last``."""
    src = inspect.getsource(method)
    start = src.rfind("\n", 0, src.index(first)) + 1
    stop = src.index("\n", src.index(last, start))
    return textwrap.dedent(src[start:stop])


def _trl_advantages(rewards: np.ndarray, estimator: str, scale: str) -> dict:
    """Executes TRL's inline advantage block on ``[prompts, group]`` rewards."""
    num_generations = rewards.shape[1]
    first = "unscorable_mask = torch.isnan(rewards_per_func).all(dim=1)"
    if estimator == "grpo":
        module = grpo_trainer
        block = _source_block(grpo_trainer.GRPOTrainer._generate_and_score_completions,
                              first, "advantages = torch.nan_to_num(advantages, nan=0.0)")
        fake = types.SimpleNamespace(multi_objective_aggregation="sum_then_normalize",
                                     scale_rewards=scale, reward_weights=torch.ones(1))
    else:
        module = rloo_trainer
        block = _source_block(rloo_trainer.RLOOTrainer._generate_and_score_completions,
                              first, "is_std_zero = torch.isclose(")
        fake = types.SimpleNamespace(reward_weights=torch.ones(1), reward_clip_range=None,
                                     beta=0.0, normalize_advantages=False)
    namespace = dict(vars(module))
    namespace.update(self=fake, num_generations=num_generations, device="cpu",
                     rewards_per_func=torch.tensor(rewards.reshape(-1, 1), dtype=torch.float64))
    exec(compile(block, f"<{module.__name__} advantage block>", "exec"), namespace)
    is_std_zero = namespace["is_std_zero"].reshape(-1)
    if is_std_zero.numel() == rewards.size:  # GRPO logs one flag per completion
        is_std_zero = is_std_zero.view(-1, num_generations)[:, 0]
    return {
        "estimator": estimator,
        "scale": scale,
        "advantages": namespace["advantages"].view(-1, num_generations).numpy().tolist(),
        "is_std_zero": is_std_zero.tolist(),
    }


def _rewards() -> np.ndarray:
    rng = np.random.default_rng(SEED + 1)
    nan = np.nan
    return np.array([
        rng.normal(0.0, 1.0, 4),
        [0.5, 0.5, 0.5, 0.5],  # all equal: zero variance
        [1.0, nan, 0.25, 2.0],  # one unscorable completion
        [nan, 3.0, nan, nan],  # one scorable completion: no spread
        [1.0, 0.0, 0.0, 1.0],  # binary
    ]).astype(np.float32)


def _jsonable(x):
    if isinstance(x, np.ndarray):
        x = x.tolist()
    if isinstance(x, float):
        return None if np.isnan(x) else float(f"{x:.12g}")
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, dict):
        return {name: _jsonable(v) for name, v in x.items()}
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="tests/fixtures/trl_grpo_losses.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x = _inputs()
    rewards = _rewards()
    fixture = {
        "about": "TRL GRPO reference values from experiments/reference/trl_grpo_fixtures.py",
        "versions": {"trl": trl.__version__, "torch": torch.__version__},
        "seed": SEED,
        "inputs": {name: v.tolist() for name, v in x.items()},
        "loss_cases": [_trl_loss(case, x) for case in _loss_cases()],
        "rewards": rewards.tolist(),  # NaN -> null
        "advantage_cases": [
            _trl_advantages(rewards.astype(np.float64), est, scale)
            for est, scale in (("grpo", "group"), ("grpo", "batch"), ("grpo", "none"),
                               ("rloo", "none"))
        ],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_jsonable(fixture), indent=1) + "\n")
    print(f"wrote {out} ({len(fixture['loss_cases'])} loss cases, "
          f"{len(fixture['advantage_cases'])} advantage cases)")


if __name__ == "__main__":
    main()
