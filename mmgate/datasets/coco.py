"""COCO-format detection data, and the detection spec every det reader
ends in.

Every detection layout is read by MMDetection's ``CocoDataset`` and
evaluated by its ``CocoMetric``: a COCO folder as it is, Pascal VOC and YOLO
after a conversion to COCO JSON in the work directory (``voc.py``,
``yolo.py``). :func:`det_spec` takes the COCO dicts of the splits, makes a
val split by image when there is none, counts what the annotations hold
(boxes only, masks, a mix: :class:`~mmgate.datasets.spec.MaskCoverage`) and
returns the :class:`~mmgate.datasets.spec.DatasetSpec`.

A COCO folder: ``annotations/*train*.json`` (and ``*val*.json``; also the
files in the folder itself), the images where the first ``file_name`` of a
file is found (``train2017/``, ``train/``, ``images/train/``, ``images/``
or the folder itself). The records are checked by
:func:`mmgate.datasets.checks.check_coco_json` (errors and the records
MMDetection skips, named).

Example:
    >>> spec = read_coco('data/demo/coco')  # doctest: +SKIP
    >>> spec.paths['train_ann'], spec.masks.kind  # doctest: +SKIP
    ('annotations/instances_train2017.json', 'all')
"""
import glob
import json
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional

from .checks import DataError, check_coco_json
from .class_list import unique_names
from .spec import DatasetSpec, MaskCoverage
from .split_checks import SplitInfo
from .splits import VAL_FRACTION, split_indices, split_message, split_path

__all__ = [
    'CocoSplit', 'find_coco_ann', 'read_coco', 'det_spec', 'coco_categories',
    'coco_json'
]


@dataclass
class CocoSplit:
    """One split of a detection dataset as COCO data.

    Attributes:
        data (dict): The COCO dict (``images``, ``annotations``,
            ``categories``).
        source (str): The user's file or folder it was read from (named in
            messages).
        img_dir (str): The image folder, relative to the dataset root.
        ann_file (str, optional): The user's COCO file when it is used as
            it is; None for data to write in the work directory.
    """
    data: dict
    source: str
    img_dir: str
    ann_file: Optional[str] = None


def find_coco_ann(root: str,
                  split: str,
                  required: bool = True) -> Optional[str]:
    """The COCO file of ``split`` in ``root/annotations`` or ``root``: the
    one JSON file with ``split`` in its name (``instances_*`` first).

    Raises:
        DataError: None (when ``required``), or several.
    """
    folders = [osp.join(root, 'annotations'), root]
    for folder in folders:
        found = sorted(
            f for f in glob.glob(osp.join(folder, '*.json'))
            if split in osp.basename(f).lower()
            and not (split == 'val' and 'train' in osp.basename(f).lower()))
        if len(found) > 1:
            instances = [
                f for f in found if osp.basename(f).startswith('instances_')
            ]
            if len(instances) == 1:
                return instances[0]
            names = ', '.join(osp.basename(f) for f in found)
            raise DataError(f'several {split} annotation files in {folder} '
                            f'({names}): keep one')
        if found:
            return found[0]
    if not required:
        return None
    raise DataError(
        f'no {split} annotation file in {folders[0]} or {root}: a COCO '
        f'dataset needs a JSON file with "{split}" in its name, e.g. '
        f'annotations/instances_{split}.json')


def _image_dir(root: str, ann_file: str, images: list, split: str) -> str:
    """The folder (relative to ``root``) that holds the images of
    ``ann_file``: tried where COCO and common exports put them."""
    if not images:
        return split
    stem = osp.splitext(osp.basename(ann_file))[0]
    sub = stem[len('instances_'):] if stem.startswith('instances_') else stem
    candidates = []
    for c in (sub, split, osp.join('images',
                                   sub), osp.join('images',
                                                  split), 'images', ''):
        if c not in candidates:
            candidates.append(c)
    first = images[0]['file_name']
    for c in candidates:
        if osp.isfile(osp.join(root, c, first)):
            return c
    tried = ', '.join(osp.join(root, c, first) for c in candidates)
    raise DataError(f'{first}, the first image of {ann_file}, is not in '
                    f'{root}: tried {tried}')


def read_coco(root: str,
              work_dir: Optional[str] = None,
              val_fraction: float = VAL_FRACTION,
              seed: int = 0) -> DatasetSpec:
    """Read a COCO-format detection / instance segmentation folder (a val
    file is optional: without one, a split is made, see :func:`det_spec`).

    Raises:
        DataError: A missing or broken annotation file, or images that are
            not where the annotation file says.
    """
    splits = {}
    for split in ('train', 'val'):
        ann_file = find_coco_ann(root, split, required=split == 'train')
        if ann_file is None:
            continue
        data = check_coco_json(ann_file)
        splits[split] = CocoSplit(
            data, ann_file, _image_dir(root, ann_file, data['images'], split),
            ann_file)
    return det_spec(root, 'coco', splits, work_dir, val_fraction, seed)


def coco_categories(classes) -> List[dict]:
    """COCO ``categories`` of ``classes``, ids from 1."""
    return [dict(id=i + 1, name=c) for i, c in enumerate(classes)]


