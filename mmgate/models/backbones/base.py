"""What every mmgate backbone shares: ``frozen_stages`` / ``norm_eval`` in
``train()``, strict loading of ``init_cfg=dict(type='Pretrained')``
(MMPretrain's ``BaseBackbone`` plays the same part), and the defaults of the
library the model is built for.

The same ``type='mmgate.SkipResNet'`` is used in MMDetection,
MMSegmentation and MMPretrain configs, whose own ResNets differ in their
defaults (``norm_eval``: True in MMDetection, False in the other two;
``out_indices``: (3, ) in MMPretrain; ``stem_channels``: ``base_channels``
in MMDetection, 64 in the other two; ResNeXt ``groups``: 1 in MMDetection /
MMSegmentation, 32 in MMPretrain) and in a few key names. Arguments left at
None take the value of the *host* library: the MMEngine default scope the
model is built under (every OpenMMLab config sets ``default_scope``; a
Runner, ``init_default_scope`` or ``register_all_modules`` installs it).
Built outside any scope, the backbones follow MMDetection.
"""
from typing import Iterable, List, Sequence, Tuple

import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from ..utils import load_if_pretrained

__all__ = [
    'GatedBackbone', 'freeze_modules', 'host_library', 'HOST_DEFAULTS',
    'PAD_MODES', 'check_out_indices', 'check_drop_path_rate',
    'check_dense_args', 'linear_drop_path_rates'
]

# ``pad_mode`` of the dense pattern's gates (``blocks.build_junction``)
PAD_MODES = ('masked', 'paper')

# What each host library's own ResNet / ResNeXt defaults to.
# (``stem_channels`` None: ``base_channels``.)
HOST_DEFAULTS = {
    'mmdet':
    dict(
        norm_eval=True,
        out_indices=(0, 1, 2, 3),
        stem_channels=None,
        resnext_groups=1),
    'mmseg':
    dict(
        norm_eval=False,
        out_indices=(0, 1, 2, 3),
        stem_channels=64,
        resnext_groups=1),
    'mmpretrain':
    dict(
        norm_eval=False,
        out_indices=(3, ),
        stem_channels=64,
        resnext_groups=32),
}


def host_library() -> str:
    """``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``: the current MMEngine
    default scope when it is one of them, otherwise ``'mmdet'``.

    >>> from mmengine.registry import DefaultScope
    >>> with DefaultScope.overwrite_default_scope('mmpretrain'):
    ...     print(host_library())
    mmpretrain
    """
    scope = DefaultScope.get_current_instance()
    name = scope.scope_name if scope is not None else None
    return name if name in HOST_DEFAULTS else 'mmdet'


def check_out_indices(out_indices: Sequence[int],
                      num_stages: int) -> Tuple[int, ...]:
    """``out_indices`` as a tuple, negative ones counted from the end; each
    must name one of the ``num_stages`` stages.

    >>> check_out_indices([0, -1], 4)
    (0, 3)
    """
    out_indices = tuple(i + num_stages if i < 0 else i for i in out_indices)
    assert out_indices and all(0 <= i < num_stages for i in out_indices), \
        f'out_indices {out_indices} out of range for {num_stages} stages'
    return out_indices


def check_drop_path_rate(drop_path_rate: float) -> None:
    """Stochastic depth's largest rate must be in [0, 1)."""
    assert 0. <= drop_path_rate < 1., \
        f'drop_path_rate must be in [0, 1), got {drop_path_rate}'


def linear_drop_path_rates(drop_path_rate: float,
                           num_blocks: int) -> List[float]:
    """Drop-path rates rising linearly from 0 at the first block to
    ``drop_path_rate`` at the last (Huang et al., "Deep Networks with
    Stochastic Depth", ECCV 2016).

    >>> linear_drop_path_rates(0.5, 3)
    [0.0, 0.25, 0.5]
    """
    return [
        drop_path_rate * i / max(num_blocks - 1, 1) for i in range(num_blocks)
    ]


def check_dense_args(num_connections: int, pad_mode: str) -> None:
    """The dense pattern's N (any int >= 1) and ``pad_mode``."""
    if not isinstance(num_connections, int) or num_connections < 1:
        raise ValueError('num_connections (N) must be an int >= 1, got '
                         f'{num_connections!r}')
    if pad_mode not in PAD_MODES:
        raise ValueError(
            f"pad_mode must be 'masked' or 'paper', got {pad_mode!r}")


def freeze_modules(modules: Iterable[nn.Module]) -> None:
    """Eval mode and no gradient for every module given."""
    for m in modules:
        m.eval()
        for param in m.parameters():
            param.requires_grad = False


class GatedBackbone(BaseModule):
    """Base of the registered backbones.

    Subclasses define ``_freeze_stages()`` and may set ``norm_eval``
    (every BatchNorm, the gates' and pools' included, stays in eval mode
    while training).
    """
    norm_eval = False

    def _freeze_stages(self) -> None:
        """Freeze what ``frozen_stages`` names (subclasses)."""

    def train(self, mode: bool = True) -> 'GatedBackbone':
        """Freeze stages again, and keep BNs (gate norms too) in eval mode
        when ``norm_eval`` is set."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def optional_pretrained_key(self, key: str, missing: bool) -> bool:
        """Whether a checkpoint may lack (``missing``) or have in excess a
        key without failing the strict ``Pretrained`` load (none here;
        backbones name what a classification checkpoint legitimately lacks
        or adds)."""
        return False

    def init_weights(self) -> None:
        """Random init from ``init_cfg``, or a strict load of a checkpoint
        (mmgate or the authors' timm layout) for ``type='Pretrained'``."""
        if not load_if_pretrained(self):
            super().init_weights()
