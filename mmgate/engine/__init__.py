"""mmgate's MMEngine components, chosen by config.

- ``runner_type = 'mmgate.Runner'`` (:class:`Runner`): safe checkpoint
  reading, atomic saves with the generators' states, distributed runs
  without CUDA, the non-finite guard;
- ``mmgate.CheckpointHook``, ``mmgate.NonFiniteGuardHook``,
  ``mmgate.LearnableGroupStatsHook`` (hooks);
- ``mmgate.CPUAmpOptimWrapper`` (bf16 autocast on a CPU).

They are registered in :mod:`mmgate.registry` when this package is imported
(MMEngine imports it when a config names one of them); nothing outside
mmgate's registries changes at import.

What mmgate still changes in other libraries, and why (each is applied by
an mmgate component while it runs, never at import):

1. ``mmengine.runner.CheckpointLoader``'s loaders for local files and
   ``http(s)://``: :class:`Runner` registers
   :func:`mmgate.fileio.read_checkpoint` through MMEngine's public
   ``CheckpointLoader.register_scheme`` when it is built, because MMEngine
   reads URLs with ``weights_only=False`` (torch.hub's default) and the
   ``Pretrained`` initialisers of other modules read through that table.
   Can go when MMEngine loads weights with ``weights_only=True`` itself.
2. ``mmcv._ext``'s functions, while :class:`CPUAmpOptimWrapper`'s forward
   and backward run (``mmcv_ops_in_fp32``, restored on exit): mmcv's
   compiled CPU kernels take fp32 only and autocast cannot see them. Can go
   when mmcv's CPU ops accept bf16.
"""
from .amp import CPUAmpOptimWrapper, mmcv_ops_in_fp32
from .errors import CheckpointSaveError, NonFiniteError, RunAborted
from .hooks import CheckpointHook, LearnableGroupStatsHook, NonFiniteGuardHook
from .runner import Runner

__all__ = [
    'Runner', 'CheckpointHook', 'NonFiniteGuardHook',
    'LearnableGroupStatsHook', 'CPUAmpOptimWrapper', 'mmcv_ops_in_fp32',
    'RunAborted', 'NonFiniteError', 'CheckpointSaveError'
]
