"""PNG plots of an agreement report (matplotlib, loaded only when a plot is asked for)."""

import io
from typing import Any

import numpy as np


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(plt, figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def category_alpha_bars(report: dict[str, Any]) -> bytes:
    """Alpha of each category's presence; undefined ones are listed, not drawn as zero."""
    plt = _figure()
    rows = [(code, stat["value"]) for code, stat in report["per_category_alpha"].items()]
    figure, axis = plt.subplots(figsize=(8, 3.2))
    codes = [code for code, _ in rows]
    values = [value if value is not None else 0 for _, value in rows]
    colors = ["#1f5fbf" if value is not None else "#cccccc" for _, value in rows]
    axis.bar(codes, values, color=colors)
    axis.axhline(0.667, color="#8a4b00", linewidth=1, linestyle="--", label="0.667 (tentative)")
    axis.axhline(0.8, color="#2c7a2c", linewidth=1, linestyle="--", label="0.8 (reliable)")
    axis.set_ylabel("Krippendorff's alpha")
    axis.set_ylim(min(0, *values) - 0.05, 1)
    axis.set_title("Agreement per category (grey: undefined)")
    axis.tick_params(axis="x", labelrotation=90)
    axis.legend(loc="lower right", fontsize=8)
    return _png(plt, figure)


def _empty(plt, title: str, message: str) -> bytes:
    """A small plot that says why there is nothing to draw."""
    figure, axis = plt.subplots(figsize=(4.5, 2))
    axis.axis("off")
    axis.set_title(title)
    axis.text(0.5, 0.5, message, ha="center", va="center", fontsize=9, wrap=True)
    return _png(plt, figure)


NO_PAIRS = "No sample has two ratings of this field yet:\nnothing to compare."


def kappa_heatmap(report: dict[str, Any], field: str) -> bytes:
    """Cohen's kappa for every pair of annotators on one field."""
    plt = _figure()
    pairs = report["fields"][field]["cohen_kappa_pairs"]
    if not pairs:
        return _empty(plt, f"Cohen's kappa, {field}", NO_PAIRS)
    people = sorted({p["first"] for p in pairs} | {p["second"] for p in pairs})
    index = {name: i for i, name in enumerate(people)}
    matrix = np.full((len(people), len(people)), np.nan)
    for pair in pairs:
        if pair["value"] is not None:
            i, j = index[pair["first"]], index[pair["second"]]
            matrix[i, j] = matrix[j, i] = pair["value"]
    np.fill_diagonal(matrix, 1.0)
    size = max(3.5, 0.45 * len(people) + 2)
    figure, axis = plt.subplots(figsize=(size, size * 0.85))
    image = axis.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu")
    axis.set_xticks(range(len(people)), people, rotation=90, fontsize=8)
    axis.set_yticks(range(len(people)), people, fontsize=8)
    axis.set_title(f"Cohen's kappa, {field}")
    figure.colorbar(image, ax=axis, fraction=0.046)
    return _png(plt, figure)


def confusion_heatmap(report: dict[str, Any], field: str) -> bytes:
    plt = _figure()
    confusion = report["fields"][field]["confusion"]
    if not confusion["counts"]:
        return _empty(plt, f"Pairs of labels, {field}", NO_PAIRS)
    counts = np.array(confusion["counts"])
    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.imshow(counts, cmap="Blues")
    for i in range(len(counts)):
        for j in range(len(counts)):
            axis.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8)
    axis.set_xticks(range(len(counts)), confusion["values"], rotation=45)
    axis.set_yticks(range(len(counts)), confusion["values"])
    axis.set_title(f"Pairs of labels, {field}")
    return _png(plt, figure)


PLOTS = {
    "categories": lambda report, field: category_alpha_bars(report),
    "kappa": kappa_heatmap,
    "confusion": confusion_heatmap,
}
