"""The TRL side of the GRPO benchmark: Hugging Face TRL's ``GRPOTrainer`` on the same shapes.

What runs (TRL 1.16, transformers 5, torch CPU; the ``bench`` extra): a random-weight
``Qwen2ForCausalLM`` with the sizes of an emojax policy preset (layers, width, heads,
key/value heads, MLP width, tied embeddings, q/k/v bias, vocabulary 300, rope theta),
float32, one torch thread; a word-level tokenizer built here whose vocabulary is exactly
the model's (so a prompt of ``P`` words is ``P`` tokens; no download); prompts of ``P``
random words; ``GRPOConfig`` with ``per_device_train_batch_size = prompts x generations``
(``num_generations`` generations of ``prompts`` prompts per step), ``max_completion_length``
new tokens, the end token suppressed (``generation_kwargs={"suppress_tokens": [eos]}``)
so that every completion is full length, ``beta = 0``, ``num_iterations = 1``, bf16 and
gradient checkpointing off, no logging, no saving, AdamW at lr 1e-3 (TRL's optimizer), and
a reward that reads ``completion_ids`` (the fraction of even token ids; cheap, and not
constant, so the advantages are not all zero).

A step is one ``Trainer`` optimizer step: generation, reward, advantages, the loss's
forward and backward, the optimizer. Steps are timed from ``on_step_begin`` to
``on_step_end``; ``_generate_and_score_completions`` is wrapped to time the sampling part
(generation, rewards and advantages), and the update is the rest of the step.

torch, transformers and TRL are imported only inside :func:`bench_trl_grpo`.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import tempfile
import time
import warnings

import numpy as np

from emojax.rl.policy import PolicyConfig

SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>")


def build_tokenizer(vocab_size: int):
    """A word-level fast tokenizer over ``vocab_size`` ids: the 4 specials, then words
    ``w4 .. w{V-1}`` (word ``wI`` is id ``I``); whitespace splits words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    vocab.update({f"w{i}": i for i in range(len(SPECIALS), vocab_size)})
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
                                   unk_token="<unk>", padding_side="left")


def qwen2_config(cfg: PolicyConfig, tokenizer, max_positions: int):
    """The ``Qwen2Config`` with ``cfg``'s sizes."""
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.mlp_dim,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        head_dim=cfg.head_size, max_position_embeddings=max_positions, rope_theta=cfg.rope_theta,
        rms_norm_eps=cfg.rms_eps, tie_word_embeddings=cfg.tie_embeddings, initializer_range=cfg.init_std,
        use_sliding_window=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id, torch_dtype="float32",
    )  # fmt: skip


def even_fraction(completions, completion_ids, **kwargs) -> list[float]:
    """The benchmark's reward: the fraction of even token ids in each completion."""
    del completions, kwargs
    return [float(np.mean([t % 2 == 0 for t in ids])) if len(ids) else 0.0 for ids in completion_ids]