def coco_json(data: dict) -> str:
    """A COCO dict as the text of its file."""
    return json.dumps(data, separators=(',', ':')) + '\n'


def _classes(split: CocoSplit) -> tuple:
    cats = sorted(split.data['categories'], key=lambda c: c['id'])
    return unique_names([c['name'] for c in cats],
                        f'annotation file {split.source}: categories')


def _subset(data: dict, image_ids: set) -> dict:
    out = {k: v for k, v in data.items() if k not in ('images', 'annotations')}
    out['images'] = [i for i in data['images'] if i['id'] in image_ids]
    out['annotations'] = [
        a for a in data['annotations'] if a['image_id'] in image_ids
    ]
    return out


def _make_val(root: str, train: CocoSplit, work_dir: Optional[str],
              fraction: float, seed: int):
    """Split ``train`` by image into train and val files of the work
    directory; returns them and the line that says so."""
    if work_dir is None:
        raise ValueError(f'{root} has no val split: a work_dir is needed to '
                         'write the split made for it')
    images = train.data['images']
    val_ids = {
        images[i]['id']
        for i in split_indices(
            len(images), fraction, seed, source=train.source)
    }
    train_ids = {i['id'] for i in images} - val_ids
    out = {}
    for split, ids in (('train', train_ids), ('val', val_ids)):
        out[split] = CocoSplit(
            _subset(train.data, ids), train.source, train.img_dir)
    path = split_path(work_dir, 'val', 'json')
    return out, split_message(root, fraction, seed, path)


def _split_info(name: str, split: CocoSplit, root: str, classes: tuple,
                source: str) -> SplitInfo:
    name_of = {c['id']: c['name'] for c in split.data['categories']}
    counts = {c: 0 for c in classes}
    for ann in split.data['annotations']:
        counts[name_of[ann['category_id']]] += 1
    images, sizes = [], {}
    for img in split.data['images']:
        path = osp.join(root, split.img_dir, img['file_name'])
        images.append(path)
        w, h = img.get('width'), img.get('height')
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            sizes[path] = (w, h)
    return SplitInfo(
        name,
        source,
        classes,
        counts,
        images,
        sizes,
        needs_instances=name == 'train')


def _mask_coverage(splits: Dict[str, CocoSplit]) -> MaskCoverage:
    instances = with_masks = 0
    per_image: Dict[tuple, List[bool]] = {}
    for name, split in splits.items():
        for ann in split.data['annotations']:
            has = bool(ann.get('segmentation'))
            instances += 1
            with_masks += has
            per_image.setdefault((name, ann['image_id']), []).append(has)
    return MaskCoverage(instances, with_masks, len(per_image),
                        sum(all(v) for v in per_image.values()))


def det_spec(root: str,
             layout: str,
             splits: Dict[str, CocoSplit],
             work_dir: Optional[str] = None,
             val_fraction: float = VAL_FRACTION,
             seed: int = 0,
             ann_source: Optional[str] = None) -> DatasetSpec:
    """The spec of a detection dataset given as COCO data per split.

    A split without ``ann_file`` (converted data) is written to
    ``WORKDIR/data/instances_<split>.json``. Without a ``'val'`` split, a
    seeded share of the train images becomes one and both are written to
    ``WORKDIR/splits/{train,val}.json``.

    Args:
        root (str): The dataset folder.
        layout (str): Its layout's name.
        splits (dict[str, CocoSplit]): ``'train'`` and optionally
            ``'val'``.
        work_dir (str, optional): Where derived files go (needed when there
            are any).
        val_fraction (float): Share of train images for a made val split.
        seed (int): Seed of the made split.
        ann_source (str, optional): What messages name as the annotations
            (default: the train split's source).
    """
    notes, derived, paths = [], {}, {}
    made = 'val' not in splits
    if made:
        splits, note = _make_val(root, splits['train'], work_dir, val_fraction,
                                 seed)
        notes.append(note)
    infos = {}
    for name, split in splits.items():
        if split.ann_file is not None:
            ann = osp.relpath(split.ann_file, root)
            source = split.ann_file
        else:
            if work_dir is None:
                raise ValueError(f'{root} ({layout}) is converted to COCO '
                                 'JSON: a work_dir is needed to write it')
            ann = split_path(work_dir, name, 'json') if made else osp.join(
                work_dir, 'data', f'instances_{name}.json')
            derived[ann] = coco_json(split.data)
            source = ann if made else split.source
        paths[f'{name}_ann'] = ann
        paths[f'{name}_img'] = split.img_dir
        infos[name] = _split_info(name, split, root, _classes(split), source)
    annotated = {a['image_id'] for a in splits['train'].data['annotations']}
    num_train = sum(i['id'] in annotated
                    for i in splits['train'].data['images'])
    return DatasetSpec(
        'det',
        root,
        layout,
        infos['train'].classes,
        infos['train'],
        infos['val'],
        paths,
        num_train,
        masks=_mask_coverage(splits),
        ann_source=ann_source or splits['train'].source,
        derived=derived,
        notes=notes,
        work_dir=work_dir)
