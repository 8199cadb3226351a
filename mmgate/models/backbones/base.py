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
from typing import Iterable

import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from ..utils import load_if_pretrained

__all__ = ['GatedBackbone', 'freeze_modules', 'host_library', 'HOST_DEFAULTS']

# What each host library's own ResNet / ResNeXt defaults to.
# (``stem_channels`` None: ``base_channels``.)
HOST_DEFAULTS = {
    'mmdet': dict(norm_eval=True, out_indices=(0, 1, 2, 3), stem_channels=None,
                  resnext_groups=1),
    'mmseg': dict(norm_eval=False, out_indices=(0, 1, 2, 3), stem_channels=64,
                  resnext_groups=1),
    'mmpretrain': dict(norm_eval=False, out_indices=(3, ), stem_channels=64,
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
