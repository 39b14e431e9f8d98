"""``gan-suite report DIR``: the benchmark table (Markdown, CSV, LaTeX) and its figures.

One row per variant: mean +- sample standard deviation (ddof = 1) over the finished seeds of each
metric, finished / planned runs, diverged and failed counts; the best mean of each column (by the
metric's direction) in bold; then the published rows of the definition, as quoted. Diverged and
failed runs contribute no values. Everything is read from ``DIR/benchmark.yaml`` and
``DIR/runs/*/result.json``, so shards merge by writing into the same DIR.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import statistics
from dataclasses import dataclass, field
from typing import Optional

from gan_suite.benchmark import results as R
from gan_suite.benchmark.definition import BenchmarkDefinition, Column, parse_definition


@dataclass
class Cell:
    """Statistics of one metric of one variant (values already scaled for display)."""

    values: list
    text: Optional[str] = None  # published cells: the quoted text

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> Optional[float]:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> Optional[float]:
        """Sample standard deviation (ddof = 1); None with fewer than two values."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None


@dataclass
class Row:
    label: str
    source: str  # 'ours' | 'published'
    cells: dict  # column key -> Cell
    finished: int = 0
    planned: int = 0
    diverged: int = 0
    failed: int = 0
    best: set = field(default_factory=set)


def load_report_inputs(out_dir: str) -> tuple[BenchmarkDefinition, dict]:
    """The definition copied into DIR and every run's result."""
    definition = parse_definition(R.read_definition_copy(out_dir), source=os.path.join(out_dir, R.DEFINITION_FILE), resolve_base=False)
    return definition, R.read_all_results(out_dir)


def table_columns(definition: BenchmarkDefinition, results: dict) -> list:
    """The definition's columns; without explicit ones: the main metric, then every other numeric metric."""
    if definition.raw.get("columns"):
        return list(definition.columns)
    keys = [definition.main_metric]
    for result in results.values():
        for key, value in (result.get("metrics") or {}).items():
            if key not in keys and _is_number(value):
                keys.append(key)
    main = definition.columns[0]
    return [main] + [Column(k, k, 1.0, definition.direction(k)) for k in keys[1:]]


def build_rows(definition: BenchmarkDefinition, results: dict) -> tuple[list, list]:
    """(columns, rows): our rows (definition order) then the published ones."""
    columns = table_columns(definition, results)
    planned: dict = {}
    for run in definition.runs():
        planned.setdefault(run.variant, []).append(run.run_id)
    rows = []
    for variant, run_ids in planned.items():
        row = Row(variant, "ours", {c.key: Cell([]) for c in columns}, planned=len(run_ids))
        for run_id in run_ids:
            result = results.get(run_id)
            if result is None:
                continue
            status = result["status"]
            if status == R.DIVERGED:
                row.diverged += 1
            elif status == R.FAILED:
                row.failed += 1
            elif status == R.FINISHED:
                row.finished += 1
                for column in columns:
                    value = (result.get("metrics") or {}).get(column.key)
                    if _is_number(value) and math.isfinite(float(value)):
                        row.cells[column.key].values.append(float(value) * column.scale)
        rows.append(row)
    for column in columns:
        direction = definition.direction(column.key) if column.higher_is_better is None else column.higher_is_better
        means = [(row.cells[column.key].mean, row) for row in rows if row.cells[column.key].mean is not None]
        if direction is None or not means:
            continue
        best = (max if direction else min)(m for m, _ in means)
        for mean, row in means:
            if _format_number(mean, best) == _format_number(best, best):
                row.best.add(column.key)
    for label, quoted in definition.published.items():
        rows.append(Row(label, "published", {c.key: Cell([], quoted.get(c.key)) for c in columns}))
    return columns, rows


# ---------------------------------------------------------------------- number formatting
def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _decimals(reference: float) -> int:
    magnitude = abs(reference)
    return 1 if magnitude >= 100 else 2 if magnitude >= 1 else 3


def _format_number(value: float, reference: Optional[float] = None) -> str:
    return f"{value:.{_decimals(value if reference is None else reference)}f}"


def cell_parts(cell: Cell) -> Optional[tuple[str, Optional[str]]]:
    """(mean text, std text or None) of one of our cells, or None when it has no value."""
    if cell.mean is None:
        return None
    mean = _format_number(cell.mean)
    return mean, (_format_number(cell.std, cell.mean) if cell.n > 1 else None)


