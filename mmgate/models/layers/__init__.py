from .gate import GateModule, gate_hidden_channels, global_descriptor
from .gaussian_conv import GaussianPriorConv2d, fuse_gaussian_prior_convs
from .gaussian_pool import (GaussianPool2d, MaxEntPool2d, PriorEstimator,
                            build_prior_pool)
from .learnable_group_conv import (LearnableGroupConv2d, PackedGroupConv2d,
                                   deploy_learnable_group_convs,
                                   learnable_group_stats)
from .norm import LayerNorm2d, build_norm
from .router import (InboundRouter, dense_inbound_indices, fit_channels,
                     inbound_distances, last_readers, padding_mask,
                     pool_to_size, skip_inbound_indices)

__all__ = [
    'GateModule', 'gate_hidden_channels', 'global_descriptor', 'InboundRouter',
    'skip_inbound_indices', 'dense_inbound_indices', 'last_readers',
    'inbound_distances', 'padding_mask', 'fit_channels', 'pool_to_size',
    'LayerNorm2d', 'build_norm', 'GaussianPool2d', 'MaxEntPool2d',
    'PriorEstimator', 'build_prior_pool', 'GaussianPriorConv2d',
    'fuse_gaussian_prior_convs', 'LearnableGroupConv2d', 'PackedGroupConv2d',
    'deploy_learnable_group_convs', 'learnable_group_stats'
]
