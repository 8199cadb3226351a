"""What a dataset reader hands to the fine-tuning path.

A reader (``mmgate.datasets.readers``) turns a user's dataset folder into a
:class:`DatasetSpec`: the classes, the two splits (as
:class:`~mmgate.datasets.split_checks.SplitInfo`, for the checks across
splits), the paths a config needs, what the annotations hold (boxes only,
masks, a mix) and the files it derives in the work directory (COCO JSON
converted from VOC / YOLO, split files made when the data have no val
split). Nothing is written by a reader: ``derived`` holds the text of each
file, written by the caller once every check has passed.

Example:
    >>> from mmgate.datasets import read_dataset
    >>> spec = read_dataset('data/demo/coco', 'det')  # doctest: +SKIP
    >>> spec.layout, spec.classes, spec.masks.kind  # doctest: +SKIP
    ('coco', ('person', 'ball', 'box', 'signboard'), 'all')
"""
import os.path as osp
import re
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

from .split_checks import SplitInfo

__all__ = ['MaskCoverage', 'DatasetSpec']


@dataclass(frozen=True)
class MaskCoverage:
    """How many instances of a detection dataset have a mask.

    Attributes:
        instances (int): Annotated instances (train and val).
        with_masks (int): Those with a non-empty ``segmentation``.
        images (int): Images with at least one instance.
        images_with_masks (int): Images all of whose instances have one.
    """
    instances: int = 0
    with_masks: int = 0
    images: int = 0
    images_with_masks: int = 0

    @property
    def kind(self) -> str:
        """``'all'`` (every instance has a mask), ``'none'`` or
        ``'mixed'``."""
        if self.instances and self.with_masks == self.instances:
            return 'all'
        return 'mixed' if self.with_masks else 'none'

    def describe(self) -> str:
        """One line: what the annotations hold."""
        if self.kind == 'all':
            return (f'every one of the {self.instances} instances has a '
                    'mask')
        if self.kind == 'none':
            return f'boxes only: none of the {self.instances} instances ' \
                'has a mask'
        return (f'{self.images_with_masks} of {self.images} images have '
                f'masks for all their instances ({self.with_masks} of '
                f'{self.instances} instances have one)')


@dataclass
class DatasetSpec:
    """A dataset folder as a config needs it.

    Attributes:
        task (str): ``'det'``, ``'seg'`` or ``'cls'``.
        root (str): The folder (absolute).
        layout (str): The layout read (``readers.LAYOUTS``).
        classes (tuple[str]): Class names in label order.
        train (SplitInfo): The train split.
        val (SplitInfo): The val split.
        paths (dict[str, str]): ``{split}_ann``, ``{split}_img``,
            ``{split}_seg``: annotation files and image / label folders,
            relative to ``root`` or absolute (files in the work directory).
        num_train (int): Train samples that train (detection: images with
            at least one instance, as ``filter_empty_gt`` keeps them).
        palette (list, optional): Segmentation colours, one per class.
        img_suffix (str, optional): Segmentation image extension.
        masks (MaskCoverage, optional): Detection: what the annotations
            hold.
        ann_source (str): The annotation file(s) or folder, as messages
            name them.
        derived (dict[str, str]): Files to write, absolute path -> text.
        notes (list[str]): Lines for the user (a split made, a conversion).
        work_dir (str, optional): Where ``derived`` goes.
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
    masks: Optional[MaskCoverage] = None
    ann_source: str = ''
    derived: Dict[str, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    work_dir: Optional[str] = None

    @property
    def name(self) -> str:
        """A file-name-safe name of the dataset (its folder's name)."""
        return re.sub(r'[^A-Za-z0-9._-]+', '-', osp.basename(self.root))

    def moved(self, folder: str) -> 'DatasetSpec':
        """The same spec with its derived files under ``folder`` instead of
        the work directory (to check a config before anything is written
        to the work directory)."""
        if not self.derived:
            return self
        old = self.work_dir.rstrip('/') + '/'
        new = folder.rstrip('/') + '/'

        def move(path: str) -> str:
            return new + path[len(old):] if path.startswith(old) else path

        return replace(
            self,
            paths={
                k: move(v)
                for k, v in self.paths.items()
            },
            derived={
                move(k): v
                for k, v in self.derived.items()
            },
            work_dir=folder)
