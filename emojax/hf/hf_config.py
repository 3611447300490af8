"""A Hugging Face ``config.json`` as a :class:`~emojax.rl.policy.PolicyConfig`, and back.

Supported: ``LlamaForCausalLM`` (``attention_bias`` true or false, ``rope_scaling`` none,
``default`` or ``llama3``), ``Qwen2ForCausalLM`` (q/k/v biases always) and
``Qwen3ForCausalLM`` (per-head q/k RMSNorms, biases as ``attention_bias``), SiLU MLPs, tied
or untied embeddings, ``head_dim`` when the config gives one. Anything else is refused with
the field that says so, rather than loaded into a model that computes something else.
"""

from __future__ import annotations

from typing import Any

from emojax.rl import policy

__all__ = ["ARCHITECTURES", "hf_config", "policy_config"]

ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3"}


def _field(cfg: dict, name: str, path: str, kind=int, default: Any = None):
    value = cfg.get(name, default)
    if value is None:
        raise ValueError(f"{path}: field {name!r} is missing")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ValueError(f"{path}: field {name!r} must be {kind.__name__}, got {value!r}")
    return value


def policy_config(cfg: dict, path: str = "config.json", dtype: str = "float32") -> policy.PolicyConfig:
    """The policy ``cfg`` (a parsed ``config.json`` at ``path``) describes, computing in ``dtype``."""
    archs = cfg.get("architectures") or []
    family = {ARCHITECTURES.get(a) for a in archs} - {None}
    if len(family) != 1:
        raise ValueError(f"{path}: field 'architectures' is {archs!r}; supported: {sorted(ARCHITECTURES)}")
    family = family.pop()
    act = cfg.get("hidden_act", "silu")
    if act != "silu":
        raise ValueError(f"{path}: field 'hidden_act' is {act!r}; only 'silu' (SwiGLU) is supported")
    if cfg.get("mlp_bias"):
        raise ValueError(f"{path}: field 'mlp_bias' is true; MLP biases are not supported")
    if family != "llama" and cfg.get("use_sliding_window"):
        raise ValueError(f"{path}: field 'use_sliding_window' is true; sliding-window attention is not supported")
    # transformers 5 writes rope_parameters (rope_theta inside); 4.x rope_scaling and rope_theta.
    rope = cfg.get("rope_parameters")
    scaling = rope if isinstance(rope, dict) else cfg.get("rope_scaling") or {}
    field = "rope_parameters" if isinstance(rope, dict) else "rope_scaling"
    theta = _field(scaling if "rope_theta" in scaling else cfg, "rope_theta", path, float, 10_000.0)
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    llama3: tuple = ()
    if kind == "llama3":
        llama3 = tuple(_field(scaling, name, f"{path} {field}", float) for name in
                       ("factor", "low_freq_factor", "high_freq_factor")) + (
            _field(scaling, "original_max_position_embeddings", f"{path} {field}"),)  # fmt: skip
    elif kind != "default":
        raise ValueError(f"{path}: field {field!r} has rope_type {kind!r}; supported: none, 'default', 'llama3'")
    d = _field(cfg, "hidden_size", path)
    heads = _field(cfg, "num_attention_heads", path)
    head_dim = cfg.get("head_dim")
    return policy.PolicyConfig(
        vocab_size=_field(cfg, "vocab_size", path), d_model=d, num_layers=_field(cfg, "num_hidden_layers", path),
        num_heads=heads, num_kv_heads=_field(cfg, "num_key_value_heads", path, default=heads),
        head_dim=None if head_dim in (None, d // heads) else int(head_dim),
        mlp_dim=_field(cfg, "intermediate_size", path), rope_theta=theta,
        rope_llama3=llama3, rms_eps=_field(cfg, "rms_norm_eps", path, float, 1e-6),
        qkv_bias=True if family == "qwen2" else bool(cfg.get("attention_bias", False)),
        qk_norm=family == "qwen3",
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        init_std=_field(cfg, "initializer_range", path, float, 0.02), dtype=dtype,
    )  # fmt: skip


def hf_config(pcfg: policy.PolicyConfig, like: dict | None = None) -> dict:
    """A ``config.json`` for ``pcfg``: ``like`` (the loaded file) with the policy's fields
    written over it, or a fresh Qwen2 config when there is none."""
    out = dict(like) if like else {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                                   "hidden_act": "silu", "torch_dtype": "float32"}  # fmt: skip
    family = ARCHITECTURES[out["architectures"][0]]
    if family == "qwen2" and not pcfg.qkv_bias:
        raise ValueError("hf_config: a Qwen2 config always has q/k/v biases; this policy has none")
    out.update(vocab_size=pcfg.vocab_size, hidden_size=pcfg.d_model, num_hidden_layers=pcfg.num_layers,
               num_attention_heads=pcfg.num_heads, num_key_value_heads=pcfg.num_kv_heads,
               intermediate_size=pcfg.mlp_dim, rms_norm_eps=pcfg.rms_eps, tie_word_embeddings=pcfg.tie_embeddings,
               initializer_range=pcfg.init_std)  # fmt: skip
    # The rope settings in the form the file had: transformers 5's rope_parameters, or 4.x's.
    v5 = isinstance(out.get("rope_parameters"), dict)
    rope = dict(out.get("rope_parameters") or {}) if v5 else dict(out.get("rope_scaling") or {})
    if pcfg.rope_llama3:
        factor, low, high, original = pcfg.rope_llama3
        rope.update(rope_type="llama3", factor=factor, low_freq_factor=low, high_freq_factor=high,
                    original_max_position_embeddings=int(original))  # fmt: skip
    if v5:
        out["rope_parameters"] = {**rope, "rope_theta": pcfg.rope_theta}
    else:
        out["rope_theta"] = pcfg.rope_theta
        if rope:
            out["rope_scaling"] = rope
    if pcfg.head_dim is not None:
        out["head_dim"] = pcfg.head_dim
    if family != "qwen2":
        out["attention_bias"] = pcfg.qkv_bias
    if pcfg.qk_norm != (family == "qwen3"):
        raise ValueError(f"hf_config: {out['architectures'][0]} {'has' if family == 'qwen3' else 'has no'} q/k norms; "
                         f"this policy's qk_norm is {pcfg.qk_norm}")  # fmt: skip
    return out