def parse_quoted(text: Optional[str]) -> tuple:
    """A published value '6.3 +- 0.5' -> (6.3, 0.5); '7.9' -> (7.9, None); other text -> (text, None)."""
    if text is None:
        return None, None
    match = re.fullmatch(r"\s*(-?[\d.]+)\s*(?:\+-|±|\+/-)\s*([\d.]+)\s*", text)
    if match:
        return float(match.group(1)), float(match.group(2))
    try:
        return float(text), None
    except ValueError:
        return text, None


# ---------------------------------------------------------------------- renderers
def render_markdown(definition: BenchmarkDefinition, columns: list, rows: list) -> str:
    header = ["variant", "source", "runs", "diverged", "failed"] + [c.label for c in columns]
    lines = [
        f"# {definition.name}",
        "",
        _protocol_note(definition),
        "",
        "| " + " | ".join(_md_escape(h) for h in header) + " |",
        "| " + " | ".join(["---", "---"] + ["---:"] * (len(header) - 2)) + " |",
    ]
    for row in rows:
        if row.source == "ours":
            cells = []
            for column in columns:
                parts = cell_parts(row.cells[column.key])
                text = "-" if parts is None else (parts[0] if parts[1] is None else f"{parts[0]} ± {parts[1]}")
                text = f"**{text}**" if column.key in row.best and parts is not None else text
                cells.append(text + _fewer_note(row, row.cells[column.key]))
            counts = [f"{row.finished}/{row.planned}", str(row.diverged), str(row.failed)]
        else:
            cells = [(_md_escape(row.cells[c.key].text.replace("+-", "±")) if row.cells[c.key].text else "") for c in columns]
            counts = ["", "", ""]
        lines.append("| " + " | ".join([_md_escape(row.label), row.source] + counts + cells) + " |")
    return "\n".join(lines) + "\n"


def render_csv(columns: list, rows: list) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["variant", "source", "finished", "planned", "diverged", "failed"]
    for column in columns:
        header += [f"{column.key}_mean", f"{column.key}_std", f"{column.key}_n"]
    writer.writerow(header + ["best"])
    for row in rows:
        line = [row.label, row.source]
        if row.source == "ours":
            line += [row.finished, row.planned, row.diverged, row.failed]
            for column in columns:
                cell = row.cells[column.key]
                line += ["" if cell.mean is None else repr(cell.mean), "" if cell.std is None else repr(cell.std), cell.n]
        else:
            line += ["", "", "", ""]
            for column in columns:
                mean, std = parse_quoted(row.cells[column.key].text)
                line += ["" if mean is None else mean, "" if std is None else std, ""]
        writer.writerow(line + [";".join(sorted(row.best))])
    return buffer.getvalue()


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))


def render_latex(definition: BenchmarkDefinition, columns: list, rows: list) -> str:
    """A ``tabular`` (no package needed) to \\input into a paper."""
    spec = "ll" + "r" * (3 + len(columns))
    header = ["variant", "source", "runs", "div.", "fail."] + [c.label for c in columns]
    lines = [
        f"% {definition.name}: mean $\\pm$ sample std over finished seeds; generated by gan-suite report",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\hline",
        " & ".join(tex_escape(h) for h in header) + " \\\\",
        "\\hline",
    ]
    published_started = False
    for row in rows:
        if row.source == "ours":
            cells = []
            for column in columns:
                parts = cell_parts(row.cells[column.key])
                if parts is None:
                    cells.append("--")
                    continue
                body = parts[0] if parts[1] is None else f"{parts[0]} \\pm {parts[1]}"
                body = f"$\\mathbf{{{body}}}$" if column.key in row.best else f"${body}$"
                cells.append(body + _fewer_note(row, row.cells[column.key]))
            counts = [f"{row.finished}/{row.planned}", str(row.diverged), str(row.failed)]
        else:
            if not published_started:
                lines.append("\\hline")
                published_started = True
            cells = [_tex_quoted(row.cells[column.key].text) for column in columns]
            counts = ["", "", ""]
        lines.append(" & ".join([tex_escape(row.label), tex_escape(row.source)] + counts + cells) + " \\\\")
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def _fewer_note(row: Row, cell: Cell) -> str:
    """' (n=k)' when fewer finished runs than the row's have a finite value for this metric."""
    return f" (n={cell.n})" if 0 < cell.n < row.finished else ""


