"""The report: table values against an independent computation, LaTeX sanity, plots."""

import csv
import os
import re
import shutil
import statistics
import subprocess
import zlib

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from gan_suite.benchmark.definition import parse_definition
from gan_suite.benchmark.report import write_report
from gan_suite.benchmark.results import write_definition_copy, write_result
from tests.benchmark.helpers import definition_dict

VARIANTS = {"non_saturating": {}, "hinge_pack2": {"model.init_args.pack": 2}, "wgan_gp": {"model.init_args.loss": "wgan_gp"}}
# (variant, seed) -> status; the missing third seed of wgan_gp has no result at all
STATUSES = {
    ("non_saturating", 0): "finished", ("non_saturating", 1): "finished", ("non_saturating", 2): "finished",
    ("hinge_pack2", 0): "finished", ("hinge_pack2", 1): "diverged", ("hinge_pack2", 2): "finished",
    ("wgan_gp", 0): "finished", ("wgan_gp", 1): "failed",
}


def _metrics(variant, seed):
    rng = np.random.default_rng(zlib.crc32(f"{variant}/{seed}".encode()))
    return {"modes_covered": int(rng.integers(1, 9)), "high_quality": float(rng.uniform(0.5, 1.0)), "mode_kl": float(rng.uniform(0, 2)), "fid": float(rng.uniform(1, 50))}


@pytest.fixture
def bench(tmp_path):
    raw = definition_dict(variants=VARIANTS, seeds=[0, 1, 2])
    write_definition_copy(str(tmp_path), raw)
    for (variant, seed), status in STATUSES.items():
        run_id = f"{variant}__seed{seed}"
        record = {"run_id": run_id, "variant": variant, "seed": seed, "status": status, "metrics": {}, "curve": [], "logger": "none"}
        if status == "finished":
            m = _metrics(variant, seed)
            record["metrics"] = m
            record["curve"] = [[10, m["modes_covered"] - 1], [20, m["modes_covered"]]]
            png = tmp_path / "runs" / run_id / "train" / "samples" / "step_0000020.png"
            png.parent.mkdir(parents=True)
            Image.fromarray(np.full((16, 16, 3), 40 * seed, np.uint8)).save(png)
            record["samples"] = os.path.relpath(png, tmp_path)
        else:
            record["reason"] = "gan-suite: error: discriminator loss is nan" if status == "diverged" else "ValueError: boom"
        write_result(str(tmp_path), run_id, record)
    return tmp_path, parse_definition(raw, resolve_base=False)


def _independent_tied(groups, higher_is_better, alpha=0.05):
    """Variants not significantly worse than the best: Welch p-values from the t statistic and
    Welch-Satterthwaite degrees of freedom, Holm as a step-down rejection loop."""
    means = {v: np.mean(x) for v, x in groups.items() if x}
    best = (max if higher_is_better else min)(means, key=means.get)
    p = {}
    for v, x in groups.items():
        if v == best or len(x) < 2 or len(groups[best]) < 2:  # one seed: nothing to test
            continue
        a, b = np.asarray(groups[best]), np.asarray(x)
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        t = (a.mean() - b.mean()) / np.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
        p[v] = 2 * stats.t.sf(abs(t), df)
    tied = set(means) - set(p)
    for rank, v in enumerate(sorted(p, key=p.get)):
        if p[v] * (len(p) - rank) >= alpha:
            tied |= set(sorted(p, key=p.get)[rank:])
            break
    return tied


