"""A Hugging Face tokenizer folder and its chat template, with the assistant's tokens marked.

    tok = emojax.hf.chat.load_tokenizer("path/to/Qwen2.5-0.5B-Instruct")
    text = tok.render(messages, add_generation_prompt=True)
    enc = tok.encode_chat(messages)   # {"input_ids": [...], "assistant_masks": [...]}

``tokenizer.json`` is read by the ``tokenizers`` library; the template comes from
``chat_template.jinja`` (what transformers 5 writes) or ``tokenizer_config.json``'s
``chat_template``. It is rendered with jinja2 in a sandbox, with the settings and helpers
transformers gives its templates: blocks trimmed and left-stripped, loop controls,
``raise_exception``, ``strftime_now`` and a ``tojson`` that keeps non-ASCII text, and the
tokenizer's special tokens (``bos_token``, ``eos_token``, ...) as variables. A template marks
what the assistant says with ``{% generation %} ... {% endgeneration %}``; the text rendered
inside is recorded as character spans, the rendered chat is encoded without adding special
tokens, and a token is the assistant's when its characters overlap a span (the rule of
transformers' ``apply_chat_template(..., return_assistant_tokens_mask=True)``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime
from typing import Any

import jinja2
import tokenizers
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["ChatTokenizer", "load_tokenizer"]

# Private-use characters that bracket the text of a generation block while the template
# renders; they are removed from the text the tokenizer sees.
_OPEN, _CLOSE = "\ue000", "\ue001"
_SPECIAL = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


class _Generation(Extension):
    """``{% generation %}...{% endgeneration %}``: the block's text, bracketed."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_bracket"), [], [], body).set_lineno(lineno)

    def _bracket(self, caller) -> str:
        return _OPEN + caller() + _CLOSE


def _raise(message: str):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _environment() -> jinja2.Environment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_Generation, jinja2.ext.loopcontrols])  # fmt: skip
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def _spans(bracketed: str, path: str) -> tuple[str, list[tuple[int, int]]]:
    """The text without brackets, and the character spans that were bracketed."""
    text, spans, start = [], [], None
    n = 0
    for ch in bracketed:
        if ch == _OPEN:
            if start is not None:
                raise ValueError(f"{path}: a {{% generation %}} block inside another")
            start = n
        elif ch == _CLOSE:
            spans.append((start, n))
            start = None
        else:
            text.append(ch)
            n += 1
    return "".join(text), [s for s in spans if s[1] > s[0]]


@dataclasses.dataclass(frozen=True)
class ChatTokenizer:
    """A tokenizer (``tokenizers.Tokenizer``), its chat template and special tokens."""

    tokenizer: tokenizers.Tokenizer
    template: str
    special_tokens: dict[str, str]
    path: str = ""

    def _render(self, messages: list[dict], add_generation_prompt: bool, **kwargs: Any) -> str:
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or "role" not in message:
                raise ValueError(f"message {i} must be a dict with a 'role', got {message!r}")
        compiled = _environment().from_string(self.template)
        context = {**self.special_tokens, **kwargs, "messages": messages,
                   "add_generation_prompt": add_generation_prompt}  # fmt: skip
        context.setdefault("tools", None)
        context.setdefault("documents", None)
        return compiled.render(**context)

    def render(self, messages: list[dict], add_generation_prompt: bool = False, **kwargs: Any) -> str:
        """The chat as the template writes it (what ``apply_chat_template(tokenize=False)``
        returns)."""
        return _spans(self._render(messages, add_generation_prompt, **kwargs), self.path)[0]

    def encode_chat(self, messages: list[dict], add_generation_prompt: bool = False, mask_from: str = "generation",
                    **kwargs: Any) -> dict:  # fmt: skip
        """``{"input_ids", "assistant_masks", "text"}`` of the rendered chat; a token is the
        assistant's (mask 1) when its characters overlap an assistant span.

        ``mask_from``: ``"generation"``, the template's ``{% generation %}`` blocks
        (transformers' rule: all zeros for a template without them); ``"prefix"``, each
        assistant message's text found by rendering the chat up to it with the generation
        prompt, then with it (trailing whitespace left out); ``"auto"``, the blocks when the
        template has them, else the prefixes (what training needs: most released templates,
        Qwen2.5's among them, have no blocks).
        """
        if mask_from not in ("generation", "prefix", "auto"):
            raise ValueError(f"mask_from must be 'generation', 'prefix' or 'auto', got {mask_from!r}")
        text, spans = _spans(self._render(messages, add_generation_prompt, **kwargs), self.path)
        if mask_from == "prefix" or (mask_from == "auto" and "{% generation" not in self.template.replace("{%-", "{%")):
            spans = self._prefix_spans(messages, text, **kwargs)
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        mask = [int(any(start < b and end > a for a, b in spans)) for start, end in enc.offsets]
        return {"input_ids": list(enc.ids), "assistant_masks": mask, "text": text}

    def _prefix_spans(self, messages: list[dict], text: str, **kwargs: Any) -> list[tuple[int, int]]:
        spans = []
        for i, message in enumerate(messages):
            if message.get("role") != "assistant":
                continue
            before = self.render(messages[:i], add_generation_prompt=True, **kwargs)
            after = self.render(messages[: i + 1], **kwargs)
            if not (after.startswith(before) and text.startswith(after)):
                raise ValueError(f"{self.path}: the chat template renders message {i}'s chat so far differently from "
                                 "the start of the whole chat, and has no {% generation %} blocks: the assistant's "
                                 "tokens cannot be found")  # fmt: skip
            spans.append((len(before), len(before) + len(after[len(before):].rstrip())))
        return [s for s in spans if s[1] > s[0]]


def load_tokenizer(path: str) -> ChatTokenizer:
    """The tokenizer in folder ``path`` (``tokenizer.json``, and ``tokenizer_config.json`` or
    ``chat_template.jinja``); errors name the file and the field."""
    file = os.path.join(path, "tokenizer.json")
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{file}: no tokenizer.json in {path}")
    try:
        tok = tokenizers.Tokenizer.from_file(file)
    except Exception as err:  # noqa: BLE001 - the library's own message, with the file named
        raise ValueError(f"{file}: not a tokenizers file ({err})") from None
    config_file = os.path.join(path, "tokenizer_config.json")
    cfg = {}
    if os.path.isfile(config_file):
        with open(config_file) as f:
            cfg = json.load(f)
    template_file = os.path.join(path, "chat_template.jinja")
    if os.path.isfile(template_file):
        with open(template_file) as f:
            template = f.read()
    else:
        template = cfg.get("chat_template")
        if isinstance(template, list):  # named templates: the default one
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default")
    if not isinstance(template, str):
        raise ValueError(f"{path}: no chat template (neither chat_template.jinja nor a string field "
                         f"'chat_template' in tokenizer_config.json)")  # fmt: skip
    special = {}
    for name in _SPECIAL:
        value = cfg.get(name)
        if isinstance(value, dict):  # an AddedToken written out
            value = value.get("content")
        if isinstance(value, str):
            special[name] = value
    return ChatTokenizer(tok, template, special, path)