def bench_trl_grpo(
    cfg: PolicyConfig,
    *,
    prompt_len: int,
    max_new_tokens: int,
    num_prompts: int,
    group_size: int,
    steps: int,
    warmup: int = 2,
    seed: int = 0,
    flops_per_update: float | None = None,
    peak: float | None = None,
) -> dict:
    """Time ``steps`` optimizer steps of TRL's ``GRPOTrainer`` after ``warmup`` untimed ones.

    Returns the entry's JSON: per-step ``step_s``, ``sample_s`` and ``update_s`` lists and
    medians, ``peak_rss_mib`` (this process: run it in a fresh one), parameters, versions,
    and, with ``flops_per_update`` and ``peak``, ``update_gflop_per_s`` and its fraction.
    """
    import torch
    import transformers
    import trl
    from datasets import Dataset
    from transformers import Qwen2ForCausalLM, TrainerCallback

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("WANDB_MODE", "disabled")

    tokenizer = build_tokenizer(cfg.vocab_size)
    model = Qwen2ForCausalLM(qwen2_config(cfg, tokenizer, max(64, 2 * (prompt_len + max_new_tokens)))).float()
    rng = np.random.default_rng(seed)
    total = warmup + steps
    words = rng.integers(len(SPECIALS), cfg.vocab_size, (total * num_prompts, prompt_len))
    dataset = Dataset.from_dict({"prompt": [" ".join(f"w{i}" for i in row) for row in words]})

    batch = num_prompts * group_size
    with tempfile.TemporaryDirectory() as out:
        args = trl.GRPOConfig(
            output_dir=out, per_device_train_batch_size=batch, gradient_accumulation_steps=1,
            num_generations=group_size, max_completion_length=max_new_tokens, max_steps=total,
            learning_rate=1e-3, beta=0.0, num_iterations=1, bf16=False, fp16=False, gradient_checkpointing=False,
            use_cpu=True, report_to="none", save_strategy="no", logging_steps=10**9, log_completions=False,
            dataloader_num_workers=0, seed=seed, shuffle_dataset=False, disable_tqdm=True,
            generation_kwargs={"suppress_tokens": [tokenizer.eos_token_id]},
        )  # fmt: skip
        trainer = trl.GRPOTrainer(model=model, reward_funcs=even_fraction, args=args, train_dataset=dataset,
                                  processing_class=tokenizer)
        marks: dict[str, list[float]] = {"begin": [], "end": [], "sample": [], "cpu_begin": [], "cpu_end": []}
        lengths: list[float] = []
        generate = trainer._generate_and_score_completions

        def timed_generate(*a, **kw):
            t0 = time.perf_counter()
            out = generate(*a, **kw)
            marks["sample"].append(time.perf_counter() - t0)
            lengths.append(float(out["completion_mask"].sum(dim=1).float().mean()))
            return out

        trainer._generate_and_score_completions = timed_generate

        class Clock(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                marks["begin"].append(time.perf_counter())
                marks["cpu_begin"].append(time.process_time())

            def on_step_end(self, args, state, control, **kwargs):
                marks["end"].append(time.perf_counter())
                marks["cpu_end"].append(time.process_time())

        trainer.add_callback(Clock())
        with contextlib.redirect_stdout(io.StringIO()):  # the Trainer prints its summary
            trainer.train()

    step = np.asarray(marks["end"]) - np.asarray(marks["begin"])
    sample = np.asarray(marks["sample"])
    if len(step) != total or len(sample) != total:
        raise RuntimeError(f"TRL ran {len(step)} steps and {len(sample)} generations, expected {total}")
    step, sample = step[warmup:], sample[warmup:]
    step_cpu = (np.asarray(marks["cpu_end"]) - np.asarray(marks["cpu_begin"]))[warmup:]
    update = step - sample
    out = {
        "step_s": step.tolist(), "sample_s": sample.tolist(), "update_s": update.tolist(),
        "step_s_median": float(np.median(step)), "sample_s_median": float(np.median(sample)),
        "update_s_median": float(np.median(update)), "steps_timed": int(len(step)), "warmup_steps": warmup,
        "step_cpu_s_median": float(np.median(step_cpu)),
        "completion_length_mean": float(np.mean(lengths[warmup:])),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "params": int(sum(p.numel() for p in model.parameters())),
        "torch_num_threads": torch.get_num_threads(),
        "attn_implementation": str(model.config._attn_implementation),
        "versions": {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__},
        "generated_tokens_per_s": batch * max_new_tokens / float(np.median(step)),
    }  # fmt: skip
    if flops_per_update is not None:
        out["update_flops"] = flops_per_update
        out["update_gflop_per_s"] = flops_per_update / out["update_s_median"] / 1e9
        if peak:
            out["peak_gflop_per_s"] = peak
            out["update_fraction_of_peak"] = out["update_gflop_per_s"] / peak
    return out
