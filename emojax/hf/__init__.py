"""Real language models: Hugging Face checkpoints in and out of the policy (issue 18).

``load(path, dtype)`` reads a local folder (``config.json`` and safetensors, one file or
shards) of the Llama or Qwen2 family into the NNX policy of :mod:`emojax.rl.policy`;
``m.logits(input_ids, attention_mask)`` runs it; ``save(m, path)`` writes it back. No
network: the user downloads the weights, this reads files.
"""

from emojax.hf.checkpoint import HFModel, from_policy, load, save

__all__ = ["HFModel", "from_policy", "load", "save"]
