"""YOLO txt detection data, converted to COCO JSON.

The layout most annotation tools export (Ultralytics, Roboflow, CVAT):
``images/{train,val}/`` and ``labels/{train,val}/`` (a label file per image,
same name with ``.txt``; also ``train/images`` + ``train/labels`` and
``valid/`` for val), the class names in ``data.yaml`` (``names:`` as a list
or ``{id: name}``; its ``train:`` / ``val:`` folders are taken when they
exist under the dataset folder) or ``classes.txt`` (one name a line). Each
label line is ``class cx cy w h``: the class index and the box centre and
size as fractions of the image. An image without a label file, or with an
empty one, has no objects (as Ultralytics reads it). Without a val folder, a
val split is made.

The conversion writes COCO boxes in pixels ``[cx - w / 2, cy - h / 2, w,
h] x image size`` (the size read from the image's header).

Records, decided per case (a :class:`~mmgate.datasets.checks.DataError`
names the label file and line; a :class:`~mmgate.datasets.checks.DataWarning`
what is dropped or changed):

- a line that is not five numbers (YOLO segmentation polygons included):
  error;
- a class index that is not an integer in ``0 .. number of classes - 1``:
  error;
- coordinates outside 0-1 or a negative size (labels in pixels, not
  normalised): error, as Ultralytics refuses such a label file;
- a box under 1 pixel wide or high: dropped with a warning (MMDetection's
  ``CocoDataset`` drops it);
- a box that reaches beyond its image: clipped to it, one warning per
  split;
- a label file without an image: a warning (it is not used);
- a ``data.yaml`` that does not parse or names no classes, an image whose
  header does not read: error.

Example:
    >>> spec = read_yolo('data/trees', work_dir='work')  # doctest: +SKIP
    >>> spec.layout, spec.paths['val_ann']  # doctest: +SKIP
    ('yolo', 'work/data/instances_val.json')
"""
import math
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Tuple

from .checks import DataError, DataWarning
from .class_list import read_class_file, unique_names
from .coco import CocoSplit, coco_categories, det_spec
from .spec import DatasetSpec
from .split_checks import image_size
from .splits import VAL_FRACTION
from .voc import IMAGE_EXTENSIONS, clip_boxes_warning

__all__ = ['is_yolo', 'read_yolo']

# image folders tried per split (relative to the dataset folder)
SPLIT_DIRS = {
    'train': ('images/train', 'train/images'),
    'val': ('images/val', 'images/valid', 'val/images', 'valid/images'),
}
# numbers may be off 0-1 by rounding in the exporting tool
TOLERANCE = 1e-6


def is_yolo(root: str) -> bool:
    """``root`` has a YOLO class list and a train image folder."""
    lists = any(
        osp.isfile(osp.join(root, f))
        for f in ('data.yaml', 'data.yml', 'classes.txt'))
    return lists and any(
        osp.isdir(osp.join(root, d)) for d in SPLIT_DIRS['train'])


def _yaml_file(root: str) -> Optional[str]:
    return next(
        (osp.join(root, f)
         for f in ('data.yaml', 'data.yml') if osp.isfile(osp.join(root, f))),
        None)


def _read_yaml(path: str) -> dict:
    import yaml
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        where = getattr(e, 'problem_mark', None)
        at = f' (line {where.line + 1})' if where is not None else ''
        raise DataError(f'{path} is not valid YAML{at}: '
                        f'{getattr(e, "problem", e)}') from None
    if not isinstance(data, dict):
        raise DataError(f'{path} holds no mapping (names: ..., train: ..., '
                        'val: ...)')
    return data


def _classes(root: str, data: Optional[dict],
             yaml_file: Optional[str]) -> Tuple[Tuple[str, ...], str]:
    if data is not None and data.get('names') is not None:
        names = data['names']
        if isinstance(names, dict):
            keys = sorted(names)
            if keys != list(range(len(keys))):
                raise DataError(f'{yaml_file}: names has the ids {keys}; '
                                'they must be 0 .. number of classes - 1')
            names = [names[k] for k in keys]
        if not isinstance(names, list) or not names:
            raise DataError(f'{yaml_file}: names must be a list of class '
                            'names or a {id: name} mapping')
        names = unique_names(names, f'{yaml_file} names')
        nc = data.get('nc')
        if nc is not None and nc != len(names):
            raise DataError(f'{yaml_file}: nc is {nc}, but names lists '
                            f'{len(names)} classes')
        return names, yaml_file
    class_file = osp.join(root, 'classes.txt')
    if osp.isfile(class_file):
        return read_class_file(class_file)[0], class_file
    raise DataError(f'{root}: no class names: give them in data.yaml '
                    '(names: [...]) or classes.txt (one a line)')


def _image_dir(root: str, split: str, data: Optional[dict]) -> Optional[str]:
    """The image folder of ``split``: ``data.yaml``'s entry when it is a
    folder under ``root``, else the usual places."""
    candidates = []
    entry = (data or {}).get(split)
    if isinstance(entry, str):
        rel = entry
        while rel.startswith(('../', './')):
            rel = rel.split('/', 1)[1]
        candidates += [entry, rel]
    candidates += list(SPLIT_DIRS[split])
    for c in candidates:
        path = osp.normpath(osp.join(root, c))
        if osp.isdir(path) and path.startswith(osp.normpath(root)):
            return path
    return None


