"""The stability study, part one: preference labels versus emotion scores, as signals and as
reward models (``python -m experiments.stability``; predictions in
``docs/predictions/stability.md``)."""
