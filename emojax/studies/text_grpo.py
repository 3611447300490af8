"""GRPO on real text as a run: a local checkpoint learns from a simulated user's emotion, with
a work dir, checkpoints, held-out evaluations, progress and a merged checkpoint at the end.

Why: :class:`emojax.hf.text_grpo.TextTrainer` is one step (a rollout of conversations and
the engine's update); a researcher with a downloaded model needs the run around it, as the
compiled engine has (:func:`emojax.rl.loop.train`): resume after a stop, a metrics file,
evaluations on users it never trained on, and the trained policy saved as a Hugging Face
folder that ``transformers`` or :func:`emojax.hf.load` reads.

The users are RLVER's in words (:class:`emojax.hf.dialogue.Profile`): personas in the
world's mix (RLVER's 41/34/25%), the four hidden needs uniformly, a topic with its opening
line from :data:`TOPICS`; the held-out users' (need, topic) pairs are never trained on
(:func:`held_out`).
The user is a second checkpoint (``user=DIR``) or a rule (``user=rule:NAME``,
:mod:`emojax.hf.rule_users`), which is what the ``smoke`` and ``tiny`` presets use, with a
random assistant (:func:`emojax.hf.toy.write_random`), since no weights ship with emojax.

The work dir holds ``checkpoints/`` (Orbax: the trained parameters, the optimizer's state,
PPO's critic; every ``save_every`` steps and at a stop), ``metrics.jsonl`` (a row a step),
``evaluations.json`` (held-out mean final ``e``, success and failure at step 0 and every
``eval_every`` steps), ``transcripts.jsonl`` (the first conversation of each step) and
``final/`` (the policy with any adapters merged, in its checkpoint's dtypes, with the
source folder's other files: tokenizer, chat template, generation config). A Ctrl-C saves
the step it stopped at; the same call resumes there, redoing an evaluation that was due and
logging each step once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from typing import Any

import jax
import numpy as np

from emojax import checkpoint, config, interrupt, progress, tracking
from emojax import workdir as workdir_lib
from emojax.hf import checkpoint as hf_checkpoint
from emojax.hf import dialogue, rule_users, text_grpo, toy
from emojax.rl import policy as policy_lib
from emojax.rl.config import GRPOConfig
from emojax.world import user as world_user

__all__ = ["PRESETS", "TOPICS", "Config", "check_inputs", "evaluate", "held_out", "profiles", "run", "summary"]

# A topic and the line a user opens with; the hidden need is drawn apart from it, so the
# same opening hides different needs across users (RLVER's profiles pair them the same way).
TOPICS: tuple[tuple[str, str], ...] = (
    ("work", "My manager tore my report apart in front of the whole team today."),
    ("a bill", "I just got charged twice for the same thing and nobody answers the phone."),
    ("a friend", "My oldest friend did not show up to my birthday and has not said why."),
    ("exams", "I failed the practice exam again, and the real one is in two weeks."),
    ("moving", "We have to move out by the end of the month and I have found nothing."),
    ("health", "The doctor wants more tests and will not tell me what they are looking for."),
    ("family", "My brother and I have not spoken since the argument at dinner."),
    ("sleep", "I keep waking up at four in the morning and cannot get back to sleep."),
)
RULE = "rule:"  # the prefix of Config.user naming a rule user
_WEIGHTS = re.compile(r"^(config\.json|.*\.safetensors|.*\.safetensors\.index\.json|.*\.bin|.*\.bin\.index\.json|.*\.pt)$")


@dataclasses.dataclass(frozen=True)
class Config:
    """The run.

    Attributes:
      policy: the assistant's checkpoint folder; ``""``: a random checkpoint of the policy
        preset ``random_policy`` with the bundled tokenizer, written into
        ``workdir/random_policy`` (presets and plumbing checks only).
      random_policy: that preset (:data:`emojax.rl.policy.PRESETS`); ``""`` when ``policy``
        must be given.
      user: the simulated user: a checkpoint folder (may be the same as ``policy``), or
        ``rule:NAME`` for a rule user (:mod:`emojax.hf.rule_users`: a registered name or
        ``module:name``); a run refuses to start without one.
      dtype: both checkpoints' compute dtype (``float32`` or ``bfloat16``).
      user_temperature: the user's sampling temperature (the assistant samples at the
        update's ``run.grpo.temperature``).
      run: the trainer (the update's settings, the conversations, the widths, LoRA).
      steps: updates in the run.
      save_every: steps between checkpoints.
      keep_checkpoints: checkpoints kept.
      train_profiles, eval_profiles: users trained with and held out.
      eval_every: steps between held-out evaluations (0: none; else also at step 0).
      eval_start_e, eval_turns: the held-out conversations' start and length (RLVER's
        evaluation: 40 and 10).
      seed: every key of the run (profiles, LoRA's adapters, rollouts).
    """

    policy: str = ""
    random_policy: str = ""
    user: str = ""
    dtype: str = "float32"
    user_temperature: float = 0.7
    run: text_grpo.TextGRPOConfig = text_grpo.TextGRPOConfig()
    steps: int = 100
    save_every: int = 10
    keep_checkpoints: int = 2
    train_profiles: int = 64
    eval_profiles: int = 16
    eval_every: int = 20
    eval_start_e: float = 40.0
    eval_turns: int = 10
    seed: int = 0

    def __post_init__(self):
        config.require(self, "random_policy", lambda v: v == "" or v in policy_lib.PRESETS,
                       f"'' or one of {tuple(policy_lib.PRESETS)}")  # fmt: skip
        config.require(self, "dtype", lambda v: v in policy_lib.DTYPES, f"one of {policy_lib.DTYPES}")
        config.positive(self, "user_temperature")
        config.int_at_least(self, 1, "steps", "save_every", "keep_checkpoints", "eval_turns")
        config.require(self, "eval_start_e", lambda v: 0.0 <= v <= 100.0, "in [0, 100]")
        config.int_at_least(self, 0, "eval_every", "eval_profiles")
        config.require(self, "train_profiles", lambda v: v >= self.run.grpo.num_prompts,
                       f">= run.grpo.num_prompts ({self.run.grpo.num_prompts})")  # fmt: skip
        config.require(self, "eval_every", lambda v: v == 0 or self.eval_profiles > 0,
                       "0 when eval_profiles is 0")  # fmt: skip


def _run(grpo: GRPOConfig, turns: int, assistant_tokens: int, user_tokens: int, prompt_len: int, completion_len: int,
         lora_rank: int = 0) -> text_grpo.TextGRPOConfig:  # fmt: skip
    return text_grpo.TextGRPOConfig(
        grpo=grpo, lora_rank=lora_rank, prompt_len=prompt_len, completion_len=completion_len,
        dialogue=dialogue.DialogueConfig(start_e=30.0, max_turns=turns, assistant_tokens=assistant_tokens,
                                         user_tokens=user_tokens))  # fmt: skip


PRESETS: dict[str, Config] = {
    # A random smoke-sized assistant and the length rule: the loop, the checkpoints and the
    # final save in seconds.
    "smoke": Config(random_policy="smoke", user="rule:length", steps=2, save_every=1, train_profiles=4,
                    eval_profiles=2, eval_every=2, eval_turns=2,
                    run=_run(GRPOConfig(num_prompts=2, group_size=2, mu=1, learning_rate=1e-2), 2, 24, 8, 128, 128)),
    # A first look: a random 2x64 assistant learns to please the length rule (about half
    # of a random policy's 24-token replies reach its 48 characters); trained on 3 replies,
    # evaluated on 5; RLVER's batch of 8 users x 4 (with 4 x 4 the reward fell back for
    # ten steps midway).
    "tiny": Config(random_policy="2x64", user="rule:length", steps=40, save_every=10, train_profiles=32,
                   eval_profiles=16, eval_every=10, eval_turns=5,
                   run=_run(GRPOConfig(num_prompts=8, group_size=4, mu=1, learning_rate=3e-3), 3, 24, 8, 128, 192)),
    # RLVER's run on your checkpoints (--set policy=DIR --set user=DIR): groups of 4 clones
    # of a user, 8 users a step (its batch of 32), 1,000 steps, start e 30, at most 8
    # replies, token-mean loss, KL 0, temperature 1, LoRA rank 16 on every projection at
    # 1e-5 (RLVER fine-tuned fully at 1e-6); 100 held-out users every 50 steps.
    "default": Config(steps=1000, save_every=10, train_profiles=500, eval_profiles=100, eval_every=50, dtype="bfloat16",
                      run=_run(GRPOConfig(num_prompts=8, group_size=4, mu=1, loss_type="dapo", std_ddof=1, beta=0.0,
                                          temperature=1.0, learning_rate=1e-5, max_grad_norm=1.0),
                               8, 256, 192, 512, 4096, lora_rank=16)),
}  # fmt: skip


def held_out(need: int, topic: int) -> bool:
    """Whether a (need, topic) pair is kept for evaluation: a quarter of the 32 pairs, each
    need and each topic in both halves, so the held-out users are combinations never
    trained on (a user is a persona, a need and a topic: 96 in all, which 500 training
    draws would cover)."""
    return (need + topic) % 4 == 0


def profiles(key: jax.Array, n: int, evaluation: bool = False) -> tuple[list[dialogue.Profile], list[str]]:
    """``n`` users and their opening lines, fixed by ``key``: a persona by the world's mix
    (RLVER's 41/34/25%), a need uniformly, then a topic uniformly among those whose pair with
    the need is held out (``evaluation``) or not (:func:`held_out`)."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    personas = rng.choice(len(world_user.PERSONAS), n, p=world_user.UserConfig().persona_mix)
    needs = rng.integers(len(world_user.NEEDS), size=n)
    topics = [int(rng.choice([t for t in range(len(TOPICS)) if held_out(int(q), t) == evaluation])) for q in needs]
    users = [dialogue.Profile(world_user.PERSONAS[p], world_user.NEEDS[q], TOPICS[t][0])
             for p, q, t in zip(personas, needs, topics)]  # fmt: skip
    return users, [TOPICS[t][1] for t in topics]


def _check_folder(field: str, path: str) -> None:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Config.{field}: {path} is not a folder (a local checkpoint: config.json, "
                                f"*.safetensors, tokenizer.json and a chat template)")  # fmt: skip
    for name in ("config.json", "tokenizer.json"):
        if not os.path.isfile(os.path.join(path, name)):
            raise FileNotFoundError(f"Config.{field}: {os.path.join(path, name)} is missing (a local checkpoint "
                                    f"folder holds config.json, *.safetensors, tokenizer.json and a chat template)")  # fmt: skip


def check_inputs(cfg: Config) -> None:
    """Refuse, before anything is written, a run whose checkpoints are not named or not there
    (a FileNotFoundError or ValueError naming the field and the file)."""
    if cfg.policy:
        _check_folder("policy", cfg.policy)
    elif not cfg.random_policy:
        raise ValueError("Config.policy: this preset trains a checkpoint you name: --set policy=DIR (and --set "
                         "user=DIR for the simulated user, or --set user=rule:length)")  # fmt: skip
    if not cfg.user:
        raise ValueError("Config.user: name the simulated user's checkpoint (--set user=DIR; it may be the "
                         "policy's) or a rule (--set user=rule:length)")  # fmt: skip
    if cfg.user.startswith(RULE):
        rule_users.make_user(cfg.user[len(RULE):])  # an unknown name fails here, before any work
    else:
        _check_folder("user", cfg.user)


def _assistant_path(cfg: Config, workdir: str) -> str:
    """The policy's folder: ``cfg.policy``, or the random checkpoint written (whole or not
    at all: :func:`emojax.hf.toy.write_random` renames a finished folder) into the work dir."""
    if cfg.policy:
        return cfg.policy
    where = os.path.join(workdir, "random_policy")
    if not os.path.isdir(where):
        key = jax.random.fold_in(jax.random.key(cfg.seed), 3)
        toy.write_random(where, policy_lib.PRESETS[cfg.random_policy], key)
    return where


def _user(cfg: Config) -> dialogue.Generate:
    if cfg.user.startswith(RULE):
        return rule_users.make_user(cfg.user[len(RULE):])
    return dialogue.Speaker.load(cfg.user, dtype=cfg.dtype, temperature=cfg.user_temperature).generate


def evaluate(trainer: text_grpo.TextTrainer, user: dialogue.Generate, users: list[dialogue.Profile],
             openings: list[str], cfg: Config, key: jax.Array) -> dict[str, float]:  # fmt: skip
    """The current policy with held-out users (``cfg.eval_start_e``, at most
    ``cfg.eval_turns`` replies): mean final ``e``, success (>= 100), failure (< 10), and the
    share of the user's outputs whose change did not parse."""
    talk = dataclasses.replace(cfg.run.dialogue, start_e=cfg.eval_start_e, max_turns=cfg.eval_turns)
    out = dialogue.converse(trainer.assistant.generate, user, users, openings, talk, key)
    final = np.asarray(out["final_e"])
    return {"score": float(final.mean()), "success": float(np.mean(final >= 100.0)),
            "failure": float(np.mean(final < 10.0)),
            "unparsed_change": out["unparsed_change"] / max(out["user_turns"], 1)}  # fmt: skip


def _save_final(trainer: text_grpo.TextTrainer, source: str, where: str) -> str:
    """The trained policy (adapters merged) in the source checkpoint's tensor dtypes (in
    shards of at most 5 GB when it is larger), with every file of the source that is not weights or
    ``config.json`` (the tokenizer's, the chat template, the generation config)."""
    model = hf_checkpoint.from_policy(trainer.pcfg, trainer.policy_state, like=trainer.assistant.model.hf_config)
    shard = 5 * 10**9 if 4 * sum(x.size for x in jax.tree.leaves(model.state)) > 5 * 10**9 else 0  # one file if small
    hf_checkpoint.save(dataclasses.replace(model, dtypes=dict(trainer.assistant.model.dtypes)), where,
                       max_shard_bytes=shard)  # fmt: skip
    for name in sorted(os.listdir(source)):
        if os.path.isfile(os.path.join(source, name)) and not _WEIGHTS.match(name):
            shutil.copy(os.path.join(source, name), os.path.join(where, name))
    return where


def run(cfg: Config, workdir: str) -> dict[str, Any]:
    """Train (or resume) the run in ``workdir``; returns the first and last steps' rewards
    in this call, the reward curve, the held-out evaluations and where the final
    checkpoint is. A Ctrl-C saves the step it stopped at and raises
    :class:`emojax.interrupt.Interrupted`; calling again resumes there."""
    check_inputs(cfg)
    record = config.to_dict(cfg)
    workdir_lib.check_same(workdir, record)  # before any restore: another config's state is never read
    os.makedirs(workdir, exist_ok=True)
    path = _assistant_path(cfg, workdir)
    root = jax.random.key(cfg.seed)
    with progress.phase(f"loading {path}"):
        speaker = dialogue.Speaker.load(path, dtype=cfg.dtype)
        user = _user(cfg)
    train_users, train_openings = profiles(jax.random.fold_in(root, 0), cfg.train_profiles)
    eval_users, eval_openings = profiles(jax.random.fold_in(root, 1), cfg.eval_profiles, evaluation=True)
    trainer = text_grpo.TextTrainer(cfg.run, speaker, user, train_users, train_openings, jax.random.fold_in(root, 2))
    mngr = checkpoint.manager(workdir, cfg.keep_checkpoints)
    restored = checkpoint.restore(mngr, trainer.state)
    if restored is None:
        step = 0
        checkpoint.save(mngr, 0, trainer.state, {"step": 0})
    else:
        trainer.load_state(restored[0])
        step = int(restored[1]["step"])
        print(f"[{progress.label()}] text GRPO: resuming from step {step} of {cfg.steps}", flush=True)
    evals_file = os.path.join(workdir, "evaluations.json")
    evals: dict[str, dict] = {}
    if os.path.isfile(evals_file):
        with open(evals_file) as f:
            evals = {k: v for k, v in json.load(f).items() if int(k) <= step}  # later ones are redone
        config.write_json(evals_file, evals)

    def evaluate_if_due(at: int) -> None:
        due = cfg.eval_every and (at % cfg.eval_every == 0 or at == cfg.steps)
        if due and str(at) not in evals:
            with progress.phase(f"held-out evaluation at step {at} ({cfg.eval_profiles} users)"):
                evals[str(at)] = evaluate(trainer, user, eval_users, eval_openings, cfg,
                                          jax.random.fold_in(root, 10**6 + at))  # fmt: skip
            config.write_json(evals_file, evals)

    tracking.rewind_jsonl(os.path.join(workdir, "transcripts.jsonl"), step)
    rows: list[dict] = []
    with tracking.Tracker(workdir, record, project="emojax-text-grpo") as tracker:
        tracker.rewind(step)
        with progress.phase("text GRPO", cfg.steps, unit="steps", initial=step) as bar, interrupt.deferred():
            evaluate_if_due(step)  # step 0, or one a stopped run saved but did not evaluate
            while step < cfg.steps:
                metrics = trainer.step(jax.random.fold_in(jax.random.fold_in(root, 4), step))
                transcript = metrics.pop("transcript")
                step += 1
                tracker.log(step, metrics)
                rows.append({"step": step, **metrics})
                with open(os.path.join(workdir, "transcripts.jsonl"), "a") as f:
                    f.write(json.dumps({"step": step, **transcript}) + "\n")
                saved = step % cfg.save_every == 0 or step == cfg.steps
                if saved:
                    checkpoint.save(mngr, step, trainer.state, {"step": step})
                evaluate_if_due(step)
                bar.update(1, reward=metrics["reward"], turns=metrics["turns"])
                stop = interrupt.requested()  # after the evaluation: a Ctrl-C during it stops here
                if stop is not None and step < cfg.steps:
                    if not saved:
                        checkpoint.save(mngr, step, trainer.state, {"step": step})
                    raise interrupt.Interrupted(stop, step, workdir)
    final = os.path.join(workdir, "final")
    with progress.phase(f"saving the trained policy to {final}"):
        _save_final(trainer, path, final)
    logged = tracking.read_metrics(workdir)
    return {
        "steps": step, "checkpoint": path, "final": final,
        "first": rows[0] if rows else None, "last": rows[-1] if rows else None,
        "curve": {"step": [r["step"] for r in logged], "reward": [r["reward"] for r in logged]},
        "evaluations": {int(k): v for k, v in sorted(evals.items(), key=lambda kv: int(kv[0]))},
    }  # fmt: skip


def summary(results: dict[str, Any]) -> str:
    """A few lines: the rewards of the run's first and last steps in this launch, and the
    held-out evaluations."""
    lines = [f"text GRPO: {results['steps']} steps on {results['checkpoint']}; trained policy in {results['final']}"]
    for name in ("first", "last"):
        row = results.get(name)
        if row:
            lines.append(f"  {name} step of this launch ({row['step']}): reward {row['reward']:.3f}, final e "
                         f"{row['final_e']:.1f}, {row['turns']:.1f} replies")  # fmt: skip
    for at, ev in results["evaluations"].items():
        lines.append(f"  held-out at step {at}: score {ev['score']:.1f}, success {ev['success']:.2f}, failure "
                     f"{ev['failure']:.2f}, unparsed changes {ev['unparsed_change']:.2f}")  # fmt: skip
    return "\n".join(lines)
