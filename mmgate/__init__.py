"""mmgate: Gate-Module backbones for the OpenMMLab model zoo.

Importing mmgate changes nothing outside it. The backbones are registered in
``mmgate.registry.MODELS`` (``type='mmgate.SkipResNet'`` in any config); the
training-side fixes for the pinned OpenMMLab stack live in a registered
Runner that a config selects with ``runner_type = 'mmgate.Runner'``
(:mod:`mmgate.engine`).
"""
from .version import __version__

__all__ = ['__version__']
