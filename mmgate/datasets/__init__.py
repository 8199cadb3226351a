"""Data utilities: the embedded demo sets and the pre-run data checks.

Nothing here registers a dataset: the demo sets are written in the formats of
the stock COCO, ADE20k and ImageNet datasets of MMDetection, MMSegmentation
and MMPretrain.
"""
from .checks import (DataError, DataWarning, check_coco_json, check_data,
                     check_dataset_cfg, explain_data_error)
from .demo_data import (ADE20K_DEMO_CLASSES, DEMO_CLASSES, make_ade20k_demo,
                        make_coco_demo, make_demo_data, make_imagenet_demo)
from .split_checks import SplitInfo, check_splits  # noqa: F401

__all__ = [
    'DataError', 'DataWarning', 'check_coco_json', 'check_data',
    'check_dataset_cfg',
    'explain_data_error',
    'DEMO_CLASSES', 'ADE20K_DEMO_CLASSES', 'make_demo_data',
    'make_coco_demo', 'make_ade20k_demo', 'make_imagenet_demo'
]
