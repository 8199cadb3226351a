"""Fine-tune a gated backbone on a dataset folder: one command from the data
to a trained, tested model, and seeded base-vs-gated comparisons.

    mmgate-finetune DATA_DIR --task det --backbone skipresnet50
    python tools/finetune.py data/demo/coco --task det \\
        --backbone skipresnet18 --seeds 2 --compare base

Steps (:func:`main`):

1. read the dataset (:func:`read_dataset`): the classes and the files of its
   train and val splits, from a COCO folder (``annotations/*train*.json``,
   ``*val*.json`` and their image folders), a segmentation folder (ADE20k's
   ``images/`` + ``annotations/`` layout, or ``classes.txt`` with
   ``img_dir/`` + ``ann_dir/``) or a classification folder (ImageFolder
   ``train/<class>/``, ``val/<class>/``, or the ImageNet layout with
   ``meta/{train,val}.txt``);
2. check it (``mmgate.datasets.split_checks``): an empty split or classes
   that differ between train and val end the command with one line; a class
   without a train instance and images of very different sizes are warned
   about;
3. write a config (:func:`render_config`) that inherits the chosen mmgate
   recipe and changes only what the data need: the classes and every head's
   ``num_classes``, the data paths, a schedule scaled to the dataset size
   (:func:`scale_schedule`) and ``auto_scale_lr``; with ``--compare base``
   also its plain twin, which inherits it and swaps only the backbone;
4. train each config with ``tools/train.py`` (``tools/dist_train.sh`` for
   ``--gpus`` > 1) and test its last checkpoint with ``tools/test.py``, as
   subprocesses with the usual command lines, once or with seeds
   ``0 .. K-1`` (``--seeds K``, ``randomness.seed``);
5. write the benchmark report of the runs (``mmgate.analysis.report``):
   seeded runs are grouped (mean, standard deviation, 95 % interval) and
   gated runs are paired with base runs of the same seed.

Nothing here imports MMDetection, MMSegmentation or MMPretrain at import
time; reading a recipe config does, inside the functions.
"""
import argparse
import glob
import math
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mmgate.datasets.checks import DataError, check_coco_json, check_data
from mmgate.datasets.split_checks import SplitInfo, check_splits

__all__ = [
    'TASK_RECIPES', 'BACKBONES', 'DatasetSpec', 'RecipeSource', 'Schedule',
    'read_dataset', 'read_coco', 'read_seg', 'read_cls', 'resolve_recipe',
    'scale_schedule', 'render_config', 'render_twin_config', 'write_config',
    'train_command', 'test_command', 'parse_args', 'main', 'run'
]

PKG_DIR = osp.dirname(osp.abspath(__file__))

#: Recipes by task; the first is the default.
TASK_RECIPES = {
    'det': ('cascade-mask-rcnn', 'mask-rcnn', 'retinanet'),
    'seg': ('upernet', ),
    'cls': ('linear', ),
}
#: Gated backbones and their plain twins.
GATED_TWINS = {
    'skipresnet18': 'resnet18',
    'skipresnet50': 'resnet50',
    'skipresnet101': 'resnet101',
    'skipresnext50-32x4d': 'resnext50-32x4d',
    'skipresnext101-32x4d': 'resnext101-32x4d',
}
BACKBONES = tuple(GATED_TWINS) + tuple(GATED_TWINS.values())

# mmgate's recipes in configs/, by recipe ({} is the backbone name)
RECIPE_FILES = {
    'cascade-mask-rcnn': 'skipresnet/cascade-mask-rcnn_{}_fpn_ms-3x_coco.py',
    'upernet': 'skipresnet/upernet_{}_8xb2-160k_ade20k-512x512.py',
    'linear': 'skipresnet/{}_in1k-pre_8xb16-cos50e_cifar100-224px.py',
}
# SkipResNet-18 has no published ImageNet weights: its recipes are the CPU
# demo configs (half width, from scratch, small images; see README.md)
DEMO_FILES = {
    'cascade-mask-rcnn': 'demo/cascade_rcnn_skipresnet18_demo.py',
    'upernet': 'demo/upernet_skipresnet18_demo.py',
    'linear': 'demo/cls_skipresnet18_demo.py',
}
DEMO_BACKBONES = ('skipresnet18', 'resnet18')
# MMDetection's stock multi-scale 3x recipes, which mmgate has no config of
# its own for: the written config puts in the backbone of the Cascade Mask
# R-CNN recipe of the same backbone
STOCK_FILES = {
    'mask-rcnn': 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_ms-poly-3x_coco.py',
    'retinanet': 'mmdet::retinanet/retinanet_r50_fpn_ms-640-800-3x_coco.py',
}
# images per iteration that each recipe's learning rate and schedule are
# set for (its auto_scale_lr.base_batch_size), and, for an iteration-based
# recipe, the size of the train set it was set for (ADE20k: 20,210)
RECIPE_BATCH = {'cascade-mask-rcnn': 16, 'mask-rcnn': 16, 'retinanet': 16,
                'upernet': 16, 'linear': 128}
RECIPE_TRAIN_SIZE = {'upernet': 20210}
DEMO_BATCH = {'cascade-mask-rcnn': 2, 'upernet': 4, 'linear': 32}
DEMO_TRAIN_SIZE = {'upernet': 160}

# what MMPretrain's CustomDataset reads
CLS_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif')
SEG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff')
ADE20K_LAYOUT = ('images/training', 'images/validation',
                 'annotations/training', 'annotations/validation')


def resource_dir(name: str) -> str:
    """``configs`` or ``tools`` of the installed package (``mmgate/.mim/``,
    as setup.py places them), else of the checkout."""
    for path in (osp.join(PKG_DIR, '.mim', name),
                 osp.join(osp.dirname(PKG_DIR), name)):
        if osp.isdir(path):
            return osp.realpath(path)
    raise FileNotFoundError(f'mmgate\'s {name}/ folder is neither in '
                            f'{PKG_DIR}/.mim nor next to the package')


# ---- reading a dataset folder ---------------------------------------------


@dataclass
class DatasetSpec:
    """A dataset folder as a config needs it.

    Attributes:
        task (str): 'det', 'seg' or 'cls'.
        root (str): The folder (absolute).
        layout (str): 'coco', 'ade20k', 'seg-folders', 'imagefolder' or
            'imagenet'.
        classes (tuple[str]): Class names in label order.
        train (SplitInfo): The train split.
        val (SplitInfo): The val split.
        paths (dict[str, str]): Layout paths relative to ``root``
            (annotation files, image and label folders).
        num_train (int): Train samples that train (detection: images with
            at least one instance, as ``filter_empty_gt`` keeps them).
        palette (list, optional): Segmentation colours from ``classes.txt``.
        img_suffix (str, optional): Segmentation image extension.
    """
    task: str
    root: str
    layout: str
    classes: Tuple[str, ...]
    train: SplitInfo
    val: SplitInfo
    paths: Dict[str, str] = field(default_factory=dict)
    num_train: int = 0
    palette: Optional[List[List[int]]] = None
    img_suffix: Optional[str] = None

    @property
    def name(self) -> str:
        """A file-name-safe name of the dataset (its folder's name)."""
        return re.sub(r'[^A-Za-z0-9._-]+', '-', osp.basename(self.root))


