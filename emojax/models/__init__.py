"""Estimators: architectures chosen by name (:mod:`.registry`) and output heads (:mod:`.heads`).

Importing the package registers the built-in architectures (each module registers itself).
"""

from emojax.models import bag_of_words, embedding_heads, text_transformer  # noqa: F401  (register)
from emojax.models.heads import HEADS, Head, get_head
from emojax.models.registry import architectures, get_architecture, register_architecture

__all__ = ["HEADS", "Head", "architectures", "get_architecture", "get_head", "register_architecture"]
