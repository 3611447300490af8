"""GRPO on conversations in real text: a checkpoint learns from an LLM user's emotion, as
RLVER's policy did.

Why a second path beside the compiled engine: the engine's conversations
(:mod:`emojax.rl.rollout_conversation`) are token ids of the world's vocabulary, with the
user inside the compiled program. A language-model user speaks text that must be parsed
between turns (:mod:`emojax.hf.dialogue`), so this rollout is host-stepped; the update is
the engine's own (:mod:`emojax.rl.algorithms`: GRPO or PPO, every loss setting, LoRA), on a
:class:`emojax.rl.rollout.Batch` built here.

One step:

1. ``num_prompts`` profiles (with their opening lines) are drawn, each repeated
   ``group_size`` times: a GRPO group is one user, several conversations;
2. :func:`emojax.hf.dialogue.converse` runs them with the current policy;
3. the reward of a conversation is RLVER's ``max(e_T / 100, 0)``; advantages are
   group-relative (:func:`emojax.rl.advantages.group_advantages`);
4. each conversation is encoded with the chat template (:meth:`ChatTokenizer.encode_chat`,
   ``mask_from="auto"``: the template's ``{% generation %}`` blocks, or each assistant
   message found by rendering prefixes when it has none): the tokens before the first
   assistant token are the prompt (left-padded to ``prompt_len``), the rest the completion
   (right-padded to ``completion_len``, cut and marked truncated if longer), and the
   assistant mask is the completion mask, so the user's turns are context, never trained on;
5. the update runs (one compiled function: the shapes are fixed by the two lengths).

The assistant samples at the update's ``temperature`` and ``top_p`` (the loss scores the
distribution that was sampled), and ``share_prompt`` is off: a group's prompts are the same
text, but a byte-level tokenizer may merge the header's last character with a reply's first
differently from row to row.

The trained tokens are the conversation re-encoded, not the sampled ids: a tokenizer can
split decoded text differently from how it was sampled. Old log-probs are recomputed
teacher-forced on the re-encoded tokens (as the engine always does), so the ratio is exact
for what is trained; the difference from the sampled ids is the usual text round trip
(TRL's multi-turn path re-encodes too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import config
from emojax.hf import chat, checkpoint, dialogue
from emojax.rl import advantages as adv_lib
from emojax.rl import algorithms, lora, policy
from emojax.rl.config import GRPOConfig
from emojax.rl.rollout import Batch
from emojax.rl.update import make_optimizer

__all__ = ["TextGRPOConfig", "TextTrainer", "to_batch"]


@dataclasses.dataclass(frozen=True)
class TextGRPOConfig:
    """The run.

    Attributes:
      grpo: the update's settings (``num_prompts``, ``group_size``, ``learning_rate``,
        ``beta``, ``algorithm``, ``loss_type``, ...); its ``policy`` field is ignored: the
        policy is the checkpoint's, with ``lora_rank`` adapters (0: full fine-tuning).
      dialogue: the conversations' settings.
      prompt_len, completion_len: the batch's two widths in tokens.
      lora_rank, lora_alpha: adapters on the checkpoint's projections.
    """

    grpo: GRPOConfig = dataclasses.field(default_factory=lambda: GRPOConfig(num_prompts=2, group_size=4, mu=1))
    dialogue: dialogue.DialogueConfig = dataclasses.field(default_factory=dialogue.DialogueConfig)
    prompt_len: int = 256
    completion_len: int = 2048
    lora_rank: int = 0
    lora_alpha: float = 16.0

    def __post_init__(self):
        config.int_at_least(self, 1, "prompt_len", "completion_len")
        config.int_at_least(self, 0, "lora_rank")
        config.positive(self, "lora_alpha")


def to_batch(tokenizer: chat.ChatTokenizer, chats: Sequence[list[dict]], rewards: np.ndarray, grpo: GRPOConfig,
             prompt_len: int, completion_len: int, pad: int = 0) -> Batch:  # fmt: skip
    """The update's :class:`Batch` of whole conversations (step 4 of the module docstring);
    rows are group-major (``grpo.group_size`` rows per group) and advantages follow the run's
    settings (``advantage_scale``, ``advantage_estimator``, ``std_ddof``, ...).

    Raises:
      ValueError: a conversation's prompt (system and opening) is longer than ``prompt_len``,
        or it has assistant messages but no assistant token.
    """
    b = len(chats)
    tokens = np.full((b, prompt_len + completion_len), pad, np.int32)
    mask = np.zeros(tokens.shape, bool)
    completion_mask = np.zeros((b, completion_len), bool)
    truncated = np.zeros(b, bool)
    for i, messages in enumerate(chats):
        enc = tokenizer.encode_chat(messages, mask_from="auto")
        ids, ours = np.asarray(enc["input_ids"], np.int32), np.asarray(enc["assistant_masks"], bool)
        if not ours.any() and any(m.get("role") == "assistant" for m in messages):
            raise ValueError(f"conversation {i}: no token of the assistant's messages was found with the chat "
                             f"template of {tokenizer.path or 'the tokenizer'}")  # fmt: skip
        first = int(np.argmax(ours)) if ours.any() else len(ids)
        if first > prompt_len:
            raise ValueError(f"conversation {i}: its prompt (system prompt and opening) is {first} tokens, more than "
                             f"prompt_len={prompt_len}")  # fmt: skip
        rest = ids[first:][:completion_len]
        truncated[i] = len(ids) - first > completion_len
        tokens[i, prompt_len - first:prompt_len] = ids[:first]
        mask[i, prompt_len - first:prompt_len] = True
        tokens[i, prompt_len:prompt_len + len(rest)] = rest
        mask[i, prompt_len:prompt_len + len(rest)] = True
        completion_mask[i, :len(rest)] = ours[first:][:completion_len]
    rewards = np.asarray(rewards, np.float32)
    adv = adv_lib.group_advantages(
        jnp.asarray(rewards).reshape(-1, grpo.group_size), scale=grpo.advantage_scale,
        estimator=grpo.advantage_estimator, std_ddof=grpo.std_ddof, eps=grpo.advantage_eps,
        zero_std_tol=grpo.zero_std_tol).advantages.reshape(-1)  # fmt: skip
    return Batch(jnp.asarray(tokens), jnp.asarray(mask), jnp.asarray(completion_mask), adv, jnp.asarray(truncated),
                 jnp.asarray(rewards))  # fmt: skip


class TextTrainer:
    """GRPO (or PPO) of ``assistant`` against ``user`` (see the module docstring).

    ``step(key) -> metrics`` runs one rollout and update (``metrics["transcript"]`` is its
    first conversation); :attr:`policy_state` is the
    policy's whole state now (adapters on their base with LoRA), to save with
    :func:`emojax.hf.from_policy`.
    """

    def __init__(self, cfg: TextGRPOConfig, assistant: dialogue.Speaker, user: dialogue.Generate,
                 profiles: Sequence[dialogue.Profile], openings: Sequence[str], key: jax.Array):  # fmt: skip
        if len(profiles) != len(openings) or len(profiles) < cfg.grpo.num_prompts:
            raise ValueError(f"{len(profiles)} profiles and {len(openings)} openings for num_prompts="
                             f"{cfg.grpo.num_prompts}")  # fmt: skip
        self.cfg, self.user, self.profiles, self.openings = cfg, user, list(profiles), list(openings)
        base = assistant.model
        pcfg = dataclasses.replace(base.config, lora_rank=cfg.lora_rank, lora_alpha=cfg.lora_alpha)
        state = lora.attach(pcfg, base.state, key) if cfg.lora_rank else base.state
        self.pcfg = pcfg
        self.graphdef = policy.graphdef_of(pcfg)
        grpo = cfg.grpo.replace(policy=pcfg, vocab_from_task=False, share_prompt=False)
        self.params, self.ref = lora.start(pcfg, state, reference=grpo.beta > 0)
        tx = make_optimizer(grpo)
        algorithm = algorithms.make_algorithm(grpo.algorithm)
        self.opt_state, self.critic = algorithm.init(tx, pcfg, self.params)
        self._update = jax.jit(algorithm.make_update(grpo, self.graphdef, tx, cfg.completion_len))
        # Sampled as scored; a fresh compile cache, since the graphdef is this run's (LoRA).
        self.assistant = dataclasses.replace(assistant, temperature=grpo.temperature, top_p=grpo.top_p,
                                             top_k=grpo.top_k, _compiled={})  # fmt: skip
        self.grpo = grpo
        self._sync()

    @property
    def policy_state(self) -> nnx.State:
        return lora.combine(self.pcfg, self.params, self.ref)

    @property
    def state(self) -> dict[str, Any]:
        """What a checkpoint of the run holds: the trained parameters (the adapters with
        LoRA), the optimizer's state and PPO's critic (None for GRPO)."""
        return {"params": self.params, "opt_state": self.opt_state, "critic": self.critic}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from :attr:`state` as saved (the speaker then samples that policy)."""
        self.params, self.opt_state, self.critic = state["params"], state["opt_state"], state["critic"]
        self._sync()

    def _sync(self) -> None:
        """The speaker samples from the current policy."""
        model = self.assistant.model
        self.assistant.model = checkpoint.HFModel(self.pcfg, self.graphdef, self.policy_state, model.hf_config,
                                                  model.dtypes)  # fmt: skip

    def step(self, key: jax.Array) -> dict[str, Any]:
        g, n = self.grpo.group_size, self.grpo.num_prompts
        key_pick, key_talk = jax.random.split(key)
        pick = np.asarray(jax.random.choice(key_pick, len(self.profiles), (n,), replace=False))
        rows = np.repeat(pick, g)
        out = dialogue.converse(self.assistant.generate, self.user, [self.profiles[i] for i in rows],
                                [self.openings[i] for i in rows], self.cfg.dialogue, key_talk)  # fmt: skip
        rewards = np.maximum(np.asarray(out["final_e"]) / 100.0, 0.0)
        system = [{"role": "system", "content": self.cfg.dialogue.assistant_system}] if self.cfg.dialogue.assistant_system else []
        chats = [system + t["messages"][:-1] for t in out["transcripts"]]  # the last user line is never answered
        batch = to_batch(self.assistant.tokenizer, chats, rewards, self.grpo, self.cfg.prompt_len,
                         self.cfg.completion_len)  # fmt: skip
        self.params, self.opt_state, metrics, skipped, self.critic = self._update(
            self.params, self.opt_state, self.ref, batch, self.critic)
        self._sync()
        return {
            "reward": float(np.mean(rewards)), "final_e": float(np.mean(out["final_e"])),
            "turns": float(np.mean(out["turns"])), "truncated": float(np.mean(np.asarray(batch.truncated))),
            "unparsed_change": out["unparsed_change"], "user_turns": out["user_turns"], "skipped": int(skipped),
            "transcript": out["transcripts"][0],
            **{k: float(v) for k, v in metrics.items()},
        }  # fmt: skip
