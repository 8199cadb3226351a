from .gate import (GateModule, gate_hidden_channels, global_descriptor,
                   skip_inbound_indices)
from .norm import LayerNorm2d, build_norm

__all__ = [
    'GateModule', 'gate_hidden_channels', 'global_descriptor',
    'skip_inbound_indices', 'LayerNorm2d', 'build_norm'
]
