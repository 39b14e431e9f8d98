"""Metric arithmetic over features: pure functions of tensors, no Lightning, no networks.

features -> statistics -> value, one concern per file:
    registry.py          the metric registry: names, needs, defaults, directions, verdicts
    knn.py               chunked exact k-NN searches shared by the k-NN based metrics
    fid.py               FeatureMoments (streamed mean/covariance) and FID
    fd_infinity.py       FD-infinity: FID extrapolated in 1/N (Chong & Forsyth 2020)
    inception_score.py   Inception Score from logits (torch-fidelity's arithmetic)
    kid.py               Kernel Inception Distance (torch-fidelity's arithmetic)
    precision_recall.py  improved precision/recall (Kynkaanniemi et al. 2019)
    density_coverage.py  density/coverage (Naeem et al. 2020)
    copy_detection.py    per-sample copy test, shift-tolerant, calibrated on held-out data
    memorisation.py      data-copying C_T (Meehan et al. 2020), authenticity (Alaa et al. 2022)
    modes.py             mode coverage and KL on mixtures and labelled data, per-mode tests
    gallery.py           the copy gallery picture
    intra_fid.py         intra-class FID and label agreement of class-conditional generators
    parzen.py            Gaussian Parzen-window log-likelihood (Goodfellow et al. 2014), opt-in

Each metric module registers its metric with ``@register_metric``: importing this package
registers them all, in the order below (the order of tables and of ``--metrics`` help).
"""

from gan_suite.evaluation.metrics.registry import (  # noqa: I001  (registration order matters)
    EvaluationContext,
    MetricInputs,
    Output,
    check_metric_names,
    compute_metrics,
    default_metrics,
    direction,
    get_metric,
    metric_names,
    register_metric,
)
from gan_suite.evaluation.metrics.fid import FeatureMoments, fid_from_features, fid_from_moments
from gan_suite.evaluation.metrics.fd_infinity import fd_infinity
from gan_suite.evaluation.metrics.inception_score import inception_score
from gan_suite.evaluation.metrics.kid import kernel_inception_distance
from gan_suite.evaluation.metrics.precision_recall import precision_recall
from gan_suite.evaluation.metrics.density_coverage import density_coverage
from gan_suite.evaluation.metrics.memorisation import data_copying_ct, memorisation_report, unauthentic_share
from gan_suite.evaluation.metrics.modes import (
    grid25_modes,
    label_mode_metrics,
    mixture_mode_metrics,
    mode_coverage_test,
    ring8_modes,
)
from gan_suite.evaluation.metrics.copy_detection import copy_scores, copy_space, copy_test, tolerant_nn_distance
from gan_suite.evaluation.metrics.gallery import copy_gallery
from gan_suite.evaluation.metrics.intra_fid import intra_class_fid
from gan_suite.evaluation.metrics.parzen import parzen_log_density, parzen_log_likelihood
from gan_suite.evaluation.metrics.knn import (
    any_within_radii,
    count_within_radii,
    knn,
    kth_nn_radius,
    pairwise_sq_dists,
)

__all__ = [
    "EvaluationContext",
    "FeatureMoments",
    "MetricInputs",
    "Output",
    "any_within_radii",
    "check_metric_names",
    "compute_metrics",
    "copy_gallery",
    "copy_scores",
    "copy_space",
    "copy_test",
    "count_within_radii",
    "data_copying_ct",
    "default_metrics",
    "density_coverage",
    "direction",
    "fd_infinity",
    "fid_from_features",
    "fid_from_moments",
    "get_metric",
    "grid25_modes",
    "inception_score",
    "intra_class_fid",
    "kernel_inception_distance",
    "knn",
    "kth_nn_radius",
    "label_mode_metrics",
    "memorisation_report",
    "metric_names",
    "mixture_mode_metrics",
    "mode_coverage_test",
    "pairwise_sq_dists",
    "parzen_log_density",
    "parzen_log_likelihood",
    "precision_recall",
    "register_metric",
    "ring8_modes",
    "tolerant_nn_distance",
    "unauthentic_share",
]
