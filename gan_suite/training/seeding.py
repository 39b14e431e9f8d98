"""Deterministic per-(seed, rank, step) random streams.

The noise of every draw is a pure function of (seed, rank, training step, draw index), so a
resumed run reproduces an uninterrupted one without saving generator states, and every rank
draws different noise (``seed_everything`` alone would give all ranks the same noise).
"""

from __future__ import annotations

_MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def derive_seed(*parts: int) -> int:
    """Mix integers into one 63-bit seed (different tuples give unrelated seeds)."""
    h = 0x243F6A8885A308D3
    for p in parts:
        h = _splitmix64(h ^ (int(p) & _MASK))
    return h & ((1 << 63) - 1)
