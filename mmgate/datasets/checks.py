"""Check a config's data before a run starts.

A missing data root, a broken annotation file or a corrupt image otherwise
surfaces minutes into a run as a traceback from inside a DataLoader worker or
pycocotools. :func:`check_data` runs in ``tools/train.py`` and
``tools/test.py`` before the Runner is built and raises :class:`DataError`,
whose message names the file (and the config key that points at it):

1. every dataset of the phase (wrappers such as ``RepeatDataset`` and
   ``ConcatDataset`` are unwrapped): its ``data_root`` and ``ann_file`` exist;
   a JSON annotation file parses, and a COCO one has consistent images,
   annotations and categories;
2. the dataset is built through its registry (as the Runner would, without
   its pipeline); a failure is reported with the dataset's files;
3. every image / segmentation map it lists exists, and, for datasets of at
   most ``max_decode`` samples (all of them with ``decode='all'``), decodes.

Only local paths are checked; remote backends (``s3://`` ...) are skipped.
A problem the check did not see (an image of a large dataset that does not
decode) is still reported by the tools as one line, through
:func:`explain_data_error`.

COCO records, decided per case (an error is a :class:`DataError` naming the
file and the record; "skipped" is what MMDetection 3.x does anyway, and here
a :class:`DataWarning` names the file and the record, the first
``MAX_NAMED_SKIPS`` of each file, then their count):

- a ``bbox`` with a negative width or height: error (no valid
  ``[x, y, w, h]`` has one; often ``[x1, y1, x2, y2]`` written by mistake);
- a ``bbox`` under 1 pixel wide or high, a zero ``area``, or a box wholly
  outside its image: skipped (``CocoDataset.parse_data_info`` drops it;
  COCO itself has such boxes);
- a polygon with fewer than 3 points: skipped (``LoadAnnotations`` drops the
  polygon, and ignores the instance when no polygon is left); a polygon with
  an odd number of coordinates is malformed: error;
- a ``category_id`` that ``categories`` does not list, an ``image_id`` that
  ``images`` does not list: error (MMDetection would silently drop every
  such box);
- two ``images`` (or two ``annotations``) with the same ``id``: error
  (pycocotools keeps the last, so a training image or an evaluated box
  silently vanishes);
- an image whose decoded size differs from its record's ``width`` /
  ``height``: error (MMDetection clips and filters boxes by the record).
"""
import json
import os.path as osp
import re
import warnings
from typing import Iterator, List, Optional, Sequence, Tuple

__all__ = [
    'DataError', 'DataWarning', 'check_data', 'check_dataset_cfg',
    'check_coco_json', 'explain_data_error'
]

# skipped records named one by one per annotation file, then counted
MAX_NAMED_SKIPS = 5


class DataError(ValueError):
    """Input data a run cannot use; the message names the file."""


class DataWarning(UserWarning):
    """A record the run will skip, as MMDetection skips it; the message
    names the file and the record."""


def _is_local(path: str) -> bool:
    return '://' not in str(path)


def _join(root: Optional[str], path: str) -> str:
    if not path or not root or osp.isabs(path) or not _is_local(path):
        return path
    return osp.join(root, path)


def _walk(dataset_cfg: dict, key: str) -> Iterator[Tuple[dict, str]]:
    """Leaf dataset configs and their config keys (wrappers unwrapped)."""
    if isinstance(dataset_cfg.get('dataset'), dict):
        yield from _walk(dataset_cfg['dataset'], key + '.dataset')
    elif isinstance(dataset_cfg.get('datasets'), (list, tuple)):
        for i, sub in enumerate(dataset_cfg['datasets']):
            yield from _walk(sub, f'{key}.datasets.{i}')
    else:
        yield dataset_cfg, key


def _load_json(path: str, what: str):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f'{what} {path} is not valid JSON (line {e.lineno}, '
                        f'column {e.colno}: {e.msg})') from None
    except UnicodeDecodeError as e:
        raise DataError(f'{what} {path} is not a UTF-8 text file ({e})') \
            from None


