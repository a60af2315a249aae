"""Facts about the torch runtime, importable without loading any model."""

from __future__ import annotations

import importlib.util
import os
import sys


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def gpu_name() -> str | None:
    if not cuda_available():
        return None
    import torch

    return str(torch.cuda.get_device_name(torch.cuda.current_device()))


def nvidia_device_present() -> bool:
    """Whether the kernel exposes an NVIDIA GPU, without importing torch (cheap, for start-up decisions)."""
    from pathlib import Path

    return Path("/dev/nvidiactl").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


def flash_attention_importable() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    if requested.startswith("cuda") and not cuda_available():
        raise RuntimeError(f"DEVICE={requested} but torch sees no CUDA device")
    return requested


def prefer_passive_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``), unless set.

    Every thread that runs torch ops gets its own OpenMP team, and by default a team spins for a
    while after each parallel region. The engine runs torch on the decode thread and on the
    preprocessing threads at once, and their spinning teams starved each other: on a 2-core VM a
    50-token page took 1 to 4 s instead of 0.5 s. Read once when the OpenMP runtime starts, so it
    only takes effect before torch is imported.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

