"""Charts the pages draw on the server as inline SVG; every text in them is escaped."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def weights_svg(names: list[str], rounds: list[int], weights: list[list[float]], width: int = 720, height: int = 240):
    """An inline SVG line chart of each expert's weight by round; every text is escaped."""
    left, right, top, bottom = 44, 12, 12, 28
    span_x = max(rounds[-1] - rounds[0], 1)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(value: int) -> float:
        return left + plot_w * (value - rounds[0]) / span_x

    def y(value: float) -> float:
        return top + plot_h * (1 - value)

    grid = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/><text x="{}" y="{}" font-size="10" '
        'text-anchor="end">{}</text>',
        ((left, y(v), width - right, y(v), left - 4, y(v) + 3, f"{v:.2f}") for v in (0, 0.25, 0.5, 0.75, 1)),
    )
    lines = []
    for index, name in enumerate(names):
        points = " ".join(f"{x(r):.1f},{y(w[index]):.1f}" for r, w in zip(rounds, weights) if index < len(w))
        colour = PALETTE[index % len(PALETTE)]
        lines.append(
            format_html(
                '<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"><title>{}</title></polyline>'
                '<text x="{}" y="{}" font-size="11" fill="{}">{}</text>',
                colour,
                points,
                name,
                left + 6 + 150 * (index % 4),
                height - 4 + 12 * (index // 4),
                colour,
                name,
            )
        )
    axis = format_html(
        '<text x="{}" y="{}" font-size="10" text-anchor="end">round {}</text>', width - right, height - 16, rounds[-1]
    )
    body: SafeString = mark_safe("".join([grid, *lines, axis]))  # parts are built by format_html: escaped
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="expert weights by round" '
        'width="{}" height="{}" viewBox="0 0 {} {}">{}</svg>',
        width,
        height + 12 * ((len(names) - 1) // 4),
        width,
        height + 12 * ((len(names) - 1) // 4),
        body,
    )