def test_table_values_are_mean_and_std_of_the_result_files(bench):
    out, definition = bench
    written = write_report(str(out), wandb=False)
    rows = {row["variant"]: row for row in csv.DictReader(open(written["table.csv"]))}
    for variant in VARIANTS:
        finished = [_metrics(variant, s) for s in range(3) if STATUSES.get((variant, s)) == "finished"]
        row = rows[variant]
        assert int(row["finished"]) == len(finished) and int(row["planned"]) == 3
        assert int(row["diverged"]) == sum(STATUSES.get((variant, s)) == "diverged" for s in range(3))
        assert int(row["failed"]) == sum(STATUSES.get((variant, s)) == "failed" for s in range(3))
        for column in definition.columns:
            values = [m[column.key] * column.scale for m in finished]
            assert float(row[f"{column.key}_mean"]) == pytest.approx(sum(values) / len(values), rel=1e-12)
            if len(values) > 1:
                assert float(row[f"{column.key}_std"]) == pytest.approx(float(np.std(values, ddof=1)), rel=1e-9)
            else:
                assert row[f"{column.key}_std"] == ""
    assert rows["PacGAN2"]["source"] == "published" and float(rows["PacGAN2"]["modes_covered_mean"]) == 7.9
    # bold: the variants Welch's test (Holm) cannot tell from the best, computed independently
    for column in definition.columns:
        groups = {v: [m[column.key] * column.scale for m in (_metrics(v, s) for s in range(3) if STATUSES.get((v, s)) == "finished")] for v in VARIANTS}
        expected = _independent_tied(groups, definition.direction(column.key))
        marked = {v for v in VARIANTS if column.key in rows[v]["tied_with_best"].split(";")}
        assert marked == (expected if len(expected) < len(VARIANTS) else set())
        for v, values in groups.items():
            if len(values) > 1:
                low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=np.std(values, ddof=1) / np.sqrt(len(values)))
                assert float(rows[v][f"{column.key}_ci_low"]) == pytest.approx(low) and float(rows[v][f"{column.key}_ci_high"]) == pytest.approx(high)
                assert int(rows[v][f"{column.key}_n"]) == len(values)
    markdown = open(written["table.md"]).read()
    assert markdown.count("**") == 2 * sum(len(rows[v]["tied_with_best"].split(";")) for v in VARIANTS if rows[v]["tied_with_best"])
    assert "Welch's t-test" in markdown and "Holm" in markdown
    hq = definition.columns[1]
    nonsat = [_metrics("non_saturating", s)["high_quality"] * hq.scale for s in range(3)]
    shown = f"{statistics.fmean(nonsat):.2f} ± {statistics.stdev(nonsat):.2f}"
    assert shown in markdown and "(n=3)" in markdown  # high-quality in percent, 2 decimals for values >= 1
    assert "| wgan_gp | ours | 1/3 | 0 | 1 |" in markdown and "7.9 ± 0.1" in markdown


def _strip_escaped(tex):
    return re.sub(r"\\[{}_%&#$]", "", tex)


def test_latex_table_is_well_formed(bench, tmp_path_factory):
    out, definition = bench
    tex = open(write_report(str(out), wandb=False, plots=False)["table.tex"]).read()
    body = _strip_escaped(tex)
    assert body.count("{") == body.count("}")
    assert tex.count("\\begin{tabular}") == 1 and tex.rstrip().endswith("\\end{tabular}")
    assert "non\\_saturating" in tex and not re.search(r"(?<!\\)_", tex.replace("\\_", ""))
    assert "high-quality \\%" in tex
    columns = 5 + len(definition.columns)
    rows = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert len(rows) == 1 + len(VARIANTS) + len(definition.published)
    assert all(_strip_escaped(line).count("&") == columns - 1 for line in rows)
    assert all(line.count("$") % 2 == 0 for line in rows)
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed: compiling the table skipped")
    doc = tmp_path_factory.mktemp("tex") / "doc.tex"
    doc.write_text("\\documentclass{article}\\begin{document}\n" + tex + "\\end{document}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=doc.parent, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]


def _pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)  # [H, W, 3]


def _count(pixels, colour, tolerance=2):
    return int((np.abs(pixels - np.asarray(colour)).max(axis=2) <= tolerance).sum())


