from .gate import (GateModule, gate_hidden_channels, global_descriptor,
                   last_readers, skip_inbound_indices)
from .gaussian_conv import GaussianPriorConv2d, fuse_gaussian_prior_convs
from .gaussian_pool import (GaussianPool2d, MaxEntPool2d, PriorEstimator,
                            build_prior_pool)
from .inbound_align import (InboundAlign, InboundBank, dense_inbound_indices,
                            fit_channels, pool_to_size)
from .learnable_group_conv import (LearnableGroupConv2d,
                                   LearnableGroupStatsHook, PackedGroupConv2d,
                                   deploy_learnable_group_convs,
                                   learnable_group_stats)
from .norm import LayerNorm2d, build_norm

__all__ = [
    'GateModule', 'gate_hidden_channels', 'global_descriptor',
    'skip_inbound_indices', 'last_readers', 'LayerNorm2d', 'build_norm', 'InboundAlign',
    'InboundBank', 'dense_inbound_indices', 'fit_channels', 'pool_to_size',
    'GaussianPool2d', 'MaxEntPool2d', 'PriorEstimator', 'build_prior_pool',
    'GaussianPriorConv2d', 'fuse_gaussian_prior_convs', 'LearnableGroupConv2d',
    'PackedGroupConv2d', 'deploy_learnable_group_convs', 'learnable_group_stats',
    'LearnableGroupStatsHook'
]
