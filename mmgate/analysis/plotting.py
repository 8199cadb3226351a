"""Matplotlib without a display (the Agg backend), imported on demand."""

import os
import os.path as osp

__all__ = ['pyplot', 'save_figure']


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend.

    Raises:
        ImportError: When matplotlib is not installed (it is in mmgate's
            ``tests`` extra).
    """
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError('the analysis plots need matplotlib: '
                          'pip install matplotlib') from e
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: str, title: str = '') -> str:
    """Lay out ``fig`` (with a title if given), write it to ``path`` (its
    folder is created) at 120 dpi, close it and return ``path``."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path