def check_coco_json(path: str) -> dict:
    """Parse a COCO annotation file and check that it is consistent.

    Raises:
        DataError: The file is missing, is not JSON, or an entry is
            malformed; the message names the file and the entry.
    """
    if not osp.isfile(path):
        raise DataError(f'annotation file {path} does not exist')
    data = _load_json(path, 'annotation file')
    if not isinstance(data, dict):
        raise DataError(f'annotation file {path} holds a '
                        f'{type(data).__name__}, not a COCO dict')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data.get(key), list):
            raise DataError(f'annotation file {path} has no "{key}" list '
                            '(not a COCO instances file)')

    def bad(kind, i, entry, why):
        return DataError(f'annotation file {path}: {kind}[{i}] {why}: '
                         f'{json.dumps(entry)[:200]}')

    skipped = []

    def skip(i, entry, why, action='the record is skipped'):
        skipped.append(f'annotation file {path}: annotations[{i}] {why}: '
                       f'{action}, as MMDetection does: '
                       f'{json.dumps(entry)[:200]}')

    images = {}
    for i, img in enumerate(data['images']):
        if not isinstance(img, dict) or not {'id', 'file_name'} <= set(img):
            raise bad('images', i, img, 'needs "id" and "file_name"')
        if img['id'] in images:
            raise bad(
                'images', i, img, f'has the same id {img["id"]} as '
                f'images[{images[img["id"]][0]}]')
        images[img['id']] = (i, img)
    cat_ids = set()
    for i, cat in enumerate(data['categories']):
        if not isinstance(cat, dict) or not {'id', 'name'} <= set(cat):
            raise bad('categories', i, cat, 'needs "id" and "name"')
        cat_ids.add(cat['id'])
    ann_ids = {}
    for i, ann in enumerate(data['annotations']):
        if not isinstance(ann, dict):
            raise bad('annotations', i, ann, 'is not a dict')
        if 'id' in ann:
            if ann['id'] in ann_ids:
                raise bad(
                    'annotations', i, ann, f'has the same id '
                    f'{ann["id"]} as annotations[{ann_ids[ann["id"]]}]')
            ann_ids[ann['id']] = i
        if ann.get('image_id') not in images:
            raise bad(
                'annotations', i, ann,
                f'refers to an unknown image_id {ann.get("image_id")} '
                '(not in "images")')
        if ann.get('category_id') not in cat_ids:
            raise bad(
                'annotations', i, ann, 'refers to an unknown category_id '
                f'{ann.get("category_id")} (not in "categories")')
        bbox = ann.get('bbox')
        if not (isinstance(bbox, list) and len(bbox) == 4
                and all(isinstance(v, (int, float)) for v in bbox)):
            raise bad('annotations', i, ann,
                      'needs "bbox": [x, y, w, h] with w, h >= 0')
        x, y, w, h = bbox
        if w < 0 or h < 0:
            raise bad(
                'annotations', i, ann,
                'has a "bbox" with a negative width or height (COCO '
                'boxes are [x, y, w, h], not [x1, y1, x2, y2])')
        area = ann.get('area')
        img = images[ann['image_id']][1]
        if w < 1 or h < 1 or (isinstance(area, (int, float)) and area <= 0):
            skip(i, ann, 'has a box under 1 pixel wide or high, or a zero '
                 'area')
            continue
        sized = all(
            isinstance(img.get(k), (int, float)) for k in ('width', 'height'))
        if sized and (min(x + w, img['width']) - max(x, 0) <= 0
                      or min(y + h, img['height']) - max(y, 0) <= 0):
            skip(
                i, ann, f'has a box outside its {img["width"]}x'
                f'{img["height"]} image')
            continue
        seg = ann.get('segmentation')
        if seg is None:
            continue
        if isinstance(seg, list):
            ok = all(
                isinstance(p, list) and len(p) % 2 == 0 and all(
                    isinstance(v, (int, float)) for v in p) for p in seg)
        else:
            ok = isinstance(seg, dict) and {'counts', 'size'} <= set(seg)
        if not ok:
            raise bad(
                'annotations', i, ann,
                'has a "segmentation" that is neither polygons '
                '(lists of >= 3 x, y pairs) nor RLE')
        if isinstance(seg, list) and any(len(p) < 6 for p in seg):
            left = any(len(p) >= 6 for p in seg)
            skip(
                i, ann, 'has a polygon with fewer than 3 points',
                'the polygon is dropped' if left else 'the polygon is '
                'dropped and the instance ignored (no polygon is left)')
    for message in skipped[:MAX_NAMED_SKIPS]:
        warnings.warn(message, DataWarning, stacklevel=2)
    if len(skipped) > MAX_NAMED_SKIPS:
        warnings.warn(
            f'annotation file {path}: '
            f'{len(skipped) - MAX_NAMED_SKIPS} more records '
            'skipped for these reasons (not listed)',
            DataWarning,
            stacklevel=2)
    return data


