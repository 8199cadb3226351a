"""mmgate's registries, children of MMEngine's root registries.

A config of any downstream project (mmdet, mmseg, mmpretrain) can say
``type='mmgate.SkipResNet'``: MMEngine then imports ``mmgate.registry``, finds
the ``mmgate`` scope below its root and, through ``locations``, imports
``mmgate.models`` so that every class is registered without a
``custom_imports`` line. ``custom_imports=dict(imports=['mmgate.models'])``
works as well.

Only MMEngine is imported here: neither mmdet nor mmseg is needed to build an
mmgate backbone.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

__all__ = ['MODELS']

MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmgate',
    locations=['mmgate.models'])
