"""Evaluation reports in the Aegis 2.0 paper's layout: benchmarks as columns, guards as rows, the
harmful-class F1 in each cell and the unweighted average across the benchmarks in the last column;
under the table what pins the numbers (threshold, gold labels, unparsed answers, category
mappings, sampling). Exported as Markdown, CSV and JSON; several runs make one table (their rows
side by side). Plots (matplotlib, Agg, imported only here and only when asked): F1 bars per
benchmark, precision-recall curves where guards give scores."""

import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.utils.text import slugify

from core.csvfiles import CsvWriter

from .benchmarks import get_benchmark

if TYPE_CHECKING:
    from .models import EvaluationRun

DASH = "—"


@dataclass
class TableColumn:
    """A benchmark column of the paper's table: what it reads and what counts as positive."""

    label: str
    name: str
    task: str
    positive_class: str
    positive_values: list[str]
    items: int | None = None
    evaluated: int | None = None
    source: str | None = None
    error: str | None = None


@dataclass
class Row:
    label: str
    guard: str
    run: int | None
    f1: list[float | None]
    average: float | None
    weighted_average: float | None
    answered: int
    threshold: float | None
    mappings: list[str]
    cells: list[dict | None] = field(default_factory=list)


@dataclass
class PaperTable:
    title: str
    columns: list[TableColumn]
    rows: list[Row]
    notes: list[str]
    runs: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_f1(value: float | None) -> str:
    """The paper's style: three decimals without the leading zero (.789); a dash when not answered."""
    if value is None:
        return DASH
    text = f"{value:.3f}"
    return text[1:] if text.startswith("0.") else text


def _mapping_line(categories: dict | None) -> str | None:
    """``source → target`` of the category mapping a cell used (its notes are in the JSON)."""
    if not categories or "mapping" not in categories:
        return None
    mapping = categories["mapping"]
    line = f"{mapping['source']} → {mapping['target']}"
    if categories.get("skipped"):
        return f"{line}: {categories['skipped']}"
    return f"{line} (same taxonomy)" if mapping.get("notes") == "same taxonomy" else line


def table_for_runs(runs: list["EvaluationRun"]) -> PaperTable:
    """One table from one or several runs: columns are the union of their benchmarks (in order of
    appearance), rows every guard of every run (labelled with the run when there are several)."""
    columns: dict[str, TableColumn] = {}
    for run in runs:
        info = {entry["label"]: entry for entry in (run.results or {}).get("benchmarks", [])}
        for spec in run.benchmarks:
            if spec["label"] in columns:
                continue
            entry = info.get(spec["label"], {})
            benchmark = get_benchmark(spec["name"])
            columns[spec["label"]] = TableColumn(
                label=spec["label"],
                name=spec["name"],
                task=benchmark.task.value,
                positive_class=benchmark.task.positive_class,
                positive_values=sorted(value for value, positive in benchmark.labels.items() if positive),
                items=entry.get("items"),
                evaluated=entry.get("evaluated"),
                source=entry.get("source"),
                error=entry.get("error"),
            )
    labels = list(columns)
    rows = []
    for run in runs:
        by_key = {(cell["guard"], cell["benchmark"]): cell for cell in run.cells}
        for guard in run.guard_names:
            cells = [by_key.get((guard, label)) for label in labels]
            results = [cell["result"] if cell and cell.get("result") else None for cell in cells]
            f1 = [result["f1"] if result else None for result in results]
            answered = [(value, result["n"]) for value, result in zip(f1, results) if value is not None]
            average = sum(v for v, _ in answered) / len(answered) if answered else None
            weighted = sum(v * n for v, n in answered) / sum(n for _, n in answered) if answered else None
            thresholds = {result["threshold"] for result in results if result and result["threshold"] is not None}
            mappings = sorted(
                {line for cell in cells if cell for line in [_mapping_line(cell.get("categories"))] if line}
            )
            rows.append(
                Row(
                    label=f"{guard} (run {run.pk})" if len(runs) > 1 else guard,
                    guard=guard,
                    run=run.pk,
                    f1=f1,
                    average=average,
                    weighted_average=weighted,
                    answered=len(answered),
                    threshold=min(thresholds) if thresholds else None,
                    mappings=mappings,
                    cells=cells,
                )
            )
    if len(runs) == 1:
        title = runs[0].name or f"Evaluation run {runs[0].pk}"
    else:
        title = "Runs " + ", ".join(str(run.pk) for run in runs)
    table = PaperTable(
        title=title,
        columns=list(columns.values()),
        rows=rows,
        notes=[],
        runs=[
            {"id": run.pk, "name": run.name, "status": run.status, "options": run.options, "guards": run.guards,
             "benchmarks": run.benchmarks}
            for run in runs
        ],
    )  # fmt: skip
    table.notes = _notes(table, runs)
    return table