def _find_coco_ann(root: str, split: str) -> str:
    folders = [osp.join(root, 'annotations'), root]
    for folder in folders:
        found = sorted(
            f for f in glob.glob(osp.join(folder, '*.json'))
            if split in osp.basename(f).lower() and not (
                split == 'val' and 'train' in osp.basename(f).lower()))
        if len(found) > 1:
            instances = [f for f in found
                         if osp.basename(f).startswith('instances_')]
            if len(instances) == 1:
                return instances[0]
            names = ', '.join(osp.basename(f) for f in found)
            raise DataError(f'several {split} annotation files in {folder} '
                            f'({names}): keep one')
        if found:
            return found[0]
    raise DataError(
        f'no {split} annotation file in {folders[0]} or {root}: a COCO '
        f'dataset needs a JSON file with "{split}" in its name, e.g. '
        f'annotations/instances_{split}.json')


def _coco_image_dir(root: str, ann_file: str, images: list,
                    split: str) -> str:
    """The folder (relative to ``root``) that holds the images of
    ``ann_file``: tried where COCO and common exports put them."""
    stem = osp.splitext(osp.basename(ann_file))[0]
    sub = stem[len('instances_'):] if stem.startswith('instances_') else stem
    candidates = []
    for c in (sub, split, osp.join('images', sub), osp.join('images', split),
              'images', ''):
        if c not in candidates:
            candidates.append(c)
    first = images[0]['file_name']
    for c in candidates:
        if osp.isfile(osp.join(root, c, first)):
            return c
    tried = ', '.join(osp.join(root, c, first) for c in candidates)
    raise DataError(f'{first}, the first image of {ann_file}, is not in '
                    f'{root}: tried {tried}')


def read_coco(root: str) -> DatasetSpec:
    """Read a COCO-format detection / instance segmentation folder.

    Raises:
        DataError: A missing or broken annotation file, or images that are
            not where the annotation file says.
    """
    splits, paths = {}, {}
    num_train = 0
    for split in ('train', 'val'):
        ann_file = _find_coco_ann(root, split)
        data = check_coco_json(ann_file)
        cats = sorted(data['categories'], key=lambda c: c['id'])
        names = [c['name'] for c in cats]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DataError(f'annotation file {ann_file}: category name(s) '
                            f'{", ".join(dup)} appear more than once')
        name_of = {c['id']: c['name'] for c in cats}
        counts = {n: 0 for n in names}
        annotated = set()
        for ann in data['annotations']:
            counts[name_of[ann['category_id']]] += 1
            annotated.add(ann['image_id'])
        img_dir = _coco_image_dir(root, ann_file, data['images'],
                                  split) if data['images'] else split
        images, sizes = [], {}
        for img in data['images']:
            path = osp.join(root, img_dir, img['file_name'])
            images.append(path)
            w, h = img.get('width'), img.get('height')
            if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
                sizes[path] = (w, h)
        if split == 'train':
            num_train = sum(img['id'] in annotated for img in data['images'])
        splits[split] = SplitInfo(
            split, ann_file, tuple(names), counts, images, sizes,
            needs_instances=split == 'train')
        paths[f'{split}_ann'] = osp.relpath(ann_file, root)
        paths[f'{split}_img'] = img_dir
    return DatasetSpec('det', root, 'coco', splits['train'].classes,
                       splits['train'], splits['val'], paths, num_train)


def _read_class_file(path: str) -> Tuple[Tuple[str, ...], Optional[list]]:
    """``classes.txt``: one class a line, ``name`` or ``name R G B``."""
    names, palette = [], []
    with open(path, encoding='utf-8') as f:
        for num, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            parts = line.split()
            if len(parts) == 4 and all(p.isdigit() for p in parts[1:]):
                names.append(parts[0])
                palette.append([int(p) for p in parts[1:]])
            elif len(parts) == 1:
                names.append(parts[0])
            else:
                raise DataError(f'{path}:{num}: "{line}" is neither a class '
                                'name nor "name R G B"')
    if not names:
        raise DataError(f'class list {path} names no class')
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f'class list {path}: {", ".join(dup)} listed more '
                        'than once')
    if palette and len(palette) != len(names):
        raise DataError(f'class list {path}: give a colour for every class '
                        'or for none')
    return tuple(names), palette or None


def _label_values(path: str):
    import cv2
    import numpy as np
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DataError(f'{path} is not a readable image: the file is '
                        'corrupt or not an image')
    if label.ndim != 2:
        raise DataError(f'{path} has {label.shape[2]} channels: a label map '
                        'holds one class index per pixel')
    return np.unique(label)


def _seg_pairs(root: str, img_dir: str, ann_dir: str) -> List[tuple]:
    """(image, label map) paths of one split; the label map is the
    image's name with ``.png``."""
    folder = osp.join(root, img_dir)
    images = sorted(f for f in os.listdir(folder)
                    if f.lower().endswith(SEG_EXTENSIONS))
    pairs = []
    for f in images:
        label = osp.join(root, ann_dir, osp.splitext(f)[0] + '.png')
        if not osp.isfile(label):
            raise DataError(f'{label}, the label map of '
                            f'{osp.join(folder, f)}, does not exist')
        pairs.append((osp.join(folder, f), label))
    return pairs


def read_seg(root: str) -> DatasetSpec:
    """Read a semantic segmentation folder: the ADE20k layout
    (``images/{training,validation}``, ``annotations/...`` with ADE20k's
    class ids, 0 = unlabelled; the classes are the ADE20k classes the label
    maps hold) or ``classes.txt`` with ``img_dir/{train,val}`` and
    ``ann_dir/{train,val}`` (label maps of class indices, 255 = ignore)."""
    ade_root = next((r for r in (root, osp.join(root, 'ADEChallengeData2016'))
                     if all(osp.isdir(osp.join(r, d))
                            for d in ADE20K_LAYOUT)), None)
    class_file = osp.join(root, 'classes.txt')
    if ade_root is not None:
        return _read_ade20k(ade_root)
    if osp.isfile(class_file):
        return _read_seg_folders(root, class_file)
    raise DataError(
        f'{root} is no segmentation dataset: expected classes.txt with '
        'img_dir/{train,val} and ann_dir/{train,val} (PNG label maps of '
        'class indices, 255 = ignore), or the ADE20k layout '
        'images/{training,validation} + annotations/{training,validation}')


