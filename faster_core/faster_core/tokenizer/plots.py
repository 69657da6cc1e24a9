"""Reconstructions against ground truth, one panel per action dimension (the paper's Fig. 14, per tokenizer)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from faster_core.tokenizer.interface import ActionTokenizer


def plot_reconstructions(
    tokenizer: ActionTokenizer,
    chunks: np.ndarray,
    path: str | os.PathLike,
    *,
    joint_names: Sequence[str],
    count: int = 3,
) -> None:
    """Draw ``count`` evenly spaced chunks [H, D] and their round trip through ``tokenizer`` into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = np.linspace(0, len(chunks) - 1, min(count, len(chunks))).astype(int)
    truth = np.asarray(chunks[picks], dtype=np.float32)
    tokens = tokenizer.tokenize(truth)
    recon = tokenizer.detokenize(tokens)
    dims = truth.shape[-1]
    columns = min(dims, 4)
    rows = -(-dims // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.6 * rows), squeeze=False)
    steps = np.arange(truth.shape[1])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for d, axis in enumerate(axes.flat):
        if d >= dims:
            axis.axis("off")
            continue
        for k in range(len(picks)):
            color = colors[k % len(colors)]
            axis.plot(steps, truth[k, :, d], color=color, linewidth=1.6)
            axis.plot(steps, recon[k, :, d], color=color, linewidth=1.0, linestyle="--", marker=".", markersize=3)
        axis.set_title(joint_names[d] if d < len(joint_names) else f"dim {d}", fontsize=9)
        axis.tick_params(labelsize=7)
    lengths = ", ".join(str(len(t)) for t in tokens)
    figure.suptitle(f"{tokenizer.kind}: ground truth (solid) vs reconstruction (dashed), tokens per chunk {lengths}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
