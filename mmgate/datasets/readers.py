"""One entry point for the dataset readers: which layout a folder has, and
its :class:`~mmgate.datasets.spec.DatasetSpec`.

:data:`LAYOUTS` lists every layout, in the order a folder is tried for its
task; the first whose ``detect`` accepts the folder reads it. Derived files
(COCO JSON converted from VOC / YOLO, split files) are named under
``work_dir`` in the spec and written by the caller, never into the dataset
folder.

Example:
    >>> spec = read_dataset('data/trees', 'det', work_dir='work')
    ... # doctest: +SKIP
    >>> spec.layout, spec.masks.describe()  # doctest: +SKIP
    ('yolo', 'boxes only: none of the 412 instances has a mask')
"""
import glob
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Optional

from .checks import DataError
from .cls import read_cls
from .coco import find_coco_ann, read_coco
from .seg import read_seg
from .spec import DatasetSpec
from .splits import VAL_FRACTION
from .voc import find_voc_root, read_voc
from .yolo import is_yolo, read_yolo

__all__ = ['Layout', 'LAYOUTS', 'detect_layout', 'read_dataset']


@dataclass(frozen=True)
class Layout:
    """A dataset layout.

    Attributes:
        task (str): ``'det'``, ``'seg'`` or ``'cls'``.
        name (str): The layout's name (``DatasetSpec.layout``; a reader may
            refine it: ``seg-index`` / ``seg-palette``).
        files (str): What the folder holds, for the user.
        detect (callable): ``detect(root) -> bool``.
        read (callable): ``read(root, work_dir, val_fraction, seed)``.
    """
    task: str
    name: str
    files: str
    detect: Callable[[str], bool]
    read: Callable[..., DatasetSpec]


def _is_coco(root: str) -> bool:
    return find_coco_ann(root, 'train', required=False) is not None


def _is_voc(root: str) -> bool:
    return find_voc_root(root) is not None


def _is_voc_folder(root: str) -> bool:
    return bool(glob.glob(osp.join(root, '*.xml')))


def _always(root: str) -> bool:
    return True


LAYOUTS = (
    Layout(
        'det', 'coco', 'annotations/*train*.json (+ *val*.json), images '
        'in train2017/, train/, images/train/ or images/', _is_coco,
        read_coco),
    Layout('det', 'voc', 'VOCdevkit/VOC2007/{Annotations,JPEGImages,'
           'ImageSets/Main}', _is_voc, read_voc),
    Layout(
        'det', 'yolo', 'images/{train,val}/, labels/{train,val}/*.txt, '
        'data.yaml or classes.txt', is_yolo, read_yolo),
    Layout('det', 'voc-folder', 'images and their Pascal VOC XML files in '
           'one folder', _is_voc_folder, read_voc),
    Layout(
        'seg', 'seg', 'classes.txt, img_dir/train (+ val), ann_dir/train '
        '(+ val) of index or palette PNGs; or ADE20k', _always, read_seg),
    Layout('cls', 'cls', 'train/<class>/ (+ val/<class>/), or '
           'meta/{train,val}.txt', _always, read_cls),
)


def detect_layout(root: str, task: str) -> Layout:
    """The first layout of ``task`` that ``root`` has.

    Raises:
        DataError: None fits (the layouts are listed).
    """
    layouts = [lay for lay in LAYOUTS if lay.task == task]
    if not layouts:
        raise ValueError(f'task must be one of '
                         f'{sorted({lay.task for lay in LAYOUTS})}, got '
                         f'{task!r}')
    for layout in layouts:
        if layout.detect(root):
            return layout
    known = '; '.join(f'{lay.name}: {lay.files}' for lay in layouts)
    raise DataError(f'{root} has no {task} layout mmgate reads ({known})')


def read_dataset(root: str,
                 task: str,
                 work_dir: Optional[str] = None,
                 val_fraction: float = VAL_FRACTION,
                 seed: int = 0) -> DatasetSpec:
    """Read a dataset folder for ``task`` (see :data:`LAYOUTS`).

    Args:
        root (str): The dataset folder.
        task (str): ``'det'``, ``'seg'`` or ``'cls'``.
        work_dir (str, optional): Where derived files will go (needed for
            converted layouts and made splits).
        val_fraction (float): Share of the train samples for a made val
            split.
        seed (int): Seed of a made split.

    Raises:
        DataError: The folder is missing, has no known layout, or holds
            bad data (the message names the file and the record).
    """
    root = osp.abspath(root)
    if not osp.isdir(root):
        raise DataError(f'dataset folder {root} does not exist')
    layout = detect_layout(root, task)
    return layout.read(root, work_dir and osp.abspath(work_dir), val_fraction,
                       seed)