def _decoded_size(path: str, as_loaded: bool = False):
    """``(width, height)`` of a decodable image, else None. ``as_loaded``
    decodes as MMCV's ``LoadImageFromFile`` does (colour, EXIF orientation
    applied); otherwise unchanged (segmentation maps)."""
    import cv2
    import numpy as np
    buf = np.fromfile(path, dtype=np.uint8)
    if buf.size == 0:
        return None
    img = cv2.imdecode(buf,
                       cv2.IMREAD_COLOR if as_loaded else cv2.IMREAD_UNCHANGED)
    return None if img is None else (img.shape[1], img.shape[0])


def _build(dataset_cfg: dict, default_scope: Optional[str]):
    """Build the dataset as the Runner would, without its pipeline."""
    from mmengine.registry import DATASETS, init_default_scope
    if default_scope:
        init_default_scope(default_scope)
    return DATASETS.build(dict(dataset_cfg, pipeline=[], lazy_init=False))


def check_dataset_cfg(dataset_cfg: dict,
                      key: str = 'dataset',
                      default_scope: Optional[str] = None,
                      decode: str = 'auto',
                      max_decode: int = 2000) -> int:
    """Check one dataset config (wrappers included).

    Args:
        dataset_cfg (dict): A ``*_dataloader.dataset`` config.
        key (str): Its config key, used in messages.
        default_scope (str, optional): Registry scope to build it in
            ('mmdet', 'mmseg', 'mmpretrain').
        decode (str): 'auto' decodes every image of a dataset with at most
            ``max_decode`` samples, 'all' of any dataset, 'none' none.
        max_decode (int): See ``decode``.

    Returns:
        int: The number of samples checked.

    Raises:
        DataError: The first problem found, naming the file.
    """
    if decode not in ('auto', 'all', 'none'):
        raise ValueError(f"decode must be 'auto', 'all' or 'none', got "
                         f'{decode!r}')
    total = 0
    for leaf, leaf_key in _walk(dataset_cfg, key):
        name = leaf.get('type', 'dataset')
        name = name if isinstance(name, str) else name.__name__
        root = leaf.get('data_root')
        if root and _is_local(root) and not osp.isdir(root):
            raise DataError(
                f'data root {root} of {name} ({leaf_key}.data_root) does not '
                f'exist: put the data there or pass --cfg-options '
                f'{leaf_key}.data_root=<path>')
        ann_file = _join(root, leaf.get('ann_file') or '')
        records = {}  # image id -> index in a COCO file's "images"
        if ann_file and _is_local(ann_file):
            if not osp.isfile(ann_file):
                raise DataError(f'annotation file {ann_file} of {name} '
                                f'({leaf_key}.ann_file) does not exist')
            if ann_file.endswith('.json'):
                if 'coco' in name.lower():
                    coco = check_coco_json(ann_file)
                    records = {
                        img['id']: i
                        for i, img in enumerate(coco['images'])
                    }
                else:
                    _load_json(ann_file, 'annotation file')
        try:
            dataset = _build(leaf, default_scope)
        except DataError:
            raise
        except Exception as e:
            files = ', '.join(f for f in (root, ann_file) if f)
            raise DataError(
                f'{name} ({leaf_key}) cannot be read from {files or "?"}: '
                f'{type(e).__name__}: {e}') from e
        if len(dataset) == 0:
            raise DataError(f'{name} ({leaf_key}) has no samples in '
                            f'{ann_file or root or "?"}')
        paths: List[str] = []
        sizes = {}  # image path -> (width, height, image id) of its record
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            paths += [
                info[k] for k in ('img_path', 'seg_map_path')
                if isinstance(info.get(k), str) and _is_local(info[k])
            ]
            if isinstance(info.get('img_path'), str) and all(
                    isinstance(info.get(k), int) for k in ('width', 'height')):
                sizes[info['img_path']] = (info['width'], info['height'],
                                           info.get('img_id'))
        for path in paths:
            if not osp.isfile(path):
                raise DataError(
                    f'{path}, listed by {ann_file or root} ({name}, '
                    f'{leaf_key}), does not exist')
        if decode == 'all' or (decode == 'auto'
                               and len(dataset) <= max_decode):
            for path in paths:
                size = _decoded_size(path, as_loaded=path in sizes)
                if size is None:
                    raise DataError(
                        f'{path} ({name}, {leaf_key}) is not a readable '
                        'image: the file is corrupt or not an image')
                if path in sizes and size != sizes[path][:2]:
                    w, h, img_id = sizes[path]
                    record = (f'images[{records[img_id]}]'
                              if img_id in records else f'image {img_id}')
                    raise DataError(
                        f'{path} ({name}, {leaf_key}) is {size[0]}x{size[1]} '
                        f'pixels, but its record {record} in {ann_file} says '
                        f'{w}x{h} (width x height)')
        total += len(dataset)
    return total