def _tex_quoted(text: Optional[str]) -> str:
    """A published value as quoted: '6.3 +- 0.5' -> $6.3 \\pm 0.5$, '7.9' -> $7.9$, other text escaped."""
    if not text:
        return ""
    match = re.fullmatch(r"\s*(-?[\d.]+)\s*(?:\+-|±|\+/-)\s*([\d.]+)\s*", text)
    if match:
        return f"${match.group(1)} \\pm {match.group(2)}$"
    if re.fullmatch(r"\s*-?[\d.]+\s*", text):
        return f"${text.strip()}$"
    return tex_escape(text)


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def _protocol_note(definition: BenchmarkDefinition) -> str:
    parts = []
    for protocol in definition.protocols:
        kw = protocol.kwargs
        described = ", ".join(f"{k}={kw[k]}" for k in ("features", "metrics", "num_samples", "real_split") if k in kw)
        parts.append(f"{protocol.name}: {described}" if len(definition.protocols) > 1 else described)
    steps = f"{definition.steps} training steps" if definition.steps else "the base config's training length"
    return (
        f"Mean ± sample standard deviation over the finished seeds ({len(definition.seeds)} planned per variant), "
        f"{steps}; evaluation: {'; '.join(parts)}. Bold: best of our rows. Published rows are quoted from the papers."
    )


# ---------------------------------------------------------------------- entry point
def write_report(out_dir: str, wandb: Optional[bool] = None, plots: bool = True) -> dict:
    """Write ``DIR/report/table.{md,csv,tex}`` (the Markdown table followed by the stopping-rule
    count), ``curves.png``, ``samples_<variant>.png`` and ``mode_history_<variant>.png``.

    Args:
        wandb: log the table and figures to a W&B run (default: when the benchmark used W&B).
    Returns:
        name -> path of every file written.
    """
    definition, results = load_report_inputs(out_dir)
    columns, rows = build_rows(definition, results)
    folder = os.path.join(out_dir, "report")
    written = {}
    for name, text in (
        ("table.md", render_markdown(definition, columns, rows) + stopping_note(definition, results)),
        ("table.csv", render_csv(columns, rows)),
        ("table.tex", render_latex(definition, columns, rows)),
    ):
        path = os.path.join(folder, name)
        R.atomic_write_text(path, text)
        written[name] = path
    if plots:
        from gan_suite.benchmark.plots import plot_curves, plot_mode_histories, plot_samples

        written["curves.png"] = plot_curves(definition, results, os.path.join(folder, "curves.png"))
        for variant, path in plot_samples(definition, results, out_dir, folder).items():
            written[f"samples_{variant}.png"] = path
        for variant, path in plot_mode_histories(definition, results, out_dir, folder).items():
            written[f"mode_history_{variant}.png"] = path
    use_wandb = wandb if wandb is not None else any(r.get("logger") == "wandb" for r in results.values())
    if use_wandb:
        _log_to_wandb(definition, out_dir, folder, columns, rows, written)
    return written


def _log_to_wandb(definition, out_dir, folder, columns, rows, written) -> None:
    import pandas as pd

    from gan_suite.tracking import WandbLogger

    table = pd.read_csv(io.StringIO(render_csv(columns, rows)), keep_default_na=False)
    table = table.astype(str)
    logger = WandbLogger(save_dir=os.path.dirname(folder), name="report", group=definition.name, job_type="report", silent=True, **definition.wandb)
    try:
        logger.log_table(f"{definition.name}/table", table)
        pictures = {k: v for k, v in written.items() if k.endswith(".png")}
        for name, path in pictures.items():
            logger.log_image(f"{definition.name}/{name[:-4]}", [path])
        logger.log_summary({"benchmark": definition.name, "runs_with_result": sum(r.finished + r.diverged + r.failed for r in rows if r.source == "ours")})
    finally:
        logger.finalize("success")


def stopping_note(definition: BenchmarkDefinition, results: dict) -> str:
    """A paragraph counting the runs a stopping rule ended early ('plateau', 'diverged'), per
    variant, from ``result.json["stop_reason"]``; '' when no rule stopped a run."""
    counts: dict = {}
    for run in definition.runs():
        reason = (results.get(run.run_id) or {}).get("stop_reason")
        if reason and reason != "finished":
            counts.setdefault(reason, {}).setdefault(run.variant, 0)
            counts[reason][run.variant] += 1
    if not counts:
        return ""
    parts = [f"{reason} {sum(by.values())} ({', '.join(f'{v} {n}' for v, n in by.items())})" for reason, by in sorted(counts.items())]
    return "\nStopped early by a stopping rule: " + "; ".join(parts) + ".\n"
