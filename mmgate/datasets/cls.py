"""Image classification data, read by MMPretrain's ``CustomDataset``.

Two layouts:

- ``imagefolder``: ``train/<class>/*`` (and ``val/<class>/*``); the classes
  are the sorted sub-folder names, as ``CustomDataset`` reads them.
  Without ``val/``, a val split is made, stratified by class
  (``WORKDIR/splits/{train,val}.txt`` of ``<class>/<file> <label>`` lines,
  both read from ``train/``);
- ``imagenet``: ``meta/train.txt`` and ``meta/val.txt`` of ``<path>
  <label>`` lines, train images in class folders (``train/<class>/...``),
  val images in ``val/``; the classes in label order, named by their
  train folders.

Bad data: a list line that is not ``<path> <label>``, a label used for two
folders or missing from ``0 .. number of classes - 1``, a val label no
train image has: an error naming the file and the line (missing or
undecodable images are found by ``checks.check_data``).
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

from .checks import DataError
from .spec import DatasetSpec
from .split_checks import SplitInfo
from .splits import VAL_FRACTION, split_indices, split_message, split_path

__all__ = ['CLS_EXTENSIONS', 'read_cls']

# what MMPretrain's CustomDataset reads
CLS_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif')


def _folder(root: str, split: str) -> Tuple[Tuple[str, ...], list]:
    """Classes and ``(path relative to the split folder, label)`` of an
    ImageFolder split."""
    folder = osp.join(root, split)
    classes = tuple(
        sorted(
            d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d))))
    samples = []
    for label, cls in enumerate(classes):
        for dirpath, _, names in sorted(os.walk(osp.join(folder, cls))):
            for f in sorted(names):
                if f.lower().endswith(CLS_EXTENSIONS):
                    samples.append((osp.relpath(osp.join(dirpath, f),
                                                folder), label))
    return classes, samples


def _info(split: str, source: str, folder: str, classes: tuple,
          samples: list) -> SplitInfo:
    counts = {c: 0 for c in classes}
    for _, label in samples:
        counts[classes[label]] += 1
    return SplitInfo(split, source, classes, counts,
                     [osp.join(folder, p) for p, _ in samples])


def _read_imagefolder(root: str, work_dir: Optional[str], val_fraction: float,
                      seed: int) -> DatasetSpec:
    classes, train = _folder(root, 'train')
    paths = dict(train_img='train', val_img='val')
    derived, notes = {}, []
    if osp.isdir(osp.join(root, 'val')):
        val_classes, val = _folder(root, 'val')
        sources = {
            'train': osp.join(root, 'train'),
            'val': osp.join(root, 'val')
        }
    else:
        if work_dir is None:
            raise ValueError(f'{root} has no val split: a work_dir is '
                             'needed to write the split made for it')
        chosen = set(
            split_indices(
                len(train),
                val_fraction,
                seed,
                labels=[lab for _, lab in train],
                source=osp.join(root, 'train')))
        val = [s for i, s in enumerate(train) if i in chosen]
        train = [s for i, s in enumerate(train) if i not in chosen]
        val_classes = classes
        sources = {}
        for split, samples in (('train', train), ('val', val)):
            path = split_path(work_dir, split, 'txt')
            derived[path] = ''.join(f'{p} {lab}\n' for p, lab in samples)
            paths[f'{split}_img'], paths[f'{split}_ann'] = 'train', path
            sources[split] = path
        notes.append(
            split_message(root, val_fraction, seed, path,
                          'train images, stratified by class'))
    infos = {
        'train':
        _info('train', sources['train'], osp.join(root, paths['train_img']),
              classes, train),
        'val':
        _info('val', sources['val'], osp.join(root, paths['val_img']),
              val_classes, val),
    }
    return DatasetSpec(
        'cls',
        root,
        'imagefolder',
        classes,
        infos['train'],
        infos['val'],
        paths,
        num_train=len(train),
        ann_source=osp.join(root, 'train'),
        derived=derived,
        notes=notes,
        work_dir=work_dir)


def _read_list(path: str) -> List[Tuple[str, int]]:
    samples = []
    with open(path, encoding='utf-8') as f:
        for num, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(' ', 1)
            if len(parts) != 2 or not parts[1].isdigit():
                raise DataError(f'{path}:{num}: "{line}" is not '
                                '"<image path> <label>"')
            samples.append((parts[0], int(parts[1])))
    return samples


def _read_imagenet(root: str) -> DatasetSpec:
    train_list = osp.join(root, 'meta', 'train.txt')
    val_list = osp.join(root, 'meta', 'val.txt')
    names: Dict[int, str] = {}
    train = _read_list(train_list)
    for path, label in train:
        if '/' not in path:
            raise DataError(f'{train_list}: {path} is not in a class '
                            'folder (train/<class>/...), so its class has '
                            'no name')
        folder = path.split('/')[0]
        if names.setdefault(label, folder) != folder:
            raise DataError(f'{train_list}: label {label} is used for the '
                            f'folders {names[label]} and {folder}')
    labels = sorted(names)
    if labels and labels != list(range(len(labels))):
        missing = sorted(set(range(max(labels) + 1)) - set(labels))
        raise DataError(f'{train_list}: no image has the label(s) '
                        f'{", ".join(map(str, missing))}: labels must be '
                        '0 .. number of classes - 1')
    classes = tuple(names[i] for i in labels)
    val = _read_list(val_list)
    for path, label in val:
        if label not in names:
            raise DataError(
                f'class names differ between train ({train_list}) and val '
                f'({val_list}): val has label {label} ({path}), which no '
                'train image has')
    infos = dict(
        train=_info('train', train_list, osp.join(root, 'train'), classes,
                    train),
        val=_info('val', val_list, osp.join(root, 'val'), classes, val))
    return DatasetSpec(
        'cls',
        root,
        'imagenet',
        classes,
        infos['train'],
        infos['val'],
        dict(
            train_img='train',
            train_ann='meta/train.txt',
            val_img='val',
            val_ann='meta/val.txt'),
        num_train=len(train),
        ann_source=train_list)


def read_cls(root: str,
             work_dir: Optional[str] = None,
             val_fraction: float = VAL_FRACTION,
             seed: int = 0) -> DatasetSpec:
    """Read a classification folder (see the module docstring)."""
    if not osp.isdir(osp.join(root, 'train')):
        raise DataError(f'{osp.join(root, "train")} does not exist: a '
                        'classification dataset has train/<class>/ folders '
                        '(and val/<class>/), or the ImageNet layout with '
                        'meta/train.txt and meta/val.txt')
    if osp.isfile(osp.join(root, 'meta', 'train.txt')) and \
            osp.isfile(osp.join(root, 'meta', 'val.txt')):
        return _read_imagenet(root)
    return _read_imagefolder(root, work_dir, val_fraction, seed)
