"""Semantic segmentation data: label-map PNGs of class indices.

Three layouts, read by MMSegmentation's datasets as they are:

- ``ade20k``: ``images/{training,validation}/*.jpg`` +
  ``annotations/...*.png`` (also under ``ADEChallengeData2016/``) with
  ADE20k's class ids (0 = unlabelled, ``reduce_zero_label``); the classes
  are the ADE20k classes the label maps hold (``ADE20KDataset``);
- ``seg-index``: ``classes.txt`` (one class a line, ``name`` or ``name R G
  B``), ``img_dir/train/`` + ``ann_dir/train/*.png`` (and ``.../val/``):
  grey label maps whose value is the class index, 255 = ignore
  (``BaseSegDataset``);
- ``seg-palette``: the same folders with palette PNGs (mode ``P``, as VOC
  and most annotation tools write them): the palette index is the class
  (MMSegmentation reads the indices), the colours of the first file's
  palette become ``metainfo['palette']`` unless ``classes.txt`` gives
  them.

Without ``img_dir/val``, a val split is made by image
(``WORKDIR/splits/{train,val}.txt``, image names without extension, read
through ``BaseSegDataset``'s ``ann_file``).

Bad data: a label map that is missing, does not decode or has colour
channels, a value above the number of classes (and not 255), images of
several extensions: an error naming the file.
"""
import os
import os.path as osp
from typing import Dict, List, Optional

from .checks import DataError
from .class_list import read_class_file
from .spec import DatasetSpec
from .split_checks import SplitInfo
from .splits import VAL_FRACTION, split_indices, split_message, split_path

__all__ = ['SEG_EXTENSIONS', 'ADE20K_LAYOUT', 'read_seg', 'read_label_map']

# what MMSegmentation's datasets read
SEG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff')
ADE20K_LAYOUT = ('images/training', 'images/validation',
                 'annotations/training', 'annotations/validation')


def read_label_map(path: str):
    """``(values, mode, palette)`` of a label map: the class indices it
    holds (sorted), its PIL mode and, for a palette PNG, its colours as
    ``[[r, g, b], ...]``. Read as MMSegmentation reads it (pillow,
    unchanged: a palette PNG gives its indices).

    Raises:
        DataError: Missing, not decodable, or colour channels.
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError
    if not osp.isfile(path):
        raise DataError(f'{path} does not exist')
    try:
        with Image.open(path) as img:
            mode = img.mode
            palette = img.getpalette() if mode == 'P' else None
            label = np.asarray(img)
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f'{path} is not a readable image: the file is '
                        f'corrupt or not an image ({e})') from None
    if label.ndim != 2:
        raise DataError(f'{path} is a {mode} image with {label.shape[2]} '
                        'channels: a label map holds one class index per '
                        'pixel (grey or palette PNG)')
    colours = None if palette is None else [
        palette[i:i + 3] for i in range(0, len(palette), 3)
    ]
    return np.unique(label), mode, colours


def _pairs(root: str, img_dir: str, ann_dir: str) -> List[tuple]:
    """(image, label map) paths of one folder pair; the label map is the
    image's name with ``.png``."""
    folder = osp.join(root, img_dir)
    images = sorted(
        f for f in os.listdir(folder) if f.lower().endswith(SEG_EXTENSIONS))
    pairs = []
    for f in images:
        label = osp.join(root, ann_dir, osp.splitext(f)[0] + '.png')
        if not osp.isfile(label):
            raise DataError(f'{label}, the label map of '
                            f'{osp.join(folder, f)}, does not exist')
        pairs.append((osp.join(folder, f), label))
    return pairs


def read_seg(root: str,
             work_dir: Optional[str] = None,
             val_fraction: float = VAL_FRACTION,
             seed: int = 0) -> DatasetSpec:
    """Read a semantic segmentation folder (see the module docstring)."""
    ade_root = next(
        (r for r in (root, osp.join(root, 'ADEChallengeData2016')) if all(
            osp.isdir(osp.join(r, d)) for d in ADE20K_LAYOUT)), None)
    class_file = osp.join(root, 'classes.txt')
    if ade_root is not None:
        return _read_ade20k(ade_root)
    if osp.isfile(class_file):
        return _read_folders(root, class_file, work_dir, val_fraction, seed)
    raise DataError(
        f'{root} is no segmentation dataset: expected classes.txt with '
        'img_dir/train (+ val) and ann_dir/train (+ val) (PNG label maps '
        'of class indices, grey or palette, 255 = ignore), or the ADE20k '
        'layout images/{training,validation} + '
        'annotations/{training,validation}')