def _read_ade20k(root: str) -> DatasetSpec:
    from mmseg.datasets import ADE20KDataset
    ade_classes = ADE20KDataset.METAINFO['classes']
    splits, present = {}, set()
    for split, folder in (('train', 'training'), ('val', 'validation')):
        pairs = _seg_pairs(root, f'images/{folder}',
                           f'annotations/{folder}')
        counts: Dict[int, int] = {}
        for _, label in pairs:
            for v in _label_values(label).tolist():
                if v > len(ade_classes) and v != 255:
                    raise DataError(
                        f'{label} holds the value {v}: ADE20k label maps '
                        f'hold class ids 1-{len(ade_classes)} (0 = '
                        'unlabelled)')
                if 0 < v <= len(ade_classes):
                    counts[v] = counts.get(v, 0) + 1
        present |= set(counts)
        splits[split] = (pairs, counts)
    classes = tuple(ade_classes[v - 1] for v in sorted(present))
    infos = {}
    for split, (pairs, counts) in splits.items():
        infos[split] = SplitInfo(
            split, osp.join(root, 'images',
                            'training' if split == 'train' else 'validation'),
            classes, {ade_classes[v - 1]: n for v, n in counts.items()},
            [p[0] for p in pairs])
    if not classes:
        raise DataError(f'the label maps under {root}/annotations hold no '
                        'ADE20k class (only 0, unlabelled)')
    return DatasetSpec(
        'seg', root, 'ade20k', classes, infos['train'], infos['val'],
        dict(train_img='images/training', train_seg='annotations/training',
             val_img='images/validation', val_seg='annotations/validation'),
        num_train=len(infos['train'].images), img_suffix='.jpg')


def _read_seg_folders(root: str, class_file: str) -> DatasetSpec:
    classes, palette = _read_class_file(class_file)
    infos, suffixes = {}, set()
    for split in ('train', 'val'):
        img_dir, ann_dir = f'img_dir/{split}', f'ann_dir/{split}'
        for d in (img_dir, ann_dir):
            if not osp.isdir(osp.join(root, d)):
                raise DataError(f'{osp.join(root, d)} does not exist: a '
                                'dataset with classes.txt keeps its images '
                                'in img_dir/{train,val} and its label maps '
                                'in ann_dir/{train,val}')
        pairs = _seg_pairs(root, img_dir, ann_dir)
        counts = {c: 0 for c in classes}
        for img, label in pairs:
            suffixes.add(osp.splitext(img)[1])
            for v in _label_values(label).tolist():
                if v == 255:
                    continue
                if v >= len(classes):
                    raise DataError(
                        f'{label} holds the value {v}, but {class_file} '
                        f'lists {len(classes)} classes (0-'
                        f'{len(classes) - 1}; 255 = ignore)')
                counts[classes[v]] += 1
        infos[split] = SplitInfo(split, osp.join(root, img_dir), classes,
                                 counts, [p[0] for p in pairs])
    if len(suffixes) > 1:
        raise DataError(f'the images under {root}/img_dir have several '
                        f'extensions ({", ".join(sorted(suffixes))}); '
                        "MMSegmentation's BaseSegDataset reads one")
    return DatasetSpec(
        'seg', root, 'seg-folders', classes, infos['train'], infos['val'],
        dict(train_img='img_dir/train', train_seg='ann_dir/train',
             val_img='img_dir/val', val_seg='ann_dir/val'),
        num_train=len(infos['train'].images), palette=palette,
        img_suffix=suffixes.pop() if suffixes else '.jpg')


def _folder_split(root: str, split: str) -> SplitInfo:
    folder = osp.join(root, split)
    classes = sorted(d for d in os.listdir(folder)
                     if osp.isdir(osp.join(folder, d)))
    counts, images = {}, []
    for cls in classes:
        files = sorted(
            osp.join(dirpath, f)
            for dirpath, _, names in os.walk(osp.join(folder, cls))
            for f in names if f.lower().endswith(CLS_EXTENSIONS))
        counts[cls] = len(files)
        images += files
    return SplitInfo(split, folder, tuple(classes), counts, images)


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
        folder = path.split('/')[0] if '/' in path else None
        if folder is None:
            raise DataError(f'{train_list}: {path} is not in a class '
                            'folder (train/<class>/...), so its class has '
                            'no name')
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
    counts = {c: 0 for c in classes}
    for _, label in train:
        counts[names[label]] += 1
    val_counts = {c: 0 for c in classes}
    for _, label in val:
        val_counts[names[label]] += 1
    infos = dict(
        train=SplitInfo('train', train_list, classes, counts,
                        [osp.join(root, 'train', p) for p, _ in train]),
        val=SplitInfo('val', val_list, classes, val_counts,
                      [osp.join(root, 'val', p) for p, _ in val]))
    return DatasetSpec(
        'cls', root, 'imagenet', classes, infos['train'], infos['val'],
        dict(train_img='train', train_ann='meta/train.txt', val_img='val',
             val_ann='meta/val.txt'),
        num_train=len(train))


def read_cls(root: str) -> DatasetSpec:
    """Read a classification folder: ``train/<class>/*`` and
    ``val/<class>/*`` (ImageFolder; classes are the sorted sub-folder
    names, as MMPretrain's CustomDataset reads them), or the ImageNet
    layout (``meta/{train,val}.txt`` of ``<path> <label>`` lines, train
    images in class folders)."""
    for split in ('train', 'val'):
        if not osp.isdir(osp.join(root, split)):
            raise DataError(f'{osp.join(root, split)} does not exist: a '
                            'classification dataset has train/<class>/ and '
                            'val/<class>/ folders (or the ImageNet layout '
                            'with meta/train.txt and meta/val.txt)')
    if osp.isfile(osp.join(root, 'meta', 'train.txt')) and \
            osp.isfile(osp.join(root, 'meta', 'val.txt')):
        return _read_imagenet(root)
    train, val = _folder_split(root, 'train'), _folder_split(root, 'val')
    return DatasetSpec('cls', root, 'imagefolder', train.classes, train, val,
                       dict(train_img='train', val_img='val'),
                       num_train=len(train.images))


def read_dataset(root: str, task: str) -> DatasetSpec:
    """Read a dataset folder for ``task`` (see the readers)."""
    root = osp.abspath(root)
    if not osp.isdir(root):
        raise DataError(f'dataset folder {root} does not exist')
    readers = dict(det=read_coco, seg=read_seg, cls=read_cls)
    if task not in readers:
        raise ValueError(f'task must be one of {sorted(readers)}, got '
                         f'{task!r}')
    return readers[task](root)


# ---- recipes ----------------------------------------------------------------


@dataclass
class RecipeSource:
    """The config a written config inherits, and what it must know of it.

    Attributes:
        recipe (str): Recipe name ('cascade-mask-rcnn', ...).
        config (str): The ``_base_`` (an absolute path or ``mmdet::...``).
        batch (int): Images per iteration its lr and schedule are set for.
        train_size (int, optional): Train images its iteration-based
            schedule was set for.
        backbone (dict, optional): A backbone to write in place of the
            recipe's (stock recipes; the plain twin of SkipResNet-18).
        backbone_note (str): Where ``backbone`` comes from.
        demo (bool): A CPU demo recipe (SkipResNet-18).
    """
    recipe: str
    config: str
    batch: int
    train_size: Optional[int] = None
    backbone: Optional[dict] = None
    backbone_note: str = ''
    demo: bool = False


