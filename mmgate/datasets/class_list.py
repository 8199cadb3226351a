"""Class names as users list them: ``classes.txt`` and the checks every
reader applies to a list of names.

Example:
    >>> unique_names(['tree', 'shrub'], 'classes.txt')
    ('tree', 'shrub')
"""
from typing import List, Optional, Sequence, Tuple

from .checks import DataError

__all__ = ['unique_names', 'read_class_file']


def unique_names(names: Sequence, where: str) -> Tuple[str, ...]:
    """``names`` as a tuple of strings.

    Raises:
        DataError: No name, or a name listed twice (``where`` names the
            list).
    """
    names = tuple(str(n) for n in names)
    if not names:
        raise DataError(f'{where} names no class')
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f'{where}: {", ".join(dup)} listed more than once')
    return names


def read_class_file(
        path: str) -> Tuple[Tuple[str, ...], Optional[List[List[int]]]]:
    """``classes.txt``: one class a line, ``name`` or ``name R G B``
    (blank lines and ``#`` comments skipped); the names and the colours
    (None when no line gives one).

    Raises:
        DataError: A line that is neither, colours for some classes only,
            no name, a name listed twice.
    """
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
    names = unique_names(names, f'class list {path}')
    if palette and len(palette) != len(names):
        raise DataError(f'class list {path}: give a colour for every class '
                        'or for none')
    return names, palette or None
