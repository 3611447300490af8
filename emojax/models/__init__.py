"""Estimators: architectures chosen by name (:mod:`.registry`) and output heads (:mod:`.heads`)."""

from emojax.models.heads import HEADS, Head, get_head
from emojax.models.registry import architectures, get_architecture, register_architecture

__all__ = ["HEADS", "Head", "architectures", "get_architecture", "get_head", "register_architecture"]