def load_config(path: str):
    """An mmgate config file or an ``mmdet::`` recipe."""
    if '::' in path:
        from mmengine.hub import get_config
        return get_config(path)
    from mmengine.config import Config
    return Config.fromfile(path)


def _plain_backbone(backbone: dict, task: str) -> Tuple[dict, List[str]]:
    """The plain ResNet / ResNeXt of a Skip backbone config: the same
    arguments, less those the plain class does not take (the gates')."""
    import inspect
    tname = backbone['type'].split('.')[-1]
    if not tname.startswith('Skip'):
        raise ValueError(f'{backbone["type"]} is not a Skip backbone')
    plain = tname[len('Skip'):]
    if task == 'det':
        from mmdet.models import backbones
    elif task == 'seg':
        from mmseg.models import backbones
    else:
        from mmpretrain.models import backbones
    params = inspect.signature(getattr(backbones, plain).__init__).parameters
    out, dropped = dict(type=plain), []
    for k, v in backbone.items():
        if k == 'type':
            continue
        if k in params:
            out[k] = v
        else:
            dropped.append(k)
    return out, dropped


def _recipes_for(recipe: str) -> List[str]:
    if recipe in STOCK_FILES:
        recipe = 'cascade-mask-rcnn'
    configs = resource_dir('configs')
    return [b for b in BACKBONES if b in DEMO_BACKBONES or osp.isfile(
        osp.join(configs, RECIPE_FILES[recipe].format(b)))]


def resolve_recipe(task: str, recipe: str, backbone: str) -> RecipeSource:
    """The recipe config a fine-tuning config of ``backbone`` inherits.

    Raises:
        ValueError: The task has no such recipe, or the recipe no config
            for the backbone.
    """
    if recipe not in TASK_RECIPES[task]:
        raise ValueError(f'{task} has no recipe {recipe}; choose from '
                         f'{", ".join(TASK_RECIPES[task])}')
    if backbone not in BACKBONES:
        raise ValueError(f'unknown backbone {backbone}; choose from '
                         f'{", ".join(BACKBONES)}')
    configs = resource_dir('configs')
    if recipe in STOCK_FILES:
        src = resolve_recipe(task, 'cascade-mask-rcnn', backbone)
        bb = src.backbone or load_config(src.config).model.backbone.to_dict()
        note = src.backbone_note or 'the backbone'
        return RecipeSource(
            recipe, STOCK_FILES[recipe], RECIPE_BATCH[recipe],
            backbone=bb, backbone_note=f'{note} of {src.config}',
            demo=src.demo)
    if backbone in DEMO_BACKBONES:
        path = osp.join(configs, DEMO_FILES[recipe])
        src = RecipeSource(recipe, path, DEMO_BATCH[recipe],
                           DEMO_TRAIN_SIZE.get(recipe), demo=True)
        if backbone not in GATED_TWINS:
            gated = load_config(path).model.backbone.to_dict()
            src.backbone, dropped = _plain_backbone(gated, task)
            src.backbone_note = (
                f'the {gated["type"]} as a plain {src.backbone["type"]}' +
                (f' (less {", ".join(dropped)})' if dropped else ''))
        return src
    rel = RECIPE_FILES[recipe].format(backbone)
    path = osp.join(configs, rel)
    if not osp.isfile(path):
        raise ValueError(
            f'no {recipe} recipe for {backbone} (configs/{rel} does not '
            f'exist); {recipe} has recipes for '
            f'{", ".join(_recipes_for(recipe))}')
    return RecipeSource(recipe, path, RECIPE_BATCH[recipe],
                        RECIPE_TRAIN_SIZE.get(recipe))


# ---- schedule ---------------------------------------------------------------


@dataclass
class Schedule:
    """A recipe's schedule scaled to a dataset.

    The written schedule makes as many passes over the user's train set as
    the recipe makes over its own (its epochs; for an iteration-based
    recipe, iterations x images per iteration / train images), unless
    ``--epochs`` says otherwise. Learning-rate steps stay at the recipe's
    fractions of the schedule; warm-up keeps the recipe's length but takes
    at most a quarter of the schedule.

    Attributes:
        epochs (int): Passes over the train set.
        recipe_epochs (float): The recipe's passes over its own train set.
        batch (int): Images per iteration (GPUs x images per GPU).
        iters_per_epoch (int): Iterations of one pass.
        by_epoch (bool): Epoch-based loop (else iteration-based).
        length (int): ``max_epochs`` or ``max_iters``.
        warmup (int): Warm-up length (iterations for detection, epochs for
            classification, none for segmentation); 0 for none.
        milestones (list[tuple[int, int]]): The lr steps as fractions
            ``(numerator, denominator)`` of the schedule (detection), as
            the recipe has them (``9 / 12``, ``11 / 12``).
        val_interval (int): Validate and save a checkpoint every this many
            epochs / iterations (and at the end).
    """
    epochs: int
    recipe_epochs: float
    batch: int
    iters_per_epoch: int
    by_epoch: bool
    length: int
    warmup: int = 0
    milestones: List[Tuple[int, int]] = field(default_factory=list)
    val_interval: int = 1

    @property
    def iters(self) -> int:
        return self.length * self.iters_per_epoch if self.by_epoch \
            else self.length


def _scheduler(cfg, type_name: str) -> Optional[dict]:
    for s in cfg.get('param_scheduler') or []:
        if s.get('type') == type_name:
            return s
    return None


def recipe_epochs(task: str, cfg, source: RecipeSource) -> float:
    """Passes the recipe makes over its own train set."""
    tc = cfg.train_cfg
    if 'max_epochs' in tc and tc.get('type') != 'IterBasedTrainLoop':
        ds = cfg.train_dataloader.dataset
        times = ds.get('times', 1) if ds.get('type') == 'RepeatDataset' \
            else 1
        return float(tc.max_epochs * times)
    if source.train_size is None:
        raise ValueError(f'{source.config}: an iteration-based recipe needs '
                         'the size of its train set')
    return tc.max_iters * source.batch / source.train_size


