"""mmgate's registries, children of MMEngine's root registries.

As in MMDetection's ``mmdet/registry.py``, each registry mmgate registers
into is a child of MMEngine's root registry of the same kind, in the scope
``mmgate``. A config of any downstream project (mmdet, mmseg, mmpretrain)
names mmgate's classes with the scope prefix:

- ``backbone=dict(type='mmgate.SkipResNet', ...)`` (:data:`MODELS`);
- ``runner_type = 'mmgate.Runner'`` (:data:`RUNNERS`);
- ``default_hooks = dict(checkpoint=dict(type='mmgate.CheckpointHook'))``,
  ``custom_hooks = [dict(type='mmgate.NonFiniteGuardHook')]``
  (:data:`HOOKS`);
- ``optim_wrapper = dict(type='mmgate.CPUAmpOptimWrapper', ...)``
  (:data:`OPTIM_WRAPPERS`).

MMEngine then imports ``mmgate.registry``, finds the ``mmgate`` scope below
its root and, through ``locations``, imports the module that registers the
class, so no ``custom_imports`` line is needed
(``custom_imports=dict(imports=['mmgate.models'])`` works as well).

Only MMEngine is imported here: neither mmdet nor mmseg is needed to build an
mmgate backbone. Nothing is registered into MMEngine's own registries.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import Registry

__all__ = ['MODELS', 'HOOKS', 'RUNNERS', 'OPTIM_WRAPPERS']

#: Backbones, their layers and the plug-in layers.
MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmgate',
    locations=['mmgate.models'])

#: Hooks: the checkpoint hook, the non-finite guard, the FLGC statistics.
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope='mmgate', locations=['mmgate.engine'])

#: ``mmgate.Runner``.
RUNNERS = Registry(
    'runner',
    parent=MMENGINE_RUNNERS,
    scope='mmgate',
    locations=['mmgate.engine'])

#: ``mmgate.CPUAmpOptimWrapper``.
OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    scope='mmgate',
    locations=['mmgate.engine'])
