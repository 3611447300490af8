"""GRPO tasks with a known optimum (issue 4, item 7).

* :mod:`.reverse`: reverse a sequence of symbols; a verifiable token task;
* :mod:`.need_reply`: one reply to a simulated user whose need is stated in the prompt.

Both follow the interface of :mod:`.base` (:class:`~.base.Task`) and register their
rewards on import. ``make_task(name, cfg)`` builds one by name, ``cfg`` defaulting to the
task's config (``CONFIGS[name]()``).
"""

from emojax.rl.tasks import need_reply, reverse
from emojax.rl.tasks.base import Task, repeat_prompts, terminate, uniform_completions

CONFIGS = {"reverse": reverse.ReverseConfig, "need_reply": need_reply.NeedReplyConfig}
_MAKERS = {"reverse": reverse.make, "need_reply": need_reply.make}


def make_task(name: str, cfg=None) -> Task:
    """The task ``name`` built from ``cfg`` (its default config if None)."""
    if name not in _MAKERS:
        raise KeyError(f"unknown task {name!r}; known: {sorted(_MAKERS)}")
    return _MAKERS[name](CONFIGS[name]() if cfg is None else cfg)


__all__ = ["CONFIGS", "Task", "make_task", "need_reply", "repeat_prompts", "reverse", "terminate",
           "uniform_completions"]