def test_curves_show_each_variants_mean_line_and_a_band_only_over_several_seeds(bench):
    out, _ = bench
    pixels = _pixels(write_report(str(out), wandb=False)["curves.png"])
    tab10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44)]  # the variants' colours, in order
    band = [tuple(round(0.8 * 255 + 0.2 * c) for c in colour) for colour in tab10]  # alpha 0.2 on white
    finished = {v: [s for s in range(3) if STATUSES.get((v, s)) == "finished"] for v in VARIANTS}
    for i, variant in enumerate(VARIANTS):
        if len(finished[variant]) > 1:
            assert _count(pixels, band[i]) > 5000, f"no min-max band for {variant}"
        else:
            assert _count(pixels, band[i]) < 500, f"a band for {variant}, which has one finished seed"
    # right of the legend, a higher mean curve is drawn higher up (smaller row index)
    right = pixels[:, pixels.shape[1] // 2 :]
    mean_value = {v: np.mean([_metrics(v, s)["modes_covered"] for s in finished[v]]) for v in VARIANTS}
    line_row = {}
    for i, variant in enumerate(VARIANTS):
        rows, _ = np.nonzero(np.abs(right - np.asarray(tab10[i])).max(axis=2) <= 2)
        assert len(rows) > 100, f"no mean line for {variant}"
        line_row[variant] = np.median(rows)
    assert sorted(VARIANTS, key=lambda v: line_row[v]) == sorted(VARIANTS, key=lambda v: -mean_value[v])
    # in one pixel column the mean line sits inside its band where the mean lies between min and
    # max (each curve is [m - 1, m]: the fraction is the same at every step)
    column = pixels[:, 3 * pixels.shape[1] // 4]  # [H, 3]
    for i, variant in enumerate(VARIANTS):
        values = [_metrics(variant, s)["modes_covered"] for s in finished[variant]]
        if len(values) < 2:
            continue
        band_rows = np.nonzero(np.abs(column - np.asarray(band[i])).max(axis=1) <= 2)[0]
        line_rows = np.nonzero(np.abs(column - np.asarray(tab10[i])).max(axis=1) <= 2)[0]
        top, bottom = band_rows.min(), band_rows.max()
        fraction = (line_rows.mean() - top) / (bottom - top)
        expected = (max(values) - np.mean(values)) / (max(values) - min(values))
        assert abs(fraction - expected) < 0.05, f"{variant}: line at {fraction:.2f} of its band, expected {expected:.2f}"


def test_sample_pictures_show_each_finished_seed_in_seed_order(bench):
    out, _ = bench
    written = write_report(str(out), wandb=False)
    for variant in VARIANTS:
        path = written[f"samples_{variant}.png"]
        assert path == str(out / "report" / f"samples_{variant}.png")
        pixels = _pixels(path)
        # each seed's picture is one uniform grey 40 * seed (see the fixture), drawn as a large block
        greys = [g for g in range(0, 256, 40) if _count(pixels, (g, g, g), tolerance=0) > 10_000]
        finished = [s for s in range(3) if STATUSES.get((variant, s)) == "finished"]
        assert greys == [40 * s for s in finished], variant
        columns = [np.nonzero((pixels == 40 * s).all(axis=2))[1].mean() for s in finished]
        assert columns == sorted(columns), f"{variant}: pictures not in seed order"


def _runs(mask_1d):
    """Number of runs of consecutive True values in a 1-D bool array."""
    padded = np.concatenate([[False], mask_1d, [False]])
    return int((padded[1:] & ~padded[:-1]).sum())


def test_seed_picture_draws_an_interval_for_each_of_our_variants_with_several_seeds(bench):
    out, _ = bench
    pixels = _pixels(write_report(str(out), wandb=False)["seeds.png"])
    red = (np.abs(pixels - np.asarray((214, 39, 40))).max(axis=2) <= 10)  # the 95% intervals
    columns = red.any(axis=0)
    # three metric panels, each with an interval for non_saturating (3 seeds) and hinge_pack2 (2);
    # none for wgan_gp (one seed) nor for the published rows, which have no seeds
    assert _runs(columns) == 6
    assert (red.sum(axis=0)[columns] >= 5).all()  # lines with a length, not points
    dots = _count(pixels, (76, 146, 195), tolerance=12)  # tab:blue at alpha 0.8 on white
    assert dots > 50