def _label_dir(img_dir: str) -> str:
    """Ultralytics' rule: the last ``images`` folder becomes ``labels``."""
    parts = img_dir.split(os.sep)
    i = len(parts) - 1 - parts[::-1].index('images')
    return os.sep.join(parts[:i] + ['labels'] + parts[i + 1:])


def _parse_line(line: str, where: str, num_classes: int, source: str):
    parts = line.split()
    if len(parts) != 5:
        kind = ' (a segmentation polygon?)' if len(parts) > 5 else ''
        raise DataError(f'{where}: "{line}" has {len(parts)} numbers{kind}:'
                        ' a YOLO detection label is "class cx cy w h"')
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise DataError(f'{where}: "{line}" is not five numbers (class cx '
                        'cy w h)') from None
    cls = values[0]
    if cls != int(cls) or not 0 <= cls < num_classes:
        raise DataError(f'{where}: class {parts[0]} is not one of the '
                        f'{num_classes} classes of {source} (0-'
                        f'{num_classes - 1})')
    cx, cy, w, h = values[1:]
    if not all(math.isfinite(v) for v in values[1:]) or w < 0 or h < 0 or \
            not all(-TOLERANCE <= v <= 1 + TOLERANCE for v in values[1:]):
        raise DataError(f'{where}: "{line}" has coordinates outside 0-1 or '
                        'a negative size: YOLO labels are the box centre and'
                        ' size as fractions of the image (not pixels)')
    return int(cls), cx, cy, w, h


def _read_split(img_dir: str, classes: tuple, class_source: str,
                root: str) -> Tuple[dict, List[str], int]:
    """COCO data of one split, the clipped boxes, and the number of images
    without a label file."""
    label_dir = _label_dir(img_dir)
    files = sorted(
        f for f in os.listdir(img_dir) if f.lower().endswith(IMAGE_EXTENSIONS))
    stems = {osp.splitext(f)[0] for f in files}
    if osp.isdir(label_dir):
        for f in sorted(os.listdir(label_dir)):
            if f.endswith('.txt') and osp.splitext(f)[0] not in stems:
                warnings.warn(
                    f'{osp.join(label_dir, f)} has no image in '
                    f'{img_dir}: it is not used',
                    DataWarning,
                    stacklevel=3)
    images, annotations, clipped, unlabelled = [], [], [], 0
    for name in files:
        w, h = image_size(osp.join(img_dir, name))
        image_id = len(images) + 1
        images.append(dict(id=image_id, file_name=name, width=w, height=h))
        label = osp.join(label_dir, osp.splitext(name)[0] + '.txt')
        if not osp.isfile(label):
            unlabelled += 1
            continue
        with open(label, encoding='utf-8') as f:
            lines = f.read().splitlines()
        for num, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f'{label}:{num}'
            cls, cx, cy, bw, bh = _parse_line(line.strip(), where,
                                              len(classes), class_source)
            x1, y1 = (cx - bw / 2) * w, (cy - bh / 2) * h
            x2, y2 = (cx + bw / 2) * w, (cy + bh / 2) * h
            box = [max(x1, 0.), max(y1, 0.), min(x2, w), min(y2, h)]
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                warnings.warn(
                    f'{where}: "{line.strip()}" is a box under 1 '
                    f'pixel wide or high in its {w}x{h} image: the '
                    'record is skipped, as MMDetection does',
                    DataWarning,
                    stacklevel=3)
                continue
            if box != [x1, y1, x2, y2]:
                clipped.append(f'{osp.basename(label)}:{num}')
            bw_px, bh_px = box[2] - box[0], box[3] - box[1]
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=cls + 1,
                    bbox=[round(v, 3) for v in (box[0], box[1], bw_px, bh_px)],
                    area=round(bw_px * bh_px, 3),
                    iscrowd=0))
    data = dict(
        images=images,
        annotations=annotations,
        categories=coco_categories(classes))
    return data, clipped, unlabelled


def read_yolo(root: str,
              work_dir: Optional[str] = None,
              val_fraction: float = VAL_FRACTION,
              seed: int = 0) -> DatasetSpec:
    """Read a YOLO txt folder as COCO data; see the module docstring.

    Raises:
        DataError: A broken ``data.yaml`` or label line, a class index out
            of range, an unreadable image, no train image folder.
    """
    yaml_file = _yaml_file(root)
    data = _read_yaml(yaml_file) if yaml_file else None
    classes, class_source = _classes(root, data, yaml_file)
    splits: Dict[str, CocoSplit] = {}
    notes = []
    for split in ('train', 'val'):
        img_dir = _image_dir(root, split, data)
        if img_dir is None:
            if split == 'train':
                raise DataError(f'{root} has no train image folder (tried '
                                f'{", ".join(SPLIT_DIRS["train"])})')
            continue
        coco, clipped, unlabelled = _read_split(img_dir, classes, class_source,
                                                root)
        source = _label_dir(img_dir)
        clip_boxes_warning(f'{source} ({split})', clipped)
        if unlabelled:
            notes.append(f'{unlabelled} of the {len(coco["images"])} images '
                         f'in {img_dir} have no label file: they train as '
                         'images without objects')
        splits[split] = CocoSplit(coco, source, osp.relpath(img_dir, root))
    spec = det_spec(
        root,
        'yolo',
        splits,
        work_dir,
        val_fraction,
        seed,
        ann_source='the label files in ' + splits['train'].source)
    spec.notes[:0] = [
        f'yolo layout: classes from {class_source}; converted to COCO JSON: ' +
        ', '.join(sorted(spec.derived))
    ] + notes
    return spec