_RUNTIME_PATTERNS = (
    # mmcv's LoadImageFromFile when a file does not decode
    (re.compile(r'failed to load image: (\S+)'),
     '{} is not a readable image: the file is corrupt or not an image'),
    # any loader opening a file that is gone
    (re.compile(r"No such file or directory: '([^']+)'"), '{} does not exist'),
)


def explain_data_error(exc: BaseException) -> Optional[DataError]:
    """A :class:`DataError` for an exception a run raised while reading its
    data (also from inside a DataLoader worker, whose traceback arrives as
    text), or None when the exception is about something else."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for pattern, template in _RUNTIME_PATTERNS:
            # a worker's traceback text quotes the raising source line
            # (``f'failed to load image: {filename}'``) before the message
            found = [m for m in pattern.findall(str(exc)) if '{' not in m]
            if found:
                return DataError(
                    template.format(found[-1]) +
                    ' (found while reading the data; '
                    '--check-data all checks every image '
                    'before a run)')
        exc = exc.__cause__ or exc.__context__
    return None


def check_data(cfg,
               phases: Sequence[str] = ('train', 'val'),
               decode: str = 'auto',
               max_decode: int = 2000) -> None:
    """Check the datasets (and COCO evaluator files) of a run's phases.

    Args:
        cfg (Config): The run's config.
        phases (Sequence[str]): Among 'train', 'val', 'test'; a phase whose
            ``{phase}_dataloader`` or ``{phase}_cfg`` is missing or None is
            skipped, as the Runner skips it.

    Raises:
        DataError: The first problem found.

    Warns:
        DataWarning: A record that will be skipped (once per record).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', DataWarning)
        _check_phases(cfg, phases, decode, max_decode)
    # a file read for a dataset and for its evaluator warns once
    seen = set()
    for w in caught:
        if issubclass(w.category, DataWarning) and str(w.message) in seen:
            continue
        seen.add(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _check_phases(cfg, phases, decode, max_decode) -> None:
    scope = cfg.get('default_scope')
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader or cfg.get(f'{phase}_cfg') is None:
            continue
        check_dataset_cfg(loader['dataset'], f'{phase}_dataloader.dataset',
                          scope, decode, max_decode)
        evaluator = cfg.get(f'{phase}_evaluator')
        for i, metric in enumerate(
                evaluator if isinstance(evaluator, (list,
                                                    tuple)) else [evaluator]):
            ann = metric.get('ann_file') if isinstance(metric, dict) else None
            if ann and _is_local(ann) and 'coco' in str(
                    metric.get('type', '')).lower():
                try:
                    check_coco_json(ann)
                except DataError as e:
                    raise DataError(f'{e} ({phase}_evaluator.ann_file)') \
                        from None
