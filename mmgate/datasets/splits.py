"""A val split for a dataset that has none.

A seeded random share of the train samples (``--val-fraction``,
:data:`VAL_FRACTION` by default) becomes the val split: stratified by class
for classification (each class gives the same share, so a rare class is in
both splits), by image for detection and segmentation. The split is written
as files in the work directory (never into the dataset) and announced with
one line (:func:`split_message`)::

    no val split in DATA: 10 % of the train images (seed 0) -> \
WORKDIR/splits/val.json

The same data, fraction and seed give the same split (numpy's PCG64
generator over the samples in sorted order).

Example:
    >>> split_indices(10, 0.2, seed=0)
    [4, 6]
    >>> split_indices(6, 0.5, seed=0, labels=[0, 0, 0, 0, 1, 1])
    [0, 2, 5]
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

from .checks import DataError

__all__ = ['VAL_FRACTION', 'split_indices', 'split_message', 'split_path']

#: Share of the train samples that becomes the val split.
VAL_FRACTION = 0.1


def _count(n: int, fraction: float) -> int:
    """Samples of ``n`` that go to val: at least one, and one is left."""
    return min(n - 1, max(1, round(n * fraction)))


def split_indices(num: int,
                  fraction: float = VAL_FRACTION,
                  seed: int = 0,
                  labels: Optional[Sequence[int]] = None,
                  source: str = 'the train split') -> List[int]:
    """The sorted indices of ``num`` samples that become the val split.

    Args:
        num (int): Samples in the train split.
        fraction (float): Share for val, in (0, 1).
        seed (int): Seed of the random choice.
        labels (Sequence[int], optional): A class per sample: each class
            gives ``fraction`` of its samples (at least one of a class with
            two or more, none of a class with one).
        source (str): Named in the error.

    Raises:
        DataError: Fewer than two samples (no split leaves both non-empty).
    """
    import numpy as np
    if not 0 < fraction < 1:
        raise ValueError(f'the val fraction must be in (0, 1), got '
                         f'{fraction}')
    if num < 2:
        raise DataError(f'{source} has {num} sample(s): too few to split '
                        'off a val set; give a val split')
    rng = np.random.default_rng(seed)
    if labels is None:
        return sorted(rng.permutation(num)[:_count(num, fraction)].tolist())
    if len(labels) != num:
        raise ValueError(f'{len(labels)} labels for {num} samples')
    by_class: Dict[int, List[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    chosen = []
    for label in sorted(by_class):
        members = by_class[label]
        if len(members) < 2:
            continue
        order = rng.permutation(len(members))[:_count(len(members), fraction)]
        chosen += [members[i] for i in order]
    if not chosen:
        raise DataError(f'{source}: no class has two samples, so none can '
                        'give one to a val split; give a val split')
    return sorted(chosen)


def split_path(work_dir: str, split: str, ext: str) -> str:
    """``WORKDIR/splits/<split>.<ext>``."""
    return osp.join(work_dir, 'splits', f'{split}.{ext}')


def split_message(root: str,
                  fraction: float,
                  seed: int,
                  path: str,
                  what: str = 'train images') -> str:
    """The line that announces a made split."""
    return (f'no val split in {root}: {fraction * 100:g} % of the {what} '
            f'(seed {seed}) -> {path}')
