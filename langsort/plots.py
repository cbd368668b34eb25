"""Matplotlib figures as self-contained HTML images, for report.html and compare's page."""

from __future__ import annotations

import base64
import io


def figure_png(draw, size: tuple[float, float] = (5.5, 3.2), save_to: str | None = None) -> str:
    """A matplotlib figure drawn by `draw(ax)` as an inline <img> (self-contained HTML),
    also written to `save_to` when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    if save_to:
        with open(save_to, "wb") as f:
            f.write(buffer.getvalue())
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'
