"""Real language models: Hugging Face checkpoints in and out of the policy (issue 18).

``load(path, dtype)`` reads a local folder (``config.json`` and safetensors, one file or
shards) of the Llama or Qwen2 family into the NNX policy of :mod:`emojax.rl.policy`;
``m.logits(input_ids, attention_mask)`` runs it; ``save(m, path)`` writes it back;
``load_tokenizer(path)`` reads its tokenizer and chat template (:mod:`.chat`). No network:
the user downloads the weights, this reads files.
"""

from emojax.hf.chat import ChatTokenizer, load_tokenizer
from emojax.hf.checkpoint import HFModel, from_policy, load, save

__all__ = ["ChatTokenizer", "HFModel", "from_policy", "load", "load_tokenizer", "save"]
