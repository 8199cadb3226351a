"""Data utilities: the readers of users' dataset folders, the pre-run data
checks and the embedded demo sets.

- :func:`read_dataset` (``readers.py``): a dataset folder as a
  :class:`DatasetSpec`, one reader per layout (:data:`LAYOUTS`): COCO,
  Pascal VOC and YOLO txt for detection (``coco.py``, ``voc.py``,
  ``yolo.py``; VOC and YOLO converted to COCO JSON), index / palette PNGs
  and ADE20k for segmentation (``seg.py``), ImageFolder and the ImageNet
  list layout for classification (``cls.py``); a val split made when the
  data have none (``splits.py``);
- :func:`check_splits` (``split_checks.py``): checks across the splits;
- :func:`check_data` (``checks.py``): a config's datasets, before a run;
- ``demo_data.py``: the demo sets.

Nothing here registers a dataset: every layout is read by a stock dataset
class of MMDetection, MMSegmentation or MMPretrain.
"""
from .checks import (DataError, DataWarning, check_coco_json, check_data,
                     check_dataset_cfg, explain_data_error)
from .demo_data import (ADE20K_DEMO_CLASSES, DEMO_CLASSES, make_ade20k_demo,
                        make_coco_demo, make_demo_data, make_imagenet_demo)
from .readers import LAYOUTS, Layout, detect_layout, read_dataset
from .spec import DatasetSpec, MaskCoverage
from .split_checks import SplitInfo, check_splits
from .splits import VAL_FRACTION, split_indices

__all__ = [
    'DataError', 'DataWarning', 'check_coco_json', 'check_data',
    'check_dataset_cfg', 'explain_data_error', 'DEMO_CLASSES',
    'ADE20K_DEMO_CLASSES', 'make_demo_data', 'make_coco_demo',
    'make_ade20k_demo', 'make_imagenet_demo', 'LAYOUTS', 'Layout',
    'detect_layout', 'read_dataset', 'DatasetSpec', 'MaskCoverage',
    'SplitInfo', 'check_splits', 'VAL_FRACTION', 'split_indices'
]