def _notes(table: PaperTable, runs: list["EvaluationRun"]) -> list[str]:
    notes = [
        "Cells: F1 of the positive class (harmful or unsafe; refusal for refusal benchmarks). "
        "average: unweighted mean over the benchmarks each guard answers (size-weighted in CSV and JSON); "
        f"{DASH}: not answered."
    ]
    scored = sorted({(row.label, row.threshold) for row in table.rows if row.threshold is not None})
    text_rows = [row.label for row in table.rows if row.threshold is None and row.answered]
    parts = [f"P(unsafe) ≥ {threshold:g} for {label}" for label, threshold in scored]
    if text_rows:
        parts.append("labels read from the guard's answer for " + ", ".join(text_rows))
    if parts:
        notes.append("Threshold: " + "; ".join(parts) + ".")
    from taxonomy.models import Taxonomy

    for run in runs:
        prefix = f"Run {run.pk}: " if len(runs) > 1 else ""
        options = run.options or {}
        taxonomy = Taxonomy.objects.filter(pk=options.get("taxonomy")).first() if options.get("taxonomy") else None
        policy = (
            f"taxonomy {taxonomy} (given at inference)"
            if taxonomy
            else "each guard's own taxonomy (Aegis 2.0 by default)"
        )
        sampling = (
            f"a seeded sample of at most {options['limit']} items per benchmark (seed {options.get('seed', 0)})"
            if options.get("limit")
            else "every item"
        )
        bootstrap = options.get("bootstrap", 0)
        intervals = (
            f"{options.get('confidence', 0.95):.0%} bootstrap intervals ({bootstrap} resamples) in the JSON"
            if bootstrap
            else "no bootstrap intervals"
        )
        notes.append(f"{prefix}Prompts state the policy of {policy}; {sampling}; {intervals}.")
    gold = [
        f"{column.label} ({column.task.replace('_', ' ')}: {'/'.join(column.positive_values)} is positive"
        + (f", {column.evaluated} of {column.items} items" if column.items is not None else "")
        + ")"
        for column in table.columns
    ]
    notes.append("Gold labels: " + "; ".join(gold) + ".")
    failures = []
    for row in table.rows:
        for column, cell in zip(table.columns, row.cells):
            result = cell and cell.get("result")
            if result and result["parse_failures"]:
                failures.append(
                    f"{row.label} on {column.label}: {result['parse_failures']} of {result['n']} "
                    f"({result['parse_failure_rate']:.1%})"
                )
    notes.append("Unparsed answers (counted as wrong): " + ("; ".join(failures) if failures else "none") + ".")
    missing: dict[tuple[str, str], list[str]] = {}
    for row in table.rows:
        planned = {spec["label"] for run in runs if run.pk == row.run for spec in run.benchmarks}
        for column, cell in zip(table.columns, row.cells):
            if cell is None and column.label in planned:
                reason = "not run (yet)"
            elif cell is not None and cell.get("error"):
                reason = cell["error"].replace(column.label, "the benchmark")
            else:
                continue
            missing.setdefault((row.label, reason), []).append(column.label)
    if missing:
        notes.append(
            f"{DASH} "
            + "; ".join(f"{guard} on {', '.join(labels)}: {reason}" for (guard, reason), labels in missing.items())
            + "."
        )
    mappings = sorted({line for row in table.rows for line in row.mappings})
    notes.append(
        "Category mappings (guard → benchmark categories): "
        + ("; ".join(mappings) if mappings else "none used (no benchmark here has gold categories the guards name)")
        + "."
    )
    return notes


# --- formats ---------------------------------------------------------------------------------------


def _markdown_cell(text: str) -> str:
    """Text inside a Markdown table cell: pipes escaped, no line breaks, no HTML."""
    return (
        str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
        .replace("<", "&lt;").replace(">", "&gt;")
    )  # fmt: skip