def scale_schedule(task: str, cfg, source: RecipeSource, num_train: int,
                   gpus: int = 1, epochs: Optional[int] = None) -> Schedule:
    """Scale the recipe ``cfg``'s schedule to ``num_train`` train images
    trained on ``gpus`` processes (see :class:`Schedule`)."""
    if num_train < 1:
        raise ValueError('num_train must be positive')
    if epochs is not None and epochs < 1:
        raise ValueError(f'epochs must be positive, got {epochs}')
    passes = recipe_epochs(task, cfg, source)
    n_epochs = epochs or max(1, round(passes))
    batch = gpus * cfg.train_dataloader.batch_size
    per_epoch = math.ceil(num_train / batch)
    total = n_epochs * per_epoch
    quarter = total // 4
    if task == 'seg':
        return Schedule(n_epochs, passes, batch, per_epoch, False, total,
                        val_interval=max(1, math.ceil(total / 4)))
    val_interval = max(1, math.ceil(n_epochs / 4))
    if task == 'det':
        warm = _scheduler(cfg, 'LinearLR')
        warmup = min(int(warm['end']), quarter) if warm else 0
        steps = _scheduler(cfg, 'MultiStepLR')
        milestones = [(int(m), int(steps['end']))
                      for m in steps['milestones']] if steps else []
        return Schedule(n_epochs, passes, batch, per_epoch, True, n_epochs,
                        warmup, milestones, val_interval)
    warm = _scheduler(cfg, 'LinearLR')
    warmup = min(int(warm['end']), n_epochs // 4) if warm else 0
    return Schedule(n_epochs, passes, batch, per_epoch, True, n_epochs,
                    warmup, val_interval=val_interval)


# ---- config text ------------------------------------------------------------


def _py(value) -> str:
    """A config value as Python source (dicts as ``dict(...)``)."""
    if isinstance(value, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in value):
            return 'dict(' + ', '.join(f'{k}={_py(v)}'
                                       for k, v in value.items()) + ')'
        return '{' + ', '.join(f'{_py(k)}: {_py(v)}'
                               for k, v in value.items()) + '}'
    if isinstance(value, list):
        return '[' + ', '.join(_py(v) for v in value) + ']'
    if isinstance(value, tuple):
        inner = ', '.join(_py(v) for v in value)
        return f'({inner},)' if len(value) == 1 else f'({inner})'
    if isinstance(value, (str, int, float, bool)) or value is None:
        return repr(value)
    raise TypeError(f'cannot write {type(value).__name__} {value!r} into a '
                    'config')


def _format(text: str) -> str:
    """Config source in MMEngine's dump style (yapf, pep8 based)."""
    from yapf.yapflib.yapf_api import FormatCode
    style = dict(based_on_style='pep8', column_limit=79,
                 blank_line_before_nested_class_or_def=True,
                 split_before_expression_after_opening_paren=True)
    return FormatCode(text, style_config=style)[0]


def _comment(*paragraphs: str) -> List[str]:
    """Comment lines of at most 79 characters."""
    import textwrap
    lines = []
    for text in paragraphs:
        lines += textwrap.wrap(text, 77, break_long_words=False,
                               break_on_hyphens=False) or ['']
    return ['# ' + line if line else '#' for line in lines]


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f'{n} {word}'
    return f'{n} {word}es' if word.endswith('s') else f'{n} {word}s'


def _neck_channels(backbone: dict) -> List[int]:
    depth = backbone.get('depth', 50)
    width = backbone.get('base_channels', 64)
    expansion = 1 if depth in (18, 34) else 4
    return [width * expansion * 2**i for i in range(4)]


def _det_heads(model_cfg) -> List[str]:
    """``model = dict(...)`` lines that set every detection head's
    ``num_classes``."""
    parts = []
    roi = model_cfg.get('roi_head')
    if roi is not None:
        inner = []
        if isinstance(roi.get('bbox_head'), (list, tuple)):
            inner.append('bbox_head=[dict(head, num_classes=num_classes) '
                         'for head in _base_.model.roi_head.bbox_head]')
        elif roi.get('bbox_head') is not None:
            inner.append('bbox_head=dict(num_classes=num_classes)')
        if roi.get('mask_head') is not None:
            inner.append('mask_head=dict(num_classes=num_classes)')
        parts.append(f'roi_head=dict({", ".join(inner)})')
    if model_cfg.get('bbox_head') is not None:
        parts.append('bbox_head=dict(num_classes=num_classes)')
    if not parts:
        raise ValueError('the recipe\'s model has no head with num_classes')
    return parts


def _header(spec: DatasetSpec, source: RecipeSource, title: str,
            what: str) -> List[str]:
    n_val = len(spec.val.images)
    lines = _comment(
        title, '',
        f'Written by mmgate-finetune (tools/finetune.py) for {spec.root} '
        f'({spec.layout} layout: {_plural(len(spec.classes), "class")}, '
        f'{spec.num_train} train / {n_val} val images). It inherits the '
        f'recipe {source.config} and changes only what the data need: '
        f'{what}.', '',
        'The file is yours to edit. Train and test it with')
    lines += ['#   python tools/train.py THIS_FILE --work-dir DIR '
              '[--resume]',
              '#   python tools/test.py THIS_FILE DIR/<checkpoint>.pth '
              '--work-dir DIR']
    if source.demo and source.recipe in STOCK_FILES:
        lines += ['#'] + _comment(
            'The backbone is the CPU demo\'s SkipResNet-18 (half width, from '
            'scratch). For real data use skipresnet50 (published ImageNet '
            'weights).')
    elif source.demo:
        lines += ['#'] + _comment(
            'SkipResNet-18 recipes are the CPU demo configs (configs/demo/):'
            ' half width, from scratch, small images, narrow heads. For real'
            ' data use skipresnet50 (published ImageNet weights).')
    return lines


def _schedule_lines(task: str, sched: Schedule, source: RecipeSource,
                    gpus: int, num_train: int) -> List[str]:
    passes = f'{sched.recipe_epochs:.4g}'
    lines = ['', '# ---- schedule ' + '-' * 63] + _comment(
        f'{_plural(sched.epochs, "pass")} over the {num_train} train images '
        f'(the recipe makes {passes} over its own train set), '
        f'{_plural(sched.iters_per_epoch, "iteration")} each at '
        f'{sched.batch} images per iteration ({_plural(gpus, "GPU")} x '
        f'{sched.batch // gpus}): {_plural(sched.iters, "iteration")}.')
    if task == 'det':
        steps = ', '.join(f'max_iters * {m} // {end}'
                          for m, end in sched.milestones)
        lines += [
            f'max_epochs = {sched.length}',
            f'iters_per_epoch = {sched.iters_per_epoch}',
            'max_iters = max_epochs * iters_per_epoch',
            'train_cfg = dict(max_epochs=max_epochs, '
            f'val_interval={sched.val_interval})',
            *_comment('lr steps at the recipe\'s fractions of the schedule, '
                      'in iterations; warm-up of the recipe\'s length, at '
                      'most a quarter of the schedule'),
            'param_scheduler = [']
        if sched.warmup:
            lines.append(f"    dict(type='LinearLR', start_factor=0.001, "
                         f'by_epoch=False, begin=0, end={sched.warmup}),')
        lines += [
            "    dict(type='MultiStepLR', by_epoch=False, begin=0, "
            f'end=max_iters, milestones=[{steps}], gamma=0.1)',
            ']']
    elif task == 'seg':
        lines += [
            f'max_iters = {sched.length}',
            'train_cfg = dict(max_iters=max_iters, '
            f'val_interval={sched.val_interval})',
            "param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9,"
            ' begin=0, end=max_iters, by_epoch=False)]']
    else:
        lines += [
            f'max_epochs = {sched.length}',
            'train_cfg = dict(max_epochs=max_epochs, '
            f'val_interval={sched.val_interval})',
            *_comment('warm-up of the recipe\'s length (at most a quarter '
                      'of the schedule), then cosine to 0'),
            'param_scheduler = [']
        if sched.warmup:
            lines.append(
                "    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, "
                f'begin=0, end={sched.warmup}, convert_to_iter_based=True),')
        lines += [
            "    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, "
            f'begin={sched.warmup}, end=max_epochs, '
            'convert_to_iter_based=True)',
            ']']
    lines += [
        f'default_hooks = dict(checkpoint=dict(interval={sched.val_interval},'
        ' max_keep_ckpts=2))',
        '',
        *_comment(f'The recipe\'s lr is set for {source.batch} images per '
                  'iteration: MMEngine scales it linearly to the batch of '
                  'the run, GPUs x images per GPU (the linear scaling rule, '
                  'Goyal et al., 2017, arXiv:1706.02677).'),
        f'auto_scale_lr = dict(enable=True, base_batch_size={source.batch})']
    return lines


def _det_data(spec: DatasetSpec, cfg) -> List[str]:
    p = spec.paths

    def dataset(split):
        return (f"data_root=data_root, metainfo=metainfo, "
                f"ann_file='{p[split + '_ann']}', "
                f"data_prefix=dict(img='{_dir(p[split + '_img'])}')")

    train = cfg.train_dataloader.dataset
    if train.get('type') == 'RepeatDataset':
        train_line = '\n'.join(_comment(
            f'The recipe repeats its data {train.times}x per epoch '
            '(RepeatDataset); here an epoch is one pass over the train '
            'set.') + [
            'train_dataloader = dict(dataset=dict(times=1, '
            f'dataset=dict({dataset("train")})))'])
    else:
        train_line = ('train_dataloader = dict(dataset=dict('
                      f'{dataset("train")}))')
    return [
        train_line,
        f'val_dataloader = dict(dataset=dict({dataset("val")}))',
        'test_dataloader = val_dataloader',
        f"val_evaluator = dict(ann_file=data_root + '{p['val_ann']}')",
        'test_evaluator = val_evaluator']


def _dir(path: str) -> str:
    return path.rstrip('/') + '/' if path else ''


def _seg_data(spec: DatasetSpec) -> List[str]:
    p = spec.paths
    lines = []
    extra = ''
    if spec.layout == 'seg-folders':
        lines += [
            *_comment('the label maps hold class indices (255 = ignore): '
                      'no reduce_zero_label as for ADE20k'),
            "train_pipeline = [dict(t, reduce_zero_label=False) if t['type'] "
            "== 'LoadAnnotations' else t for t in _base_.train_pipeline]",
            "test_pipeline = [dict(t, reduce_zero_label=False) if t['type'] "
            "== 'LoadAnnotations' else t for t in _base_.test_pipeline]"]
        extra = (f", type='BaseSegDataset', img_suffix='{spec.img_suffix}', "
                 "seg_map_suffix='.png', reduce_zero_label=False")

    def dataset(split, pipeline):
        pipe = f', pipeline={pipeline}' if extra else ''
        return (f"dataset=dict(data_root=data_root, metainfo=metainfo, "
                f"data_prefix=dict(img_path='{p[split + '_img']}', "
                f"seg_map_path='{p[split + '_seg']}'){extra}{pipe})")

    lines += [
        f'train_dataloader = dict({dataset("train", "train_pipeline")})',
        f'val_dataloader = dict({dataset("val", "test_pipeline")})',
        'test_dataloader = val_dataloader']
    return lines


def _cls_data(spec: DatasetSpec, cfg) -> List[str]:
    p = spec.paths
    files = cfg.train_dataloader.dataset.pipeline[0].get('type') == \
        'LoadImageFromFile'
    lines = []
    if files:
        train_pipe, test_pipe = ('_base_.train_pipeline',
                                 '_base_.test_pipeline')
    else:
        lines += [
            *_comment('The recipe reads decoded arrays (CIFAR); images from '
                      "files get MMPretrain's ImageNet fine-tuning pipeline "
                      'and load as BGR (to_rgb below).'),
            'train_pipeline = [',
            "    dict(type='LoadImageFromFile'),",
            "    dict(type='RandomResizedCrop', scale=224),",
            "    dict(type='RandomFlip', prob=0.5, direction='horizontal'),",
            "    dict(type='PackInputs'),", ']',
            'test_pipeline = [',
            "    dict(type='LoadImageFromFile'),",
            "    dict(type='ResizeEdge', scale=256, edge='short'),",
            "    dict(type='CenterCrop', crop_size=224),",
            "    dict(type='PackInputs'),", ']']
        train_pipe, test_pipe = 'train_pipeline', 'test_pipeline'

    def dataset(split, pipeline):
        ann = p.get(split + '_ann', '')
        return (f"dataset=dict(_delete_=True, type='CustomDataset', "
                f"data_root=data_root, data_prefix='{p[split + '_img']}', "
                f"ann_file='{ann}', with_label=True, metainfo=metainfo, "
                f'pipeline={pipeline})')

    lines += [
        f'train_dataloader = dict({dataset("train", train_pipe)})',
        f'val_dataloader = dict({dataset("val", test_pipe)})',
        'test_dataloader = val_dataloader']
    if len(spec.classes) < 5:
        lines += ['# fewer than 5 classes: no top-5 accuracy',
                  'val_evaluator = dict(topk=(1, ))',
                  'test_evaluator = val_evaluator']
    return lines


def render_config(spec: DatasetSpec, source: RecipeSource, cfg,
                  sched: Schedule, backbone: str, gpus: int = 1,
                  weights: Optional[str] = None) -> str:
    """The text of the fine-tuning config of ``backbone`` on ``spec``.

    Args:
        spec (DatasetSpec): The dataset.
        source (RecipeSource): The recipe it inherits.
        cfg (Config): The recipe, loaded.
        sched (Schedule): The scaled schedule.
        backbone (str): Backbone name (for the title).
        gpus (int): GPUs the schedule was computed for.
        weights (str, optional): Backbone weights (path or URL) in place of
            the recipe's.
    """
    task = spec.task
    what = ('the classes and every head\'s num_classes, the data paths, a '
            'schedule scaled to the dataset size and auto_scale_lr')
    title = (f'{source.recipe} + {backbone} fine-tuned on {spec.name} '
             f'({len(spec.classes)} classes)')
    lines = _header(spec, source, title, what)
    lines += ['', f"_base_ = '{source.config}'", '',
              '# ---- data ' + '-' * 68,
              f"data_root = '{_dir(spec.root)}'"]
    meta = f'classes={_py(tuple(spec.classes))}'
    if spec.palette:
        meta += f', palette={_py(spec.palette)}'
    lines += [f'metainfo = dict({meta})',
              f'num_classes = {len(spec.classes)}']
    if task == 'det':
        lines += _det_data(spec, cfg)
    elif task == 'seg':
        lines += _seg_data(spec)
    else:
        lines += _cls_data(spec, cfg)

    lines += ['', '# ---- model ' + '-' * 67]
    model = []
    if source.backbone is not None:
        bb = dict(source.backbone)
        if weights:
            bb['init_cfg'] = dict(type='Pretrained', checkpoint=weights)
        lines += _comment(f'backbone: {source.backbone_note}')
        model.append(f'backbone=dict(_delete_=True, {_py(bb)[5:-1]})')
        if source.recipe in STOCK_FILES:
            model.append(f'neck=dict(in_channels={_neck_channels(bb)})')
    elif weights:
        lines += _comment('backbone weights given to tools/finetune.py')
        model.append("backbone=dict(init_cfg=dict(type='Pretrained', "
                     f'checkpoint={weights!r}))')
    if task == 'det':
        model += _det_heads(cfg.model)
    elif task == 'seg':
        model.append('decode_head=dict(num_classes=num_classes)')
        if cfg.model.get('auxiliary_head') is not None:
            model.append('auxiliary_head=dict(num_classes=num_classes)')
    else:
        head = 'head=dict(num_classes=num_classes'
        head += ', topk=(1, ))' if len(spec.classes) < 5 else ')'
        model.append(head)
    lines.append(f'model = dict({", ".join(model)})')
    if task == 'cls':
        files = cfg.train_dataloader.dataset.pipeline[0].get('type') == \
            'LoadImageFromFile'
        lines.append('data_preprocessor = dict(num_classes=num_classes'
                     + (')' if files else ', to_rgb=True)'))
    lines += _schedule_lines(task, sched, source, gpus, spec.num_train)
    return _format('\n'.join(lines) + '\n')


def render_twin_config(gated_name: str, backbone: dict, note: str,
                       weights: Optional[str] = None,
                       neck: bool = False) -> str:
    """The plain twin of a written gated config: it inherits it and
    swaps only the backbone (``note`` says where that comes from), so that
    the two differ in nothing else."""
    bb = dict(backbone)
    if weights:
        bb['init_cfg'] = dict(type='Pretrained', checkpoint=weights)
    lines = _comment(
        f'Plain twin of {gated_name}.py for base-vs-gated comparisons '
        '(tools/finetune.py --compare base): the same config with '
        f'{note}. Written by mmgate-finetune; yours to edit.') + [
        f"_base_ = './{gated_name}.py'",
        '',
        f'model = dict(backbone=dict(_delete_=True, {_py(bb)[5:-1]})'
        + (f', neck=dict(in_channels={_neck_channels(bb)}))' if neck
           else ')')]
    return _format('\n'.join(lines) + '\n')


def write_config(path: str, text: str, overwrite: bool = False) -> bool:
    """Write ``text`` to ``path`` atomically (a temporary file renamed).

    Returns:
        bool: Whether the file was written (False: it holds ``text``
        already).

    Raises:
        FileExistsError: ``path`` holds something else (an edited config)
            and ``overwrite`` is False.
    """
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return False
        if not overwrite:
            raise FileExistsError(
                f'{path} exists and differs from the config these options '
                f'write (edited?): train it with tools/train.py {path}, or '
                'pass --overwrite to replace it')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.', suffix='.py.tmp')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return True


# ---- plan and run -----------------------------------------------------------


@dataclass
class ModelPlan:
    """One config to train: its name, file and backbone."""
    name: str
    path: str
    backbone: str
    gated: bool
    text: str = ''


def plan_configs(spec: DatasetSpec, args) -> List[ModelPlan]:
    """Render the config of ``args.backbone`` (and with ``--compare base``
    its plain twin) for ``spec``."""
    task = spec.task
    recipe = args.recipe or TASK_RECIPES[task][0]
    source = resolve_recipe(task, recipe, args.backbone)
    cfg = load_config(source.config)
    sched = scale_schedule(task, cfg, source, spec.num_train, args.gpus,
                           args.epochs)
    name = f'{recipe}_{args.backbone}_{spec.name}'
    text = render_config(spec, source, cfg, sched, args.backbone, args.gpus,
                         args.weights)
    plans = [ModelPlan(name, osp.join(args.work_dir, name + '.py'),
                       args.backbone, args.backbone in GATED_TWINS, text)]
    if args.compare == 'base':
        if args.backbone not in GATED_TWINS:
            raise ValueError(f'--compare base needs a gated backbone; '
                             f'{args.backbone} is a plain one')
        twin_name = GATED_TWINS[args.backbone]
        twin = resolve_recipe(task, recipe, twin_name)
        if twin.backbone is not None:
            backbone = twin.backbone
            note = twin.backbone_note
            if twin.recipe not in STOCK_FILES:
                note += f' of {twin.config}'
        else:
            backbone = load_config(twin.config).model.backbone.to_dict()
            note = f'the backbone of the baseline recipe {twin.config}'
        twin_text = render_twin_config(
            name, backbone, note, args.base_weights,
            neck=recipe in STOCK_FILES)
        base_name = f'{recipe}_{twin_name}_{spec.name}'
        plans.append(ModelPlan(base_name,
                               osp.join(args.work_dir, base_name + '.py'),
                               twin_name, False, twin_text))
    return plans


def train_command(config: str, work_dir: str, gpus: int = 1,
                  seed: Optional[int] = None, resume: bool = False,
                  cfg_options: Sequence[str] = (),
                  python: str = sys.executable) -> List[str]:
    """The ``tools/train.py`` (``tools/dist_train.sh`` for ``gpus`` > 1)
    command line of one run."""
    tools = resource_dir('tools')
    if gpus > 1:
        cmd = ['bash', osp.join(tools, 'dist_train.sh'), config, str(gpus)]
    else:
        cmd = [python, osp.join(tools, 'train.py'), config]
    cmd += ['--work-dir', work_dir]
    if resume:
        cmd.append('--resume')
    options = ([f'randomness.seed={seed}'] if seed is not None else []) + \
        list(cfg_options)
    if options:
        cmd += ['--cfg-options', *options]
    return cmd


def test_command(config: str, checkpoint: str, work_dir: str, gpus: int = 1,
                 seed: Optional[int] = None,
                 cfg_options: Sequence[str] = (),
                 python: str = sys.executable) -> List[str]:
    """The ``tools/test.py`` (``tools/dist_test.sh``) command line: the
    test writes into the run's own work directory, where the benchmark
    report reads it as the run's result; it gets the run's seed too, since
    the config it dumps there replaces the training's."""
    tools = resource_dir('tools')
    if gpus > 1:
        cmd = ['bash', osp.join(tools, 'dist_test.sh'), config, checkpoint,
               str(gpus)]
    else:
        cmd = [python, osp.join(tools, 'test.py'), config, checkpoint]
    cmd += ['--work-dir', work_dir]
    options = ([f'randomness.seed={seed}'] if seed is not None else []) + \
        list(cfg_options)
    if options:
        cmd += ['--cfg-options', *options]
    return cmd


def _run(cmd: List[str], prog: str) -> float:
    print('+ ' + ' '.join(cmd), flush=True)
    start = time.time()
    env = dict(os.environ, PYTHON=sys.executable)
    result = subprocess.run(cmd, env=env)
    if result.returncode != 0:
        raise SystemExit(f'{prog}: error: the command above failed (exit '
                         f'code {result.returncode})')
    return time.time() - start


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='finetune.py',
        description='Fine-tune a gated backbone on a dataset folder: read '
        'its classes, write a config that inherits an mmgate recipe, train '
        'with tools/train.py and test with tools/test.py.')
    parser.add_argument('data_dir', help='the dataset folder')
    parser.add_argument('--task', required=True, choices=sorted(TASK_RECIPES))
    parser.add_argument('--backbone', default='skipresnet50',
                        choices=BACKBONES,
                        help='skipresnet18 / resnet18: the CPU demo recipes '
                        '(default: skipresnet50)')
    parser.add_argument(
        '--recipe', choices=[r for rs in TASK_RECIPES.values() for r in rs],
        help='default: cascade-mask-rcnn (det), upernet (seg), linear (cls)')
    parser.add_argument('--weights', metavar='PATH_OR_URL',
                        help='backbone weights instead of the recipe\'s')
    parser.add_argument('--base-weights', metavar='PATH_OR_URL',
                        help='the plain twin\'s backbone weights instead of '
                        'its recipe\'s (--compare base)')
    parser.add_argument('--epochs', type=int,
                        help='passes over the train set (default: as many '
                        'as the recipe makes over its own)')
    parser.add_argument('--gpus', type=int, default=1,
                        help='GPUs (processes) to train on: the schedule is '
                        'computed for them; > 1 launches tools/dist_train.sh')
    parser.add_argument('--seeds', type=int, metavar='K',
                        help='train each model with seeds 0 .. K-1 '
                        '(randomness.seed)')
    parser.add_argument('--compare', choices=['base'],
                        help='also train the plain twin of the gated '
                        'backbone (same config, no gates)')
    parser.add_argument('--work-dir',
                        help='where the configs, runs and report go '
                        '(default: work_dirs/finetune_<data>_<task>)')
    parser.add_argument('--resume', action='store_true',
                        help='resume each run from its latest checkpoint')
    parser.add_argument('--no-train', action='store_true',
                        help='write the config(s) and stop')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace written configs that were edited')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='passed to tools/train.py and tools/test.py')
    args = parser.parse_args(argv)
    for opt in args.cfg_options:
        if '=' not in opt:
            parser.error(f'--cfg-options wants KEY=VALUE, got {opt!r}')
    if args.seeds is not None and args.seeds < 1:
        parser.error('--seeds must be at least 1')
    if args.gpus < 1:
        parser.error('--gpus must be at least 1')
    if args.weights and '://' not in args.weights and \
            not osp.isfile(args.weights):
        parser.error(f'--weights {args.weights}: no such file')
    if args.base_weights and '://' not in args.base_weights and \
            not osp.isfile(args.base_weights):
        parser.error(f'--base-weights {args.base_weights}: no such file')
    if args.work_dir is None:
        name = re.sub(r'[^A-Za-z0-9._-]+', '-',
                      osp.basename(osp.abspath(args.data_dir)))
        args.work_dir = osp.join('work_dirs', f'finetune_{name}_{args.task}')
    args.work_dir = osp.abspath(args.work_dir)
    return parser, args


