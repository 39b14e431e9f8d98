"""Improved precision and recall (Kynkaanniemi et al. 2019), k-NN balls with k = 3.

precision = share of fake samples inside at least one real ball B(x_i, NND_k(x_i));
recall    = share of real samples inside at least one fake ball B(y_j, NND_k(y_j)).
Balls are closed (<=), as in torch-fidelity's ``prc_features_to_metric`` (whose input1 is the
fake set), and the F-score uses its formula 2PR / max(1e-5, P + R).

Hand-written on top of knn.py rather than calling torch-fidelity: its PRC code materialises the
full [N_fake, N_real] distance matrix on the CPU (or one [batch, N] row block per batch with
``save_cpu_ram``); here every search is chunked on the features' device. The numbers agree with
torch-fidelity's on the same features (tests/evaluation/test_metrics_vs_torch_fidelity.py).
"""

from __future__ import annotations

import torch

from gan_suite.evaluation.metrics._validate import check_features
from gan_suite.evaluation.metrics.knn import any_within_radii, kth_nn_radius
from gan_suite.evaluation.metrics.registry import KNN_NO_BOOTSTRAP, MetricInputs, Output, register_metric


def precision_recall(
    real_feats: torch.Tensor, fake_feats: torch.Tensor, k: int = 3, chunk_bytes: int | None = None
) -> dict[str, float]:
    """Improved precision/recall of fake features [M, D] against real features [N, D].

    Both sets need more than k rows. Returns {'precision', 'recall', 'f_score'} as floats in [0, 1].
    """
    check_features(real_feats, fake_feats, min_rows=k + 1)
    real_radii = kth_nn_radius(real_feats, k, chunk_bytes)  # [N]
    fake_radii = kth_nn_radius(fake_feats, k, chunk_bytes)  # [M]
    precision = any_within_radii(fake_feats, real_feats, real_radii, chunk_bytes).double().mean().item()
    recall = any_within_radii(real_feats, fake_feats, fake_radii, chunk_bytes).double().mean().item()
    f_score = 2 * precision * recall / max(1e-5, precision + recall)
    return {"precision": precision, "recall": recall, "f_score": f_score}


@register_metric(
    "pr",
    outputs=[Output("precision", True, "precision"), Output("recall", True, "recall")],
    needs={"real"},
    description="improved precision and recall (k = 3)",
    bootstrap=KNN_NO_BOOTSTRAP,
)
def _pr_metric(inputs: MetricInputs) -> dict:
    result = precision_recall(inputs.real.features, inputs.fake.features, k=3)
    return {"precision": result["precision"], "recall": result["recall"]}
