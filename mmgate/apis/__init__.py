"""The Python entry points of mmgate's tools: ``train(argv)`` is
``tools/train.py``, ``test(argv)`` is ``tools/test.py``, with the same
arguments; both raise :class:`RunError` (a one-line reason) instead of
exiting.

Importing this package imports MMEngine only; the task libraries (mmdet,
mmseg, mmpretrain) are imported by the configs they run.
"""
from .common import RunError
from .testing import test
from .training import train

__all__ = ['train', 'test', 'RunError']
