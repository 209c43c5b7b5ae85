"""A bar chart per insight, as a PNG file beside the reports."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs in the Dagster process and in tests
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ecom_assets.publishing import save_figure  # noqa: E402


def bar_chart(frame: pd.DataFrame, x: str, ys: list[str], title: str, path: Path, horizontal: bool = False) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.5 if not horizontal else max(4.5, 0.25 * len(frame))))
    frame.plot(x=x, y=ys, kind="barh" if horizontal else "bar", ax=ax)
    if horizontal:
        ax.invert_yaxis()
    ax.set_title(title)
    return save_figure(fig, path)
