"""Key remapping from the authors' released timm checkpoints to mmgate.

The published SkipResNet / SkipResNeXt / SkipConvNeXt weights
(github.com/takedarts/skipresnet-pretrained) are plain timm state dicts. mmgate
keeps MMDetection's ResNet layout and MMPretrain's ConvNeXt layout, so that
the non-gate weights have the names an OpenMMLab user knows. This module
maps one onto the other; it is applied at load time (``init_cfg``) and by
``tools/model_converters/skipnet_timm2mmgate.py``.

The result is an MMPretrain classifier state dict: backbone keys under
``backbone.``, the classifier under ``head.fc.``.
"""
import re
from collections import OrderedDict
from typing import Dict, Optional

from torch import Tensor

__all__ = ['detect_timm_layout', 'convert_timm_checkpoint']

_RESNET_MARK = re.compile(r'^layer\d+\.blocks\.\d+\.')
_CONVNEXT_MARK = re.compile(r'^stages\.\d+\.blocks\.\d+\.')


def detect_timm_layout(state_dict: Dict[str, Tensor]) -> Optional[str]:
    """'resnet', 'convnext', or None when the keys are not the timm ones."""
    keys = list(state_dict)
    if any(_RESNET_MARK.match(k) for k in keys):
        return 'resnet'
    if any(_CONVNEXT_MARK.match(k) for k in keys):
        return 'convnext'
    return None


def _resnet_key(key: str) -> Optional[str]:
    if key.startswith('fc.'):
        return 'head.' + key
    if key.startswith(('conv1.', 'bn1.')):
        return 'backbone.' + key
    m = re.match(r'^layer(\d+)\.downsample\.(.*)$', key)
    if m:
        return f'backbone.layer{m[1]}.0.downsample.{m[2]}'
    m = re.match(r'^layer(\d+)\.blocks\.(\d+)\.(.*)$', key)
    if m:
        rest = re.sub(r'^gate\.bn\.', 'gate.norm.', m[3])
        return f'backbone.layer{m[1]}.{m[2]}.{rest}'
    return None


_CONVNEXT_BLOCK = {
    'conv_dw': 'depthwise_conv',
    'norm': 'norm',
    'mlp.fc1': 'pointwise_conv1',
    'mlp.fc2': 'pointwise_conv2',
    'gamma': 'gamma',
    'gate.conv1': 'gate.conv1',
    'gate.bn': 'gate.norm',
    'gate.conv2': 'gate.conv2',
}


def _convnext_key(key: str) -> Optional[str]:
    m = re.match(r'^stem\.(\d)\.(.*)$', key)
    if m:
        return f'backbone.downsample_layers.0.{m[1]}.{m[2]}'
    m = re.match(r'^stages\.(\d+)\.downsample\.(\d)\.(.*)$', key)
    if m:
        return f'backbone.downsample_layers.{m[1]}.{m[2]}.{m[3]}'
    m = re.match(r'^stages\.(\d+)\.blocks\.(\d+)\.(.*)$', key)
    if m:
        for old, new in _CONVNEXT_BLOCK.items():
            if m[3] == old or m[3].startswith(old + '.'):
                return (f'backbone.stages.{m[1]}.{m[2]}.'
                        f'{new}{m[3][len(old):]}')
        return None
    if key.startswith('head.norm.'):
        return 'backbone.norm3.' + key[len('head.norm.'):]
    if key.startswith('head.fc.'):
        return key
    return None


def convert_timm_checkpoint(
        state_dict: Dict[str, Tensor],
        layout: Optional[str] = None) -> 'OrderedDict[str, Tensor]':
    """Map a timm SkipResNet / SkipConvNeXt state dict to mmgate's keys.

    Args:
        state_dict (dict): The timm state dict.
        layout (str, optional): 'resnet' or 'convnext'; detected if None.

    Returns:
        OrderedDict: ``backbone.*`` and ``head.fc.*`` keys.

    Raises:
        ValueError: The layout is unknown, or a key has no counterpart (the
            message lists them).
    """
    layout = layout or detect_timm_layout(state_dict)
    rename = {'resnet': _resnet_key, 'convnext': _convnext_key}.get(layout)
    if rename is None:
        raise ValueError(
            'not a timm SkipResNet/SkipConvNeXt checkpoint: no key like '
            '"layer1.blocks.0.conv1.weight" or "stages.0.blocks.0.conv_dw.'
            f'weight" (first keys: {list(state_dict)[:5]})')
    converted, unknown = OrderedDict(), []
    for key, value in state_dict.items():
        new_key = rename(key)
        if new_key is None:
            unknown.append(key)
        else:
            converted[new_key] = value
    if unknown:
        raise ValueError(f'{len(unknown)} keys of the timm {layout} '
                         f'checkpoint have no mmgate counterpart: '
                         f'{unknown[:20]}')
    return converted
