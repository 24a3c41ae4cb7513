"""Figures a person looks at to check a stage: contact sheets of faces and landmarks."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mer.io import atomic_path  # noqa: E402

DPI = 100  # figures are read on screen: 100 dpi keeps 9-point text legible


def save(fig: plt.Figure, path: str | Path) -> None:
    """Save atomically and free the figure."""
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def landmark_sheet(path: str | Path, clips: list, template) -> None:
    """`clips`' landmark frames with their 68 points and box, titled with the detector and frame that found
    the face, plus the template shape."""
    from mer.images import read_rgb

    cols = min(4, len(clips) + 1)
    rows = -(-(len(clips) + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, clip in zip(axes.flat, clips, strict=False):  # the grid may have spare cells
        ax.imshow(read_rgb(clip.frame))
        _draw_points(ax, clip.detection.landmarks)
        x0, y0, x1, y1 = clip.detection.box
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="yellow", lw=1))
        later = f", frame +{clip.frame_offset}" if clip.frame_offset else ""
        ax.set_title(f"{clip.sample_id}\n{clip.detection.detector.upper()}{later}", fontsize=8)
    ax = axes.flat[len(clips)]
    ax.set_xlim(0, template.canvas[0])
    ax.set_ylim(template.canvas[1], 0)
    ax.set_aspect("equal")
    _draw_points(ax, template.landmarks)
    ax.set_title(f"template ({template.source})", fontsize=8)
    save(fig, path)


def image_grid(path: str | Path, panels: list[list[np.ndarray]], row_titles: list[str], col_titles: list[str]) -> None:
    """A grid of images (rows of equal length), e.g. onset / apex / |apex - onset| per clip."""
    rows, cols = len(panels), len(col_titles)
    fig, axes = plt.subplots(max(rows, 1), cols, figsize=(3.0 * cols, 3.0 * max(rows, 1)), squeeze=False)
    for r, row in enumerate(panels):
        for c, image in enumerate(row):
            ax = axes[r, c]
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(col_titles[c], fontsize=10)
            if c == 0:
                ax.set_ylabel(row_titles[r], fontsize=9)
    save(fig, path)


def _draw_points(ax: plt.Axes, points: np.ndarray) -> None:
    ax.scatter(points[:, 0], points[:, 1], s=4, c="lime", linewidths=0)
    ax.scatter(points[36:48, 0], points[36:48, 1], s=5, c="red", linewidths=0)  # eyes: the crop rule's anchors
