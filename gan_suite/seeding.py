"""Seeds of independent random streams, derived from integers: :func:`derive_seed`.

Every seeded stream of the suite takes its seed from here, so that different purposes never
share a stream: the training noise (a pure function of seed, rank, training step and draw index,
so a resumed run reproduces an uninterrupted one without saving generator states, and every rank
draws different noise, which ``seed_everything`` alone would not give), the data order of each
data epoch, the synthetic data sets and the evaluation noise.
"""

from __future__ import annotations

_MASK = (1 << 64) - 1

# Purpose tags of the streams outside the training step, the second part of ``derive_seed(seed,
# TAG, i)``: at least 2**48, beyond any training step count, so such a tuple is never one of the
# training noise's (seed, step, draw).
#: the data order of data epoch i (:class:`~gan_suite.data.sampler.StepIndexedSampler`)
DATA_ORDER = (1 << 48) + 1
#: a synthetic data set's split i (0 train, 1 held out): Toy2D's points, Stacked MNIST's triples
SYNTHETIC_DATA = (1 << 48) + 2
#: block i of the evaluation noise (:func:`~gan_suite.evaluation.streaming.evaluation_noise`)
EVALUATION_NOISE = (1 << 48) + 3


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
