"""The table and plots of scripts/bench_peers.py: one row per measurement, the median of the rounds on each side,
and the ratio oriented so that above 1 always means edge-runtime is ahead."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

SIDES = ("edge-runtime", "llama-server")


@dataclass
class Row:
    label: str
    unit: str
    higher_is_better: bool
    goal: float | None
    """The ratio to reach; None for a row shown for context."""
    samples: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})

    def median(self, side: str) -> float:
        return statistics.median(self.samples[side])

    def ratio(self) -> float:
        ours, theirs = self.median(SIDES[0]), self.median(SIDES[1])
        return ours / theirs if self.higher_is_better else theirs / ours

    def verdict(self) -> str:
        if self.goal is None:
            return ""
        return "met" if self.ratio() >= self.goal else "not met"


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def text_table(rows: list[Row]) -> str:
    lines = [f"{'':<52} {'edge-runtime':>13} {'llama-server':>13} {'ratio':>7} {'goal':>6}"]
    for row in rows:
        goal = f">={row.goal:.1f}x" if row.goal is not None else ""
        lines.append(
            f"{row.label + ' (' + row.unit + ')':<52} {fmt(row.median(SIDES[0])):>13} "
            f"{fmt(row.median(SIDES[1])):>13} {row.ratio():>6.2f}x {goal:>6} {row.verdict()}"
        )
    return "\n".join(lines)


def markdown_table(rows: list[Row], valid: dict[str, str]) -> str:
    lines = [
        "| median of the rounds | edge-runtime | llama-server | ratio (>1: edge-runtime ahead) | goal |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        goal = f">= {row.goal:.1f}x ({row.verdict()})" if row.goal is not None else "(context)"
        lines.append(
            f"| {row.label} ({row.unit}) | {fmt(row.median(SIDES[0]))} | {fmt(row.median(SIDES[1]))} "
            f"| {row.ratio():.2f}x | {goal} |"
        )
    lines.append(f"| extraction answers valid (jsonschema), all rounds | {valid[SIDES[0]]} | {valid[SIDES[1]]} | | all |")
    return "\n".join(lines)


def plot(rows: list[Row], title: str, ratios_png: Path, rounds_png: Path) -> None:
    """Two figures: the ratio of each row against its goal, and every round's value on both sides."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    labels = [row.label for row in rows][::-1]
    ratios = [row.ratio() for row in rows][::-1]
    colours = [
        "#999999" if row.goal is None else "#4c72b0" if r >= row.goal else "#dd8452"
        for r, row in zip(ratios, rows[::-1])
    ]
    ax.barh(labels, ratios, color=colours)
    for y, row in enumerate(rows[::-1]):
        if row.goal is not None:
            ax.plot([row.goal, row.goal], [y - 0.4, y + 0.4], color="black", linewidth=2)
        ax.text(ratios[y] + 0.02, y, f"{ratios[y]:.2f}x", va="center", fontsize=8)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("ratio to llama-server (>1: edge-runtime ahead; black tick: goal)", fontsize=9)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(ratios_png, dpi=110)
    plt.close(fig)

    columns = 3
    lines = (len(rows) + columns - 1) // columns
    fig, axes = plt.subplots(lines, columns, figsize=(10, 2.6 * lines), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        for side, marker in zip(SIDES, ("o", "s")):
            values = row.samples[side]
            ax.plot(range(1, len(values) + 1), values, marker=marker, label=side)
        ax.set_title(f"{row.label}\n({row.unit})", fontsize=8)
        ax.set_xticks(range(1, max(len(row.samples[s]) for s in SIDES) + 1))
        ax.tick_params(labelsize=7)
        ax.set_ylim(bottom=0)
    for ax in axes.flat[len(rows) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{title}: each round (x: round)", fontsize=9)
    fig.tight_layout()
    fig.savefig(rounds_png, dpi=110)
    plt.close(fig)
