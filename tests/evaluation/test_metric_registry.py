"""The metric registry: a metric declared in one place reaches every reader."""

import pytest
import torch

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics import registry
from gan_suite.evaluation.metrics.registry import (
    EvaluationContext,
    MetricInputs,
    Output,
    check_metric_names,
    compute_metrics,
    default_metrics,
    direction,
    register_metric,
)
from gan_suite.evaluation.streaming import FeatureSet

BUILT_IN = ["fid", "fd_inf", "is", "kid", "pr", "dc", "memorisation", "modes", "intra_fid", "parzen"]
ON_BY_DEFAULT = BUILT_IN[:-2]  # intra_fid: conditional generators only; parzen: opt-in


@pytest.fixture
def mean_norm():
    """A new metric, declared the way a contributor would: one decorated function."""

    @register_metric(
        "mean_norm",
        outputs=[Output("mean_norm", False, "mean |f|")],
        needs={"real"},
        default_when=lambda ctx: ctx.extractor == "raw2d",
        description="mean feature norm of the generated samples",
    )
    def compute(inputs):
        return {"mean_norm": float(inputs.fake.features.norm(dim=1).mean())}

    yield compute
    registry._REGISTRY.pop("mean_norm")


def test_built_in_metrics_and_their_declared_directions():
    assert registry.metric_names() == BUILT_IN
    assert direction("fid") is False and direction("precision") is True and direction("copy_p_value") is None
    assert direction("gan/kid_mean") is False  # protocol-prefixed result keys
    assert direction("not_a_metric") is None
    assert default_metrics(EvaluationContext(extractor="raw2d", mixture="ring8")) == ["fid", "fd_inf", "pr", "dc", "modes"]
    digits = EvaluationContext(extractor="mnist_classifier", has_logits=True, data_name="mnist_bundled", num_classes=10)
    assert default_metrics(digits) == ON_BY_DEFAULT
    assert default_metrics(EvaluationContext(extractor="inception", has_logits=True)) == ON_BY_DEFAULT[:-1]


def test_a_new_metric_reaches_the_evaluation_the_callback_and_the_report(mean_norm):
    ctx = EvaluationContext(extractor="raw2d")
    assert "mean_norm" in default_metrics(ctx)
    fake = FeatureSet(torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
    out = compute_metrics(["mean_norm", "fid"], MetricInputs(fake=fake, real=fake, context=ctx, note=lambda m: None))
    assert out["mean_norm"] == pytest.approx(3.0) and out["fid"] == pytest.approx(0.0, abs=1e-6)
    from gan_suite.benchmark.definition import BenchmarkDefinition
    from gan_suite.evaluation.callback import EvaluationCallback

    assert EvaluationCallback(metrics=["mean_norm"], best_metric="mean_norm").best_metric == "mean_norm"
    assert BenchmarkDefinition.direction(_NoColumns(), "mean_norm") is False
    from gan_suite.evaluation.evaluate_cli import metrics_listing

    assert any(line.startswith("mean_norm ") for line in metrics_listing().splitlines())


class _NoColumns:
    columns, main_metric, higher_is_better = (), "", None


def test_registration_and_name_errors(mean_norm):
    with pytest.raises(ValueError, match="registered twice"):
        register_metric("mean_norm", outputs=[], description="")(lambda inputs: {})
    with pytest.raises(ValueError, match="unknown needs"):
        register_metric("other", outputs=[], description="", needs={"images"})
    with pytest.raises(ConfigError, match=r"unknown metric\(s\) fdi; choose from: fid, fd_inf, is, kid"):
        check_metric_names(["fid", "fdi"])
    with pytest.raises(ConfigError, match="is not a score"):
        from gan_suite.evaluation.callback import EvaluationCallback

        EvaluationCallback(best_metric="copy_p_value")


def test_a_metric_whose_split_is_missing_says_so_and_returns_nothing():
    notes = []
    fake = FeatureSet(torch.randn(50, 4), labels=torch.zeros(50, dtype=torch.long))
    out = compute_metrics(["memorisation"], MetricInputs(fake=fake, real=fake, note=notes.append))
    assert out == {} and notes == ["memorisation skipped: needs the training split (the checkpoint's data module)"]
