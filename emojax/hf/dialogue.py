"""Conversations in real text: a checkpoint as the assistant and a second checkpoint as the
simulated user, prompted as RLVER's simulator is, in one JAX process.

Why: the world's user (:mod:`emojax.world.user`) speaks token ids of a small vocabulary;
RLVER's user is a language model that reads the assistant's reply, reasons about how it
lands given its persona and hidden need, and reports a signed change of its emotion score
``e`` (``../shared/reference/findings.md`` section 3). This module runs that loop with two
local checkpoints (:func:`emojax.hf.load`) and their chat templates (:mod:`emojax.hf.chat`).

How a turn runs (host-stepped: text is parsed between turns, so this loop is not inside a
compiled program; each speaker's generation is one jitted call on a left-padded batch):

1. the assistant reads the chat so far (its own replies as ``assistant``, the user's as
   ``user``) and writes a reply;
2. the user reads the same chat with the roles swapped, under a system prompt with its
   persona, its hidden need, its topic and its current ``e``, and answers in the format
   ``Reasoning: ... / Change: <signed integer> / Reply: ...`` (:data:`FORMAT`);
3. :func:`parse` reads the change and the reply; ``e <- clip(e + change, 0, 100)``.

A conversation ends at ``e <= 0``, ``e >= 100`` or ``max_turns`` replies (RLVER's
evaluation settings by default; ended conversations stop generating).

**Unparsable outputs** never crash a run. The rule (:func:`parse`):

- no ``Change:`` line with an integer: the change is 0, counted in ``unparsed_change``;
- a change outside +-``max_change``: clipped to the bound, counted in ``clipped_change``;
- no ``Reply:`` line: the reply is the output with its ``Reasoning:`` and ``Change:`` lines
  removed, counted in ``unparsed_reply``; an output with nothing left becomes ``"..."``.

Running it with real models on a GPU: README, "An LLM user".
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emojax import config
from emojax.hf import chat, checkpoint
from emojax.rl import sampler

__all__ = ["FORMAT", "DialogueConfig", "Profile", "Speaker", "converse", "parse", "user_prompt"]

FORMAT = "Reasoning: <one sentence>\nChange: <a signed integer>\nReply: <what you say next>"
PERSONAS = {
    "negative": "You tend to see the bad side of things and are quick to feel let down.",
    "passive": "You say little, agree easily and rarely say what you really want.",
    "avoidant": "You change the subject when feelings come up and keep people at a distance.",
}
NEEDS = {
    "be_heard": "You want to be listened to and understood, not given advice.",
    "solution": "You want concrete, practical help with the problem.",
    "information": "You want a clear, correct answer to a factual question behind your problem.",
    "reassurance": "You want to hear that things will be all right and that you are not to blame.",
}


@dataclasses.dataclass(frozen=True)
class Profile:
    """One simulated user: a persona (:data:`PERSONAS`), a hidden need (:data:`NEEDS`, the
    world's four, RLVER's hidden intention) and a topic, in words."""

    persona: str
    need: str
    topic: str

    def __post_init__(self):
        config.require(self, "persona", lambda v: v in PERSONAS, f"one of {tuple(PERSONAS)}")
        config.require(self, "need", lambda v: v in NEEDS, f"one of {tuple(NEEDS)}")


@dataclasses.dataclass(frozen=True)
class DialogueConfig:
    """The conversation's settings (defaults: RLVER's evaluation: start 40, at most 10 replies).

    Attributes:
      start_e: the user's emotion score at the start, in [0, 100].
      max_turns: the assistant's replies at most.
      max_change: the largest change a turn may report (larger ones are clipped; RLVER's
        released logs show +-5 and +-10 in 97% of turns).
      assistant_tokens, user_tokens: each speaker's generation budget per turn (each
        speaker's temperature and top-p are its own, :class:`Speaker`).
      assistant_system: the assistant's system prompt ("" for none).
    """

    start_e: float = 40.0
    max_turns: int = 10
    max_change: int = 10
    assistant_tokens: int = 96
    user_tokens: int = 128
    assistant_system: str = "You are a warm, helpful assistant."

    def __post_init__(self):
        config.require(self, "start_e", lambda v: 0.0 <= v <= 100.0, "in [0, 100]")
        config.int_at_least(self, 1, "max_turns", "max_change", "assistant_tokens", "user_tokens")


def user_prompt(profile: Profile, e: float, max_change: int) -> str:
    """The simulated user's system prompt: who they are, what they hide, how they answer."""
    return (
        f"You are a person talking to an AI assistant about {profile.topic}. {PERSONAS[profile.persona]} "
        f"{NEEDS[profile.need]} Never say this need outright; hint at it. Your current mood is {e:.0f} out of "
        f"100. Read the assistant's last reply, think about how it makes you feel, then answer in exactly this "
        f"format:\n{FORMAT}\nThe change is how much the reply moved your mood, from -{max_change} to "
        f"+{max_change}."
    )


