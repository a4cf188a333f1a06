"""What machine a result came from: TensorFlow's CPU kernels (oneDNN) differ by instruction set.

The same seed gives bit-identical models on one kind of machine, but an AVX-512 Xeon and an
AVX2-only EPYC train slightly different ones; every training records where it ran.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

#: Environment variables that change which oneDNN kernels TensorFlow runs.
ONEDNN_VARIABLES = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def describe_machine() -> dict[str, Any]:
    """The CPU model, its vector instruction sets, core count, oneDNN settings and versions."""
    model, flags = _cpuinfo()
    import tensorflow as tf

    return {
        "cpu": model or platform.processor() or platform.machine(),
        "avx512": "avx512f" in flags,
        "avx2": "avx2" in flags,
        "cores": os.cpu_count(),
        "onednn": {name: os.environ.get(name) for name in ONEDNN_VARIABLES},
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
    }


def _cpuinfo() -> tuple[str, set[str]]:
    # Linux's /proc/cpuinfo; elsewhere the model comes from the platform module and the
    # instruction sets stay unknown.
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return "", set()
    model, flags = "", set[str]()
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, flags
