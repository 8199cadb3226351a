from .pretrained import (load_checkpoint_file, load_if_pretrained,
                         load_pretrained_weights)
from .timm_convert import convert_timm_checkpoint, detect_timm_layout

__all__ = [
    'load_checkpoint_file', 'load_pretrained_weights', 'load_if_pretrained',
    'convert_timm_checkpoint', 'detect_timm_layout'
]
