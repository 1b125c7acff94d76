"""Draws docs/figures/steps.png, the four training steps (the idea of the paper's Fig. 2):
``python docs/figures/steps.py``."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

COLOURS = {"RGB": "#d9534f", "Depth": "#337ab7", "Hall": "#9b59b6"}
STEPS = [
    ("1. Train each stream alone", [("RGB", "RGB", True), ("Depth", "Depth", True)], [], "cross-entropy"),
    ("2. Connect them, fine-tune", [("RGB", "RGB", True), ("Depth", "Depth", True)], [(1, 0)], "cross-entropy"),
    ("3. Hallucinate depth from RGB", [("Hall", "RGB", True), ("Depth", "Depth", False)], [(1, 0)], "eq. 7"),
    ("4. Deploy on RGB only", [("RGB", "RGB", True), ("Hall", "RGB", True)], [(1, 0)], "cross-entropy"),
]


def draw(out: Path) -> None:
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    for ax, (title, streams, links, loss) in zip(axes, STEPS, strict=True):
        ax.set(xlim=(0, 10), ylim=(0, 10), title=title)
        ax.axis("off")
        for i, (name, sees, trains) in enumerate(streams):
            x = 1 + 4.6 * i
            ax.add_patch(
                FancyBboxPatch(
                    (x, 2.2), 3.4, 5.2, boxstyle="round,pad=0.1", fc=COLOURS[name], alpha=0.85 if trains else 0.3,
                    ec="black", ls="-" if trains else "--",
                )
            )  # fmt: skip
            label = {"Hall": "hallucination"}.get(name, name) + ("" if trains else "\n(frozen)")
            ax.text(x + 1.7, 4.8, f"{label}\nstream", ha="center", va="center", color="white", fontsize=9)
            ax.text(x + 1.7, 0.9, f"input: {sees}", ha="center", fontsize=9)
        for src, dst in links:
            ax.add_patch(
                FancyArrowPatch((1 + 4.6 * src, 5.8), (4.4 + 4.6 * dst, 5.8), arrowstyle="-|>", mutation_scale=14)
            )
            ax.text(5.0, 6.3, "×", ha="center", fontsize=13)
        ax.text(5.0, 9.0, loss, ha="center", fontsize=9, style="italic")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    draw(Path(__file__).with_name("steps.png"))
