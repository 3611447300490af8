"""A prepared GPU check of the GRPO engine: one command that fits one 10-minute device call.

    python -m experiments.gpu_check --out gpu_check.json          # on a machine with a GPU
    python -m experiments.gpu_check --out /tmp/gpu.json --dry-run # tiny sizes, any device (what the test runs)
    python -m experiments.gpu_check --out F.json --only configs.8x512,seeds_scaling

Parts: the matmul peak, the GRPO benchmark step at four sizes, seeds scaling, Qwen2.5-0.5B- and
1.5B-shaped policies in bfloat16, conversations; see :mod:`emojax.bench.gpu_check`. The JSON
is written after every part, so a killed run keeps what it measured. Never a CI requirement: the test suite runs ``--dry-run`` only.
"""

from __future__ import annotations

import sys

from emojax.bench import cli


def main(argv=None) -> dict:
    args = cli.gpu_check_parser(__doc__).parse_args(argv)
    from emojax.bench import gpu_check  # after parsing: --help needs no JAX

    return gpu_check.main(args)


if __name__ == "__main__":
    main(sys.argv[1:])