_CHANGE = re.compile(r"^\s*Change:\s*([+-]?\d+)\s*$", re.MULTILINE | re.IGNORECASE)
_REPLY = re.compile(r"^\s*Reply:\s*(.*)", re.MULTILINE | re.IGNORECASE | re.DOTALL)
_LABELLED = re.compile(r"^\s*(Reasoning|Change):.*$", re.MULTILINE | re.IGNORECASE)


def parse(text: str, max_change: int) -> tuple[int, str, dict[str, bool]]:
    """``(change, reply, flags)`` of one user output by the module docstring's rule; ``flags``
    has ``unparsed_change``, ``clipped_change`` and ``unparsed_reply``."""
    flags = {"unparsed_change": False, "clipped_change": False, "unparsed_reply": False}
    found = _CHANGE.search(text)
    if found is None:
        change, flags["unparsed_change"] = 0, True
    else:
        raw = int(found.group(1))
        change = max(-max_change, min(max_change, raw))
        flags["clipped_change"] = change != raw
    said = _REPLY.search(text)
    if said is not None and said.group(1).strip():
        reply = said.group(1).strip()
    else:
        flags["unparsed_reply"] = True
        reply = _LABELLED.sub("", text).strip() or "..."
    return change, reply, flags


@dataclasses.dataclass
class Speaker:
    """A checkpoint and its tokenizer, generating chat turns for a batch of conversations.

    ``generate(chats, max_new_tokens, key) -> texts``: each chat (a list of ``{"role",
    "content"}`` messages) rendered with the generation prompt, the batch left-padded and
    sampled in one jitted call (:func:`emojax.rl.sampler.sample`), each completion decoded
    up to the template's end token.
    """

    model: checkpoint.HFModel
    tokenizer: chat.ChatTokenizer
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    _compiled: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, path: str, dtype: str = "float32", **kw: Any) -> Speaker:
        return cls(checkpoint.load(path, dtype=dtype), chat.load_tokenizer(path), **kw)

    def _end(self) -> int:
        for name in ("eos_token", "pad_token"):
            token = self.tokenizer.special_tokens.get(name)
            if token and self.tokenizer.tokenizer.token_to_id(token) is not None:
                return int(self.tokenizer.tokenizer.token_to_id(token))
        return -1

    def generate(self, chats: Sequence[list[dict]], max_new_tokens: int, key: jax.Array) -> list[str]:
        ids = [self.tokenizer.encode_chat(c, add_generation_prompt=True)["input_ids"] for c in chats]
        width = -(-max(len(x) for x in ids) // 64) * 64  # a few shapes, so a few compiles
        tokens = np.zeros((len(ids), width), np.int32)
        mask = np.zeros((len(ids), width), bool)
        for i, x in enumerate(ids):
            tokens[i, width - len(x):], mask[i, width - len(x):] = x, True
        end = self._end()
        cfg = sampler.SamplerConfig(max_new_tokens=max_new_tokens, temperature=self.temperature, top_k=self.top_k,
                                    top_p=self.top_p, end_token=end, pad_token=max(end, 0))  # fmt: skip
        if max_new_tokens not in self._compiled:
            graphdef = self.model.graphdef
            self._compiled[max_new_tokens] = jax.jit(
                lambda state, key, t, m, c: sampler.sample(graphdef, state, key, t, m, c))
        out = self._compiled[max_new_tokens](self.model.state, key, jnp.asarray(tokens), jnp.asarray(mask), cfg)
        completion, keep = np.asarray(out.tokens[:, width:]), np.asarray(out.completion_mask)
        texts = []
        for row, m in zip(completion, keep):
            row = [int(t) for t, k in zip(row, m) if k and int(t) != end]
            texts.append(self.tokenizer.tokenizer.decode(row, skip_special_tokens=True))
        return texts


Generate = Callable[[Sequence[list[dict]], int, jax.Array], list[str]]


def converse(assistant: Generate, user: Generate, profiles: Sequence[Profile], openings: Sequence[str],
             cfg: DialogueConfig, key: jax.Array) -> dict[str, Any]:  # fmt: skip
    """Run one conversation per profile, each opened by the user's ``openings[i]``.

    ``assistant`` and ``user`` are :meth:`Speaker.generate` (or any function of that
    signature). Returns JSON-ready ``transcripts`` (per conversation: the messages, the
    user's raw outputs, ``e`` after each turn), ``final_e``, ``turns`` and the parse counts
    (``unparsed_change``, ``clipped_change``, ``unparsed_reply``, ``user_turns``).
    """
    if len(openings) != len(profiles):
        raise ValueError(f"{len(profiles)} profiles but {len(openings)} openings")
    n = len(profiles)
    messages: list[list[dict]] = [[{"role": "user", "content": o}] for o in openings]
    raw: list[list[str]] = [[] for _ in range(n)]
    e = np.full(n, cfg.start_e, np.float64)
    trajectory: list[list[float]] = [[cfg.start_e] for _ in range(n)]
    live = np.ones(n, bool)
    turns = np.zeros(n, np.int64)
    counts = {"unparsed_change": 0, "clipped_change": 0, "unparsed_reply": 0, "user_turns": 0}
    system = [{"role": "system", "content": cfg.assistant_system}] if cfg.assistant_system else []
    for t in range(cfg.max_turns):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        key_a, key_u = jax.random.split(jax.random.fold_in(key, t))
        replies = assistant([system + messages[i] for i in idx], cfg.assistant_tokens, key_a)
        for i, reply in zip(idx, replies):
            messages[i].append({"role": "assistant", "content": reply})
            turns[i] += 1
        # The user's view: its own lines are the assistant's turns of its chat, and the other way round.
        views = [[{"role": "system", "content": user_prompt(profiles[i], e[i], cfg.max_change)}]
                 + [{"role": "assistant" if m["role"] == "user" else "user", "content": m["content"]}
                    for m in messages[i]] for i in idx]  # fmt: skip
        outputs = user(views, cfg.user_tokens, key_u)
        for i, text in zip(idx, outputs):
            change, said, flags = parse(text, cfg.max_change)
            counts["user_turns"] += 1
            for name, hit in flags.items():
                counts[name] += int(hit)
            e[i] = float(np.clip(e[i] + change, 0.0, 100.0))
            trajectory[i].append(e[i])
            raw[i].append(text)
            messages[i].append({"role": "user", "content": said})
            if e[i] <= 0.0 or e[i] >= 100.0:
                live[i] = False
    return {
        "transcripts": [{"profile": dataclasses.asdict(p), "messages": m, "user_outputs": r, "e": tr}
                        for p, m, r, tr in zip(profiles, messages, raw, trajectory)],  # fmt: skip
        "final_e": e.tolist(),
        "turns": turns.tolist(),
        **counts,
    }
