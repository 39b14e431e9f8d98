"""Significance marks of the report: Welch + Holm on synthetic seeds, ties, NaN counts, axes."""

import csv
import math

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from gan_suite.benchmark.plots import fit_value_axis
from gan_suite.benchmark.report import write_report
from gan_suite.benchmark.results import write_definition_copy, write_result
from gan_suite.benchmark.significance import holm_adjust, mean_interval, tied_with_best
from tests.benchmark.helpers import definition_dict

REPETITIONS = 200


def test_same_distribution_is_tied_in_at_least_90_percent_of_repetitions():
    rng = np.random.default_rng(1)
    tied = 0
    for _ in range(REPETITIONS):
        groups = {"a": list(rng.normal(5.0, 1.0, 10)), "b": list(rng.normal(5.0, 1.0, 10))}
        tied += tied_with_best(groups, higher_is_better=True).tied == {"a", "b"}
    assert tied / REPETITIONS >= 0.90  # 5% test: about 95% expected


def test_three_std_difference_with_10_seeds_is_marked_different_in_at_least_90_percent():
    rng = np.random.default_rng(2)
    different = 0
    for _ in range(REPETITIONS):
        groups = {"good": list(rng.normal(3.0, 1.0, 10)), "bad": list(rng.normal(0.0, 1.0, 10))}
        different += tied_with_best(groups, higher_is_better=True).tied == {"good"}
    assert different / REPETITIONS >= 0.90


def test_lower_is_better_and_three_variants_use_holm():
    groups = {"a": [1.0, 1.1, 0.9, 1.0], "b": [1.05, 0.95, 1.1, 1.0], "c": [5.0, 5.2, 4.9, 5.1]}
    comparison = tied_with_best(groups, higher_is_better=False)
    assert comparison.best == "a" and comparison.tied == {"a", "b"}
    raw = {v: stats.ttest_ind(groups["a"], groups[v], equal_var=False).pvalue for v in ("b", "c")}
    small, large = sorted(raw.values())
    assert sorted(comparison.p_adjusted.values()) == pytest.approx([2 * small, max(2 * small, large)])


def test_holm_adjustment_known_values():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def test_mean_interval_is_the_t_interval():
    values = [1.0, 2.0, 4.0, 7.0]
    half = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2.0
    assert mean_interval(values) == pytest.approx((3.5 - half, 3.5 + half))
    assert mean_interval([1.0]) is None and mean_interval([2.0, 2.0]) == (2.0, 2.0)


def _bench(tmp_path, metrics_by_run):
    variants = sorted({run.split("__")[0] for run in metrics_by_run})
    seeds = sorted({int(run.split("seed")[1]) for run in metrics_by_run})
    write_definition_copy(str(tmp_path), definition_dict(variants={v: {} for v in variants}, seeds=seeds, published={}))
    for run_id, metrics in metrics_by_run.items():
        write_result(str(tmp_path), run_id, {"run_id": run_id, "status": "finished", "metrics": metrics, "curve": [[10, metrics["modes_covered"]], [20, metrics["modes_covered"]]], "logger": "none"})
    return write_report(str(tmp_path), wandb=False)


def test_report_marks_every_variant_tied_with_the_best_in_every_format(tmp_path):
    hq = {"good": [0.90, 0.91, 0.89, 0.90], "close": [0.905, 0.895, 0.91, 0.90], "bad": [0.50, 0.52, 0.49, 0.51]}
    runs = {f"{v}__seed{s}": {"modes_covered": 8, "high_quality": hq[v][s], "mode_kl": 0.1} for v in hq for s in range(4)}
    written = _bench(tmp_path, runs)
    rows = {row["variant"]: row for row in csv.DictReader(open(written["table.csv"]))}
    assert {v for v in rows if "high_quality" in rows[v]["tied_with_best"]} == {"good", "close"}
    # equal values everywhere (modes 8/8, KL 0.1): ties are ties, nobody is bold
    assert not any("modes_covered" in rows[v]["tied_with_best"] or "mode_kl" in rows[v]["tied_with_best"] for v in rows)
    markdown = open(written["table.md"]).read()
    assert markdown.count("**") == 4 and "No variant differs significantly in: modes /8, reverse KL" in markdown
    tex = open(written["table.tex"]).read()
    assert tex.count("\\mathbf{") == 2
    assert rows["close"]["high_quality_p_vs_best"] == ""  # the best (mean 90.25) is not compared with itself
    assert float(rows["bad"]["high_quality_p_vs_best"]) < 0.05 <= float(rows["good"]["high_quality_p_vs_best"])


def test_nan_seeds_are_counted_and_shown(tmp_path):
    runs = {
        "gan__seed0": {"modes_covered": 3, "high_quality": 0.5, "mode_kl": 0.4},
        "gan__seed1": {"modes_covered": 4, "high_quality": 0.6, "mode_kl": "nan"},
        "pacgan2__seed0": {"modes_covered": 5, "high_quality": 0.7, "mode_kl": 0.2},
        "pacgan2__seed1": {"modes_covered": 6, "high_quality": 0.8, "mode_kl": 0.3},
    }
    written = _bench(tmp_path, runs)
    markdown = open(written["table.md"]).read()
    assert "0.400 (n=1 of 2; 1 NaN)" in markdown
    rows = {row["variant"]: row for row in csv.DictReader(open(written["table.csv"]))}
    assert rows["gan"]["mode_kl_n"] == "1" and rows["gan"]["mode_kl_nan"] == "1"
    assert float(rows["gan"]["mode_kl_mean"]) == 0.4


def test_axes_fit_counts_and_constants():
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 0])
    fit_value_axis(ax, [0, 0])
    assert ax.get_ylim() == (-1.0, 1.0)
    fig.canvas.draw()
    assert all(float(t) == round(float(t)) for t in ax.get_yticks())
    ax2 = fig.add_subplot(2, 1, 2)
    ax2.plot([0, 1, 2], [0.2, 0.25, 0.3])
    fit_value_axis(ax2, [0.2, 0.25, 0.3])
    assert not all(math.isclose(t, round(t)) for t in ax2.get_yticks())
