"""What every mmgate backbone shares: ``frozen_stages`` / ``norm_eval`` in
``train()`` and strict loading of ``init_cfg=dict(type='Pretrained')``
(MMPretrain's ``BaseBackbone`` plays the same part)."""
from typing import Iterable

import torch.nn as nn
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..utils import load_if_pretrained

__all__ = ['GatedBackbone', 'freeze_modules']


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
