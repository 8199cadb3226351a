"""mmgate: Gate-Module backbones for the OpenMMLab model zoo.

Importing mmgate changes nothing outside it. The fixes that make the pinned
OpenMMLab stack run on torch 2.14 and without CUDA patch MMEngine, so they
are applied explicitly: by mmgate's tools, or in a script of your own with
``import mmgate.compat; mmgate.compat.apply()`` (see ``mmgate/compat.py``).
"""
from .version import __version__

__all__ = ['__version__']