def to_markdown(table: PaperTable) -> str:
    header = ["model", *(column.label for column in table.columns), "average"]
    lines = [
        f"## {_markdown_cell(table.title)}",
        "",
        "| " + " | ".join(_markdown_cell(h) for h in header) + " |",
        "|" + "|".join(["---", *("---:" for _ in header[1:])]) + "|",
    ]
    for row in table.rows:
        values = [format_f1(value) for value in row.f1]
        lines.append("| " + " | ".join([_markdown_cell(row.label), *values, format_f1(row.average)]) + " |")
    lines.append("")
    lines.extend(f"- {_markdown_cell(note)}" for note in table.notes)
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def to_csv(table: PaperTable) -> str:
    """The table, one row per guard; the threshold and category mappings pinned in their own columns."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer)
    writer.writerow(
        ["model", "run", *(column.label for column in table.columns), "average", "weighted_average",
         "benchmarks_answered", "threshold", "category_mappings"]
    )  # fmt: skip
    for row in table.rows:
        writer.writerow(
            [row.label, row.run, *(_number(v) for v in row.f1), _number(row.average),
             _number(row.weighted_average), row.answered, "" if row.threshold is None else row.threshold,
             "; ".join(row.mappings)]
        )  # fmt: skip
    return buffer.getvalue()


def to_json(table: PaperTable) -> str:
    return json.dumps(table.to_dict(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


RENDERERS = {"md": to_markdown, "markdown": to_markdown, "csv": to_csv, "json": to_json}
CONTENT_TYPES = {"md": "text/markdown; charset=utf-8", "csv": "text/csv; charset=utf-8", "json": "application/json"}


def render(table: PaperTable, fmt: str) -> str:
    try:
        return RENDERERS[fmt](table)
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r}: choose md, csv or json") from None


# --- plots -----------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        figure.tight_layout()
        figure.savefig(temporary, format="png", dpi=110)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    finally:
        plt.close(figure)


def precision_recall_curve(gold: list[bool], scores: list[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at each distinct score threshold, highest first (scikit-learn's
    ``precision_recall_curve``), from recall 0 at the first precision; an item without a score
    gets the worst one (as for AUPRC in ``metrics``). Needs a positive item (plots have one)."""
    from sklearn.metrics import precision_recall_curve as curve

    s = np.array([float(not label) if score is None else score for label, score in zip(gold, scores)], dtype=float)
    precision, recall, _ = curve(np.asarray(gold, dtype=bool), s)
    precision, recall = precision[::-1], recall[::-1]  # sklearn: lowest threshold first, then (1, 0)
    return recall, np.r_[precision[1], precision[1:]]


def write_plots(run: "EvaluationRun", folder: Path) -> list[str]:
    """``f1.png`` (bars per benchmark, one per guard) and ``pr-<benchmark>.png`` where some guard
    gave scores; returns the file names written."""
    table = table_for_runs([run])
    if not any(value is not None for row in table.rows for value in row.f1):
        return []
    plt = _pyplot()
    written = []
    figure, axis = plt.subplots(figsize=(max(6.0, 1.1 * len(table.columns) + 2), 3.6))
    width = 0.8 / max(len(table.rows), 1)
    positions = np.arange(len(table.columns))
    for number, row in enumerate(table.rows):
        values = [np.nan if value is None else value for value in row.f1]
        axis.bar(positions + number * width - 0.4 + width / 2, values, width, label=row.label[:40])
    axis.set_xticks(positions, [column.label for column in table.columns], rotation=30, ha="right")
    axis.set_ylim(0, 1)
    axis.set_ylabel("F1 (positive class)")
    axis.set_title("F1 per benchmark")
    axis.legend(fontsize=8)
    _save(plt, figure, folder / "f1.png")
    written.append("f1.png")
    folder_of_run = Path(run.directory)
    for position, column in enumerate(table.columns):
        curves = []
        for row in table.rows:
            cell = row.cells[position]
            if not cell or not cell.get("scored") or not cell.get("predictions"):
                continue
            rows = [json.loads(line) for line in (folder_of_run / cell["predictions"]).read_text("utf-8").splitlines()]
            gold = [r["gold"] for r in rows]
            if not any(gold):
                continue
            recall, precision = precision_recall_curve(gold, [r["score"] for r in rows])
            curves.append((row.label, recall, precision, cell["result"].get("auprc")))
        if not curves:
            continue
        figure, axis = plt.subplots(figsize=(4.8, 4.0))
        for label, recall, precision, auprc in curves:
            name = f"{label[:30]} (AP {auprc:.3f})" if auprc is not None else label[:30]
            axis.step(recall, precision, where="post", label=name)
        axis.set_xlabel("recall")
        axis.set_ylabel("precision")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1.02)
        axis.set_title(f"Precision-recall: {column.label}")
        axis.legend(fontsize=8, loc="lower left")
        name = f"pr-{slugify(column.label) or 'benchmark'}.png"
        _save(plt, figure, folder / name)
        written.append(name)
    return written