def main(argv=None) -> None:
    """The command line (``tools/finetune.py``, the ``mmgate-finetune``
    console script): :func:`run`."""
    run(argv)


def run(argv=None) -> dict:
    """Read, check, write the config(s), train, test, report (see the
    module docstring); ``argv`` as on the command line.

    Returns:
        dict: ``configs`` (written paths), ``runs`` (per run: ``config``,
        ``seed``, ``work_dir``, ``train_s``, ``test_s``), ``report`` (the
        report's paths, when runs were trained) and ``seconds``.
    """
    start = time.time()
    parser, args = parse_args(argv)
    prog = parser.prog
    try:
        spec = read_dataset(args.data_dir, args.task)
        warnings = check_splits(spec.train, spec.val)
    except DataError as e:
        parser.exit(1, f'{prog}: error: {e}\n')
    for w in warnings:
        print(f'{prog}: warning: {w}', file=sys.stderr, flush=True)
    try:
        plans = plan_configs(spec, args)
    except ValueError as e:
        parser.exit(1, f'{prog}: error: {e}\n')
    try:
        # the checks tools/train.py runs (files exist and decode, the
        # annotations parse), once before anything is written
        from mmengine.config import Config
        check_data(Config.fromstring(plans[0].text, '.py'),
                   ('train', 'val'))
    except DataError as e:
        parser.exit(1, f'{prog}: error: {e}\n')
    try:
        for plan in plans:
            write_config(plan.path, plan.text, args.overwrite)
    except FileExistsError as e:
        parser.exit(1, f'{prog}: error: {e}\n')
    print(f'{spec.layout} dataset {spec.root}: {len(spec.classes)} classes '
          f'({", ".join(spec.classes)}), {spec.num_train} train / '
          f'{len(spec.val.images)} val images')
    for plan in plans:
        print(f'config: {plan.path}', flush=True)
    result = dict(configs=[p.path for p in plans], runs=[], report=None)
    if args.no_train:
        result['seconds'] = time.time() - start
        return result

    seeds = list(range(args.seeds)) if args.seeds else [None]
    for seed in seeds:
        for plan in plans:
            work_dir = osp.join(args.work_dir, plan.name if seed is None
                                else f'{plan.name}_seed{seed}')
            train_s = _run(train_command(plan.path, work_dir, args.gpus,
                                         seed, args.resume,
                                         args.cfg_options), prog)
            with open(osp.join(work_dir, 'last_checkpoint')) as f:
                checkpoint = f.read().strip()
            test_s = _run(test_command(plan.path, checkpoint, work_dir,
                                       args.gpus, seed, args.cfg_options),
                          prog)
            result['runs'].append(dict(
                config=plan.path, seed=seed, work_dir=work_dir,
                train_s=round(train_s, 1), test_s=round(test_s, 1)))

    from mmgate.analysis.report import write_report
    title = f'Fine-tuning on {spec.name}'
    report, paths = write_report(args.work_dir,
                                 osp.join(args.work_dir, 'report'),
                                 title=title, model_index=False)
    with open(paths['markdown'], encoding='utf-8') as f:
        print(f.read())
    result['report'] = paths
    result['seconds'] = time.time() - start
    print(f'{len(result["runs"])} runs in {result["seconds"]:.0f} s; '
          f'report: {paths["markdown"]}')
    for plan in plans:
        print(f'config: {plan.path}')
    return result