def _read_ade20k(root: str) -> DatasetSpec:
    from mmseg.datasets import ADE20KDataset
    ade_classes = ADE20KDataset.METAINFO['classes']
    splits, present = {}, set()
    for split, folder in (('train', 'training'), ('val', 'validation')):
        pairs = _pairs(root, f'images/{folder}', f'annotations/{folder}')
        counts: Dict[int, int] = {}
        for _, label in pairs:
            for v in read_label_map(label)[0].tolist():
                if v > len(ade_classes) and v != 255:
                    raise DataError(
                        f'{label} holds the value {v}: ADE20k label maps '
                        f'hold class ids 1-{len(ade_classes)} (0 = '
                        'unlabelled)')
                if 0 < v <= len(ade_classes):
                    counts[v] = counts.get(v, 0) + 1
        present |= set(counts)
        splits[split] = (pairs, counts)
    if not present:
        raise DataError(f'the label maps under {root}/annotations hold no '
                        'ADE20k class (only 0, unlabelled)')
    classes = tuple(ade_classes[v - 1] for v in sorted(present))
    infos = {}
    for split, (pairs, counts) in splits.items():
        infos[split] = SplitInfo(
            split,
            osp.join(root, 'images',
                     'training' if split == 'train' else 'validation'),
            classes, {
                ade_classes[v - 1]: n
                for v, n in counts.items()
            }, [p[0] for p in pairs])
    return DatasetSpec(
        'seg',
        root,
        'ade20k',
        classes,
        infos['train'],
        infos['val'],
        dict(
            train_img='images/training',
            train_seg='annotations/training',
            val_img='images/validation',
            val_seg='annotations/validation'),
        num_train=len(infos['train'].images),
        img_suffix='.jpg',
        ann_source=osp.join(root, 'annotations'))


def _scan(pairs: List[tuple], classes: tuple, class_file: str):
    """Per-class image counts, label-map modes and the first palette."""
    counts = {c: 0 for c in classes}
    modes: Dict[str, str] = {}
    palette = None
    for _, label in pairs:
        values, mode, colours = read_label_map(label)
        modes.setdefault(mode, label)
        if palette is None and colours is not None:
            palette = colours
        for v in values.tolist():
            if v == 255:
                continue
            if v >= len(classes):
                raise DataError(
                    f'{label} holds the value {v}, but {class_file} lists '
                    f'{len(classes)} classes (0-{len(classes) - 1}; 255 = '
                    'ignore)')
            counts[classes[v]] += 1
    return counts, modes, palette


def _read_folders(root: str, class_file: str, work_dir: Optional[str],
                  val_fraction: float, seed: int) -> DatasetSpec:
    classes, palette = read_class_file(class_file)
    for d in ('img_dir/train', 'ann_dir/train'):
        if not osp.isdir(osp.join(root, d)):
            raise DataError(f'{osp.join(root, d)} does not exist: a dataset '
                            'with classes.txt keeps its images in '
                            'img_dir/train (+ val) and its label maps in '
                            'ann_dir/train (+ val)')
    has_val = osp.isdir(osp.join(root, 'img_dir', 'val'))
    folders = {
        s: (f'img_dir/{s}', f'ann_dir/{s}')
        for s in (('train', 'val') if has_val else ('train', ))
    }
    pairs = {s: _pairs(root, *d) for s, d in folders.items()}
    paths, notes, derived = {}, [], {}
    if not has_val:
        if work_dir is None:
            raise ValueError(f'{root} has no val split: a work_dir is '
                             'needed to write the split made for it')
        train = pairs['train']
        val_idx = set(
            split_indices(
                len(train),
                val_fraction,
                seed,
                source=osp.join(root, 'img_dir/train')))
        pairs = dict(
            train=[p for i, p in enumerate(train) if i not in val_idx],
            val=[p for i, p in enumerate(train) if i in val_idx])
        for split in ('train', 'val'):
            path = split_path(work_dir, split, 'txt')
            derived[path] = ''.join(
                osp.splitext(osp.basename(img))[0] + '\n'
                for img, _ in pairs[split])
            paths[f'{split}_ann'] = path
        notes.append(split_message(root, val_fraction, seed, path))
        folders['val'] = folders['train']
    infos, modes, first_palette = {}, {}, None
    suffixes = set()
    for split in ('train', 'val'):
        counts, split_modes, colours = _scan(pairs[split], classes, class_file)
        for mode, label in split_modes.items():
            modes.setdefault(mode, label)
        first_palette = first_palette or colours
        suffixes |= {osp.splitext(img)[1] for img, _ in pairs[split]}
        source = paths.get(f'{split}_ann') or osp.join(root, folders[split][0])
        infos[split] = SplitInfo(split, source, classes, counts,
                                 [img for img, _ in pairs[split]])
        paths[f'{split}_img'], paths[f'{split}_seg'] = folders[split]
    if len(suffixes) > 1:
        raise DataError(f'the images under {root}/img_dir have several '
                        f'extensions ({", ".join(sorted(suffixes))}); '
                        "MMSegmentation's BaseSegDataset reads one")
    if 'P' in modes and len(modes) > 1:
        other = next(m for m in modes if m != 'P')
        raise DataError(f'{modes["P"]} is a palette PNG but {modes[other]} '
                        f'a {other} image: keep the label maps of one kind')
    layout = 'seg-palette' if 'P' in modes else 'seg-index'
    if layout == 'seg-palette' and palette is None and \
            len(first_palette) >= len(classes):
        palette = [list(c) for c in first_palette[:len(classes)]]
    return DatasetSpec(
        'seg',
        root,
        layout,
        classes,
        infos['train'],
        infos['val'],
        paths,
        num_train=len(infos['train'].images),
        palette=palette,
        img_suffix=suffixes.pop() if suffixes else '.jpg',
        ann_source=osp.join(root, 'ann_dir'),
        derived=derived,
        notes=notes,
        work_dir=work_dir)
