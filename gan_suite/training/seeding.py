"""The training side's name for :func:`gan_suite.seeding.derive_seed` (defined there, below the
data package, which seeds its sampling order with it)."""

from gan_suite.seeding import derive_seed

__all__ = ["derive_seed"]
