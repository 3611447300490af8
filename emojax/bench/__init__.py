"""Benchmarks: throughput of emojax's training steps on this machine, against the matmul peak.

:mod:`emojax.bench.estimator` measures the estimators' training steps (launcher:
``python -m experiments.bench estimator --out FILE.json``); :mod:`emojax.bench.grpo` one
GRPO step against TRL's ``GRPOTrainer`` (:mod:`emojax.bench.trl_peer`;
``python -m experiments.bench grpo --out FILE.json``).
"""
