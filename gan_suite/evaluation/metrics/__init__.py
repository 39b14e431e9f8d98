"""Metric arithmetic over features: pure functions of tensors, no Lightning, no networks.

features -> statistics -> value, one concern per file:
    knn.py               chunked exact k-NN searches shared by the k-NN based metrics
    fid.py               FeatureMoments (streamed mean/covariance) and FID
    inception_score.py   Inception Score from logits (torch-fidelity's arithmetic)
    kid.py               Kernel Inception Distance (torch-fidelity's arithmetic)
    precision_recall.py  improved precision/recall (Kynkaanniemi et al. 2019)
    density_coverage.py  density/coverage (Naeem et al. 2020)
    memorisation.py      data-copying C_T (Meehan et al. 2020), authenticity (Alaa et al. 2022)
    modes.py             mode coverage and KL on mixtures and labelled data
    nn_grid.py           nearest-training-neighbour image grid
"""

from gan_suite.evaluation.metrics.density_coverage import density_coverage
from gan_suite.evaluation.metrics.fid import FeatureMoments, fid_from_features, fid_from_moments
from gan_suite.evaluation.metrics.inception_score import inception_score
from gan_suite.evaluation.metrics.kid import kernel_inception_distance
from gan_suite.evaluation.metrics.knn import (
    any_within_radii,
    count_within_radii,
    knn,
    kth_nn_radius,
    pairwise_sq_dists,
)
from gan_suite.evaluation.metrics.memorisation import (
    data_copying_ct,
    memorisation_report,
    unauthentic_share,
)
from gan_suite.evaluation.metrics.modes import (
    grid25_modes,
    label_mode_metrics,
    mixture_mode_metrics,
    mode_collapse_flagged,
    ring8_modes,
)
from gan_suite.evaluation.metrics.nn_grid import nearest_neighbour_grid
from gan_suite.evaluation.metrics.precision_recall import precision_recall

__all__ = [
    "FeatureMoments",
    "any_within_radii",
    "count_within_radii",
    "data_copying_ct",
    "density_coverage",
    "fid_from_features",
    "fid_from_moments",
    "grid25_modes",
    "inception_score",
    "kernel_inception_distance",
    "knn",
    "kth_nn_radius",
    "label_mode_metrics",
    "memorisation_report",
    "mixture_mode_metrics",
    "mode_collapse_flagged",
    "nearest_neighbour_grid",
    "pairwise_sq_dists",
    "precision_recall",
    "ring8_modes",
    "unauthentic_share",
]
