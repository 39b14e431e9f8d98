"""Density and coverage (Naeem et al. 2020), k-NN balls around the real samples, k = 5.

With real X [N, D], fake Y [M, D] and r_i = NND_k(X_i) the distance from X_i to its k-th
nearest other real sample:
    density  = 1/(k M) sum_j sum_i 1[ ||Y_j - X_i|| <= r_i ]
    coverage = 1/N     sum_i 1[ exists j: ||Y_j - X_i|| <= r_i ]
Balls are closed (<=), like precision/recall here and in torch-fidelity; the authors' `prdc`
package uses strict < (the two differ only for samples exactly on a ball's boundary).
Density is unbounded above (about 1 when fake matches real); coverage lies in [0, 1].
torch-fidelity has no density/coverage, hence the hand-written version on top of knn.py.
"""

from __future__ import annotations

import torch

from gan_suite.evaluation.metrics._validate import check_features
from gan_suite.evaluation.metrics.knn import count_within_radii, knn, kth_nn_radius
from gan_suite.evaluation.metrics.registry import KNN_NO_BOOTSTRAP, MetricInputs, Output, register_metric


def density_coverage(
    real_feats: torch.Tensor, fake_feats: torch.Tensor, k: int = 5, chunk_bytes: int | None = None
) -> dict[str, float]:
    """Density and coverage of fake features [M, D] with respect to real features [N, D] (N > k).

    Returns {'density': float >= 0, 'coverage': float in [0, 1]}.
    """
    check_features(real_feats, min_rows=k + 1)
    check_features(real_feats, fake_feats, min_rows=1)
    radii = kth_nn_radius(real_feats, k, chunk_bytes)  # [N]
    counts = count_within_radii(fake_feats, real_feats, radii, chunk_bytes)  # [M]
    density = counts.double().sum().item() / (k * fake_feats.shape[0])
    nearest_fake = knn(real_feats, fake_feats, 1, chunk_bytes=chunk_bytes)[0][:, 0]  # [N]
    coverage = (nearest_fake <= radii).double().mean().item()
    return {"density": density, "coverage": coverage}


@register_metric(
    "dc",
    outputs=[Output("density", True, "density"), Output("coverage", True, "coverage")],
    needs={"real"},
    description="density and coverage (k = 5)",
    bootstrap=KNN_NO_BOOTSTRAP,
)
def _dc_metric(inputs: MetricInputs) -> dict:
    return density_coverage(inputs.real.features, inputs.fake.features, k=5)
