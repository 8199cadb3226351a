"""Published numbers of the Gate-Module backbones, as data.

Everything here is copied from the spec (``gated-backbones.md``, sections 3
and 6), which collects the authors' tables; nothing is measured. The report
(``report.py``) compares a run with these numbers only when the run is the
published *setting*: same task, method, dataset and a full-size backbone.

Backbone names are canonical: ``ResNet-50``, ``ResNeXt-50-32x4d``,
``ConvNeXt-T`` and their gated twins ``SkipResNet-50``,
``SkipResNeXt-50-32x4d``, ``SkipConvNeXt-T`` (stem variants such as V1c map
to the same name, see ``report.describe_backbone``).
"""
from typing import Dict, NamedTuple, Optional

__all__ = [
    'Setting', 'SETTINGS', 'PAPER_RESULTS', 'PAPER_COMPLEXITY',
    'paper_result', 'paper_complexity'
]


class Setting(NamedTuple):
    """What a run must be for the published numbers of a task to apply.

    Attributes:
        method (str): Name of the method in the paper.
        model_types (tuple[str]): ``cfg.model.type`` values of that method.
        heads (tuple[str]): Required decode/roi head types (empty: any).
        dataset_types (tuple[str]): ``dataset.type`` values of the dataset.
        dataset (str): Dataset name for the report.
        num_classes (int): Classes of the published setting.
    """
    method: str
    model_types: tuple
    heads: tuple
    dataset_types: tuple
    dataset: str
    num_classes: int


SETTINGS: Dict[str, Setting] = {
    'det': Setting('Cascade Mask R-CNN', ('CascadeRCNN', ), ('mask_head', ),
                   ('CocoDataset', ), 'COCO', 80),
    'seg': Setting('UPerNet', ('EncoderDecoder', ), ('UPerHead', ),
                   ('ADE20KDataset', ), 'ADE20k', 150),
    'cls': Setting('ImageNet classifier (224 px)', ('ImageClassifier', ), (),
                   ('ImageNet', ), 'ImageNet-1k', 1000),
}


def _pairs(task_metrics, table):
    """``{(task, name): {metric: value}}`` from ``{base: (base, skip)}``
    rows; a row is a tuple of per-metric tuples."""
    out = {}
    for backbone, (base, skip) in table.items():
        out[(task_metrics[0], backbone)] = dict(zip(task_metrics[1], base))
        out[(task_metrics[0], 'Skip' + backbone)] = dict(
            zip(task_metrics[1], skip))
    return out


# Values in percent, keyed by (task, backbone) -> {report metric: value}.
# Report metric names are those of ``report.TASK_METRICS``.
PAPER_RESULTS: Dict[tuple, Dict[str, float]] = {
    # ImageNet top-1 at 224 (median of 3-5 runs)
    **_pairs(('cls', ('top1', )), {
        'ResNet-34': ((75.53, ), (76.75, )),
        'ResNet-50': ((79.01, ), (80.41, )),
        'ResNet-101': ((80.36, ), (81.39, )),
        'ResNeXt-50-32x4d': ((79.73, ), (80.67, )),
        'ResNeXt-101-32x4d': ((80.66, ), (81.39, )),
        'ConvNeXt-T': ((81.57, ), (81.58, )),
        'ConvNeXt-S': ((83.14, ), (83.33, )),
        'ConvNeXt-B': ((83.55, ), (83.37, )),
    }),
    # COCO, Cascade Mask R-CNN: box mAP / mask mAP
    **_pairs(('det', ('box_mAP', 'mask_mAP')), {
        'ResNet-50': ((44.81, 38.98), (47.72, 41.42)),
        'ResNet-101': ((44.81, 38.82), (48.22, 42.01)),
        'ResNeXt-50-32x4d': ((45.45, 39.47), (47.45, 41.30)),
        'ResNeXt-101-32x4d': ((46.09, 39.82), (48.86, 42.24)),
    }),
    # ADE20k, UPerNet: aAcc / mIoU
    **_pairs(('seg', ('aAcc', 'mIoU')), {
        'ResNet-50': ((80.19, 41.94), (80.16, 42.44)),
        'ResNet-101': ((81.01, 44.02), (81.38, 44.43)),
        'ResNeXt-50-32x4d': ((80.36, 42.69), (80.74, 43.39)),
        'ResNeXt-101-32x4d': ((81.14, 44.07), (81.85, 45.65)),
    }),
}

# Classification models at 224x224, classifier included:
# name -> (params in M, FLOPs in G or None). Spec section 3.
PAPER_COMPLEXITY: Dict[str, tuple] = {
    'ResNet-18': (11.69, None), 'SkipResNet-18': (12.13, None),
    'ResNet-34': (21.80, 3.681), 'SkipResNet-34': (22.72, 3.694),
    'ResNet-50': (25.56, 4.138), 'SkipResNet-50': (40.15, 4.201),
    'ResNet-101': (44.55, 7.874), 'SkipResNet-101': (83.36, 8.017),
    'ResNet-152': (60.19, None), 'SkipResNet-152': (121.98, None),
    'ResNeXt-50-32x4d': (25.03, 4.292), 'SkipResNeXt-50-32x4d': (39.63, 4.355),
    'ResNeXt-101-32x4d': (44.18, 8.063),
    'SkipResNeXt-101-32x4d': (82.99, 8.205),
    'ConvNeXt-T': (28.59, 4.569), 'SkipConvNeXt-T': (31.14, 4.591),
    'ConvNeXt-S': (50.22, 8.863), 'SkipConvNeXt-S': (56.58, 8.912),
    'ConvNeXt-B': (88.59, 15.58), 'SkipConvNeXt-B': (99.85, 15.65),
}


def paper_result(task: str, backbone: str) -> Optional[Dict[str, float]]:
    """Published metrics of ``backbone`` on ``task`` ('det', 'seg', 'cls'),
    or None when the paper has none."""
    return PAPER_RESULTS.get((task, backbone))


def paper_complexity(name: str) -> Optional[tuple]:
    """``(params M, FLOPs G or None)`` of a classification model at 224."""
    return PAPER_COMPLEXITY.get(name)
