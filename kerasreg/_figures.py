"""Figures: matplotlib on demand, figures apart from pyplot, atomic saving.

Private plumbing of kerasreg's plots (`diagnostics.plot_history`,
`tuners.plot_search`, the learning-rate finder's `plot`). matplotlib is an
optional extra, imported only when a figure is drawn. Nothing here selects a
backend (`matplotlib.use` changes it for the whole process, notebooks
included): a `matplotlib.figure.Figure` made with `new_figure` is not
registered with pyplot, so it opens no window on any backend and is drawn
by `savefig` with the canvas its format needs.
"""

from __future__ import annotations

import os

from kerasreg._io import atomic_path

__all__ = ["new_figure", "save_figure"]


def new_figure(**kwargs):
    """A `matplotlib.figure.Figure(**kwargs)` not attached to pyplot."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_figure(
    fig, path: str | os.PathLike, *, format: str | None = None, **savefig_kwargs
) -> None:
    """Saves `fig` to `path` atomically (see `kerasreg._io.atomic_path`).

    Args:
        fig: A matplotlib `Figure`.
        path: The file to write.
        format: The image format (`"png"`, `"pdf"`, ...). Defaults to `None`:
            the extension of `path`, or PNG when it has none.
        **savefig_kwargs: Passed to `fig.savefig` (`dpi`, `bbox_inches`, ...).
    """
    path = os.fspath(path)
    if format is None:
        format = os.path.splitext(path)[1].lstrip(".") or "png"
    with atomic_path(path, f".{format}") as tmp:
        fig.savefig(tmp, format=format, **savefig_kwargs)
