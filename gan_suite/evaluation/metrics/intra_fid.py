"""Intra-class FID (Miyato & Koyama 2018) and the classifier's agreement with the conditioning
label, for class-conditional generators.

Generated sample i was asked for class ``fake.conditioning[i]``; real images are grouped by
``real.labels`` (the shipped classifier's labels where it labels the data, as for every
labelled metric here). Per class c with at least 2 images on both sides,
FID_c = FID(real of class c, generated for class c), with :func:`fid_from_features`;
intra-class FID is their mean over those classes.
"""

from __future__ import annotations

import warnings

import torch

from gan_suite.evaluation.metrics.fid import fid_from_features
from gan_suite.evaluation.metrics.registry import MetricInputs, Output, register_metric


def intra_class_fid(
    real_feats: torch.Tensor, real_labels: torch.Tensor, fake_feats: torch.Tensor, fake_labels: torch.Tensor
) -> dict:
    """Per-class FID between real [N, D] with classes [N] and generated [M, D] with classes [M].

    Returns {'intra_fid': mean over the classes compared (nan if none), 'intra_fid_per_class':
    {class: FID}, 'intra_fid_classes': number of classes compared, 'intra_fid_min_count': the
    smallest per-class count used (FID is biased upward at small counts)}.
    """
    per_class, counts = {}, []
    with warnings.catch_warnings():  # rank-deficient covariances at small per-class counts: noted once by the caller
        warnings.simplefilter("ignore")
        for c in torch.unique(fake_labels).tolist():
            real_c, fake_c = real_feats[real_labels == c], fake_feats[fake_labels == c]
            if len(real_c) >= 2 and len(fake_c) >= 2:
                per_class[int(c)] = fid_from_features(real_c, fake_c)
                counts.append(min(len(real_c), len(fake_c)))
    mean = sum(per_class.values()) / len(per_class) if per_class else float("nan")
    return {
        "intra_fid": mean,
        "intra_fid_per_class": per_class,
        "intra_fid_classes": len(per_class),
        "intra_fid_min_count": min(counts) if counts else 0,
    }


@register_metric(
    "intra_fid",
    outputs=[
        Output("intra_fid", False, "intra-class FID"),
        Output("intra_fid_per_class", None, "FID per class"),
        Output("intra_fid_classes", None, "classes compared"),
        Output("intra_fid_min_count", None, "min per-class N"),
        Output("class_agreement", True, "classifier = label"),
    ],
    needs={"real", "labels"},
    default_when=lambda ctx: bool(ctx.options.get("conditional")) and ctx.num_classes is not None,
    description="class-conditional generators: FID per class averaged (Miyato & Koyama 2018) and the "
    "share of samples the classifier assigns to their conditioning label",
)
def _intra_fid_metric(inputs: MetricInputs) -> dict:
    fake, real = inputs.fake, inputs.real
    if getattr(fake, "conditioning", None) is None or real.labels is None:
        inputs.note("intra_fid skipped: needs a class-conditional generator and labelled real data")
        return {}
    out = intra_class_fid(real.features, real.labels, fake.features, fake.conditioning)
    if out["intra_fid_min_count"] < fake.features.shape[1]:
        inputs.note(
            f"intra-class FID with as few as {out['intra_fid_min_count']} images of a class for "
            f"{fake.features.shape[1]}-d features: covariances are rank-deficient, expect biased values"
        )
    if fake.labels is not None:
        out["class_agreement"] = float((fake.labels == fake.conditioning).double().mean())
    return out
