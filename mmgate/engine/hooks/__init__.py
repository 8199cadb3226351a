"""mmgate's hooks, registered in ``mmgate.registry.HOOKS``."""
from .checkpoint_hook import CheckpointHook
from .learnable_group_stats_hook import LearnableGroupStatsHook
from .non_finite_guard_hook import NonFiniteGuardHook

__all__ = ['CheckpointHook', 'NonFiniteGuardHook', 'LearnableGroupStatsHook']
