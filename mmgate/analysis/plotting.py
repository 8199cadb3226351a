"""Matplotlib without a display (the Agg backend), imported on demand."""

__all__ = ['pyplot']


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
