"""Checks across the splits of a user's dataset, before a config is written.

:mod:`mmgate.datasets.checks` checks one config's datasets (files exist,
annotations parse, images decode). A dataset folder that a user brings for
fine-tuning (``tools/finetune.py``) can also be wrong as a whole:

* a split is empty (no images, or a detection train split without one
  annotated instance): an error;
* train and val name different classes (COCO ``categories``, ImageFolder
  sub-folders): an error, since the labels would mean different things;
* a class has no instance in train: a warning naming the class (the model
  cannot learn it; its val AP / IoU will be 0);
* an image is in both splits (the same file): a warning with their count
  and the first, since the val metric is then measured on training
  images;
* the images have very different sizes (longer side more than
  ``max_size_ratio`` apart): a warning naming the smallest and the largest,
  since the recipes resize every image to one scale.

Each split is described by a :class:`SplitInfo` that the dataset readers
(``mmgate.datasets.readers``) fill in; :func:`check_splits` raises
:class:`~mmgate.datasets.checks.DataError` for an error and returns the
warnings as one-line messages.
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .checks import DataError

__all__ = ['SplitInfo', 'check_splits', 'image_size']


@dataclass
class SplitInfo:
    """What the split checks need to know about one split.

    Attributes:
        name (str): ``'train'`` or ``'val'``.
        source (str): The file or folder the split is read from (named in
            messages).
        classes (tuple[str]): The classes the split declares, in label
            order (COCO categories by id, sub-folders, a class list).
        instances (dict[str, int]): Instances per class (objects for
            detection, images for classification, images showing the class
            for segmentation).
        images (list[str]): Paths of the split's images.
        sizes (dict[str, tuple[int, int]]): ``(width, height)`` of images
            whose size is known without reading them (COCO's ``width`` /
            ``height``); the others are read from their headers.
        needs_instances (bool): An empty ``instances`` makes the split empty
            (detection: images without one annotated object train nothing).
    """
    name: str
    source: str
    classes: Tuple[str, ...]
    instances: Dict[str, int] = field(default_factory=dict)
    images: List[str] = field(default_factory=list)
    sizes: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    needs_instances: bool = False


def image_size(path: str) -> Tuple[int, int]:
    """``(width, height)`` of an image as MMCV's ``LoadImageFromFile``
    decodes it, read from its header (an EXIF orientation that turns the
    image by 90 degrees swaps the two, as OpenCV applies it).

    Raises:
        DataError: The file is missing or not an image.
    """
    from PIL import Image, UnidentifiedImageError
    if not osp.isfile(path):
        raise DataError(f'{path} does not exist')
    try:
        with Image.open(path) as img:
            w, h = img.size
            # a JPEG's EXIF is read with its header (other formats would
            # decode the whole file for it)
            turned = img.format in ('JPEG', 'MPO') and \
                img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
            return (h, w) if turned else (w, h)
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f'{path} is not a readable image: the file is '
                        f'corrupt or not an image ({e})') from None


def _check_not_empty(split: SplitInfo) -> None:
    if not split.images:
        raise DataError(f'the {split.name} split ({split.source}) is empty: '
                        'it has no images')
    if split.needs_instances and not any(split.instances.values()):
        raise DataError(f'the {split.name} split ({split.source}) is empty: '
                        f'its {len(split.images)} images have no annotated '
                        'instance')


def _check_same_classes(train: SplitInfo, val: SplitInfo) -> None:
    if tuple(train.classes) == tuple(val.classes):
        return
    only_train = [c for c in train.classes if c not in val.classes]
    only_val = [c for c in val.classes if c not in train.classes]
    if only_train or only_val:
        parts = []
        if only_train:
            parts.append(f'only in train: {", ".join(only_train)}')
        if only_val:
            parts.append(f'only in val: {", ".join(only_val)}')
        why = '; '.join(parts)
    else:
        why = (f'same names in another order: train {", ".join(train.classes)}'
               f' / val {", ".join(val.classes)}')
    raise DataError(f'class names differ between train ({train.source}) and '
                    f'val ({val.source}): {why}')


def _size_warning(splits: Sequence[SplitInfo],
                  max_size_ratio: float) -> Optional[str]:
    smallest = largest = None  # (longer side, w, h, path, split)
    for split in splits:
        for path in split.images:
            w, h = split.sizes.get(path) or image_size(path)
            item = (max(w, h), w, h, path, split.name)
            if smallest is None or item[0] < smallest[0]:
                smallest = item
            if largest is None or item[0] > largest[0]:
                largest = item
    if smallest is None or largest[0] <= max_size_ratio * smallest[0]:
        return None
    return (f'images of very different sizes: {smallest[1]}x{smallest[2]} '
            f'({smallest[3]}, {smallest[4]}) to {largest[1]}x{largest[2]} '
            f'({largest[3]}, {largest[4]}), longer sides '
            f'{largest[0] / smallest[0]:.1f}x apart (more than '
            f'{max_size_ratio:g}x); the recipe resizes every image to one '
            'scale, so small ones are upsampled and large ones lose detail: '
            'resize them alike or set the pipeline scale in the written '
            'config')


def check_splits(train: SplitInfo,
                 val: SplitInfo,
                 max_size_ratio: float = 4.) -> List[str]:
    """Check the train and val splits of a dataset against each other.

    Args:
        train (SplitInfo): The train split.
        val (SplitInfo): The val split.
        max_size_ratio (float): Longer image sides further apart than this
            factor give a warning.

    Returns:
        list[str]: Warnings, one line each (a class with no instance in
        train, images in both splits, images of very different sizes).

    Raises:
        DataError: A split is empty, or train and val name different
            classes.
    """
    _check_not_empty(train)
    _check_not_empty(val)
    _check_same_classes(train, val)
    warnings = []
    for cls in train.classes:
        if not train.instances.get(cls):
            in_val = val.instances.get(cls, 0)
            warnings.append(
                f'class "{cls}" has no instance in train ({train.source})' +
                (f' but {in_val} in val' if in_val else '') +
                ': the model cannot learn it')
    both = sorted(
        set(map(osp.realpath, train.images))
        & set(map(osp.realpath, val.images)))
    if both:
        warnings.append(
            f'{len(both)} images are in both train ({train.source}) and val '
            f'({val.source}), e.g. {both[0]}: the val metric is then '
            'measured on training images')
    sizes = _size_warning((train, val), max_size_ratio)
    if sizes:
        warnings.append(sizes)
    return warnings
