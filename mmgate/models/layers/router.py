"""The inbound router: which earlier maps a gated block reads, and how.

A gated block ends with ``act(sigmoid(g0) * y + sum_k w_k * x_k)`` over
earlier feature maps ``x_k`` (its *inbounds*). All gated families keep one
list of *entries* while they run: entry ``i`` is what block ``i`` uses as its
shortcut, i.e. its input after its own projection (the 1x1 conv + BN of a
stage's first block, a 2x2 average pool at a stride-2 MobileNetV2 block, the
plain previous output elsewhere). The families differ only in which entries
a block reads:

- **Skip** (SkipResNet / SkipResNeXt / SkipConvNeXt, Takeda et al.,
  "Skip-connected ResNets", 2022): the list is per stage and block ``j``
  reads the entries 1, 2, 4, 8, ... outputs back, ``j + 1 - 2**k``
  (:func:`skip_inbound_indices`).
- **Dense** (DenseResNet / Dense-MobileNetV2, Takeda, MIRU 2020): one list
  for the whole network; block ``i`` reads the last ``N`` entries
  ``i, i-1, ..., i-N+1`` (:func:`dense_inbound_indices`), across stage
  boundaries. Older entries differ in size and width: they are average-pooled
  2x2 (``ceil_mode``) until the block's size is reached and zero-padded or
  truncated to its channels, as in the authors' 2020 code
  (https://github.com/takedarts/denseresnet).
- **Plain** (a ResNet block with ``y + shortcut``): a block reads only its
  own entry.

:class:`InboundRouter` runs that list for one forward pass: it appends each
block's entry, pools every map and takes every global descriptor once (each
is shared by all blocks that read it), hands a block its aligned inbounds and
releases an entry as soon as no later block reads it. Every gated stage is
the same loop, ``x = router.step(block, x)``. A gated block's entry is a
:func:`~mmgate.ops.shared_map`, which also gives its descriptor: the
junctions that read the entry add their gradients into one buffer, which
then takes the gradients of the descriptor and of the block input the entry
may be in one pass.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmgate.ops import shared_map
from .gate import global_descriptor

__all__ = [
    'DESCRIPTOR_MODES', 'skip_inbound_indices', 'dense_inbound_indices',
    'last_readers', 'pool_to_size', 'fit_channels', 'padding_mask',
    'inbound_distances', 'InboundRouter'
]

# Descriptor of an inbound that must be pooled to the block's size:
# 'entry': the global average of the entry as stored (DenseResNet's layout);
# 'aligned': that of the pooled map (the Skip family's, where only a pooled
# stage's first entry is ever pooled).
DESCRIPTOR_MODES = ('entry', 'aligned')


def skip_inbound_indices(index: int) -> List[int]:
    """Entries of its stage that the ``index``-th block (0-based) reads.

    Entry ``j`` is block ``j``'s (projected) input, i.e. block ``j - 1``'s
    output; block ``j`` reads the previous output and those 2, 4, 8, ...
    blocks back: ``j + 1 - 2**k`` for every ``2**k <= j + 1``.

    >>> [skip_inbound_indices(j) for j in range(4)]
    [[0], [1, 0], [2, 1], [3, 2, 0]]
    """
    if index < 0:
        raise ValueError(f'block index must be >= 0, got {index}')
    indices, step = [], 1
    while step <= index + 1:
        indices.append(index + 1 - step)
        step *= 2
    return indices


def dense_inbound_indices(index: int, num_connections: int) -> List[int]:
    """Entries of the global list that the ``index``-th block reads: the last
    ``min(N, index + 1)``, most recent first.

    >>> dense_inbound_indices(0, 4), dense_inbound_indices(5, 4)
    ([0], [5, 4, 3, 2])
    """
    if index < 0:
        raise ValueError(f'block index must be >= 0, got {index}')
    if num_connections < 1:
        raise ValueError(
            f'num_connections (N) must be >= 1, got {num_connections}')
    return [index - k for k in range(min(num_connections, index + 1))]


def last_readers(inbound_lists: Sequence[Sequence[int]]) -> List[List[int]]:
    """For each block j, the entries that no block after j reads.

    >>> last_readers([skip_inbound_indices(j) for j in range(4)])
    [[], [], [1], [0, 2, 3]]
    """
    last = {}
    for j, indices in enumerate(inbound_lists):
        for k in indices:
            last[k] = j
    release = [[] for _ in inbound_lists]
    for k, j in sorted(last.items()):
        release[j].append(k)
    return release


def inbound_distances(block) -> List[int]:
    """How many outputs back each inbound slot of ``block`` is: entry ``i``
    is the output of the block before block ``i``, so slot ``k`` of the block
    at entry ``e`` is ``e + 1 - inbound_indices[k]`` outputs back (1 = the
    previous output), for the Skip and the Dense pattern alike.

    >>> from types import SimpleNamespace
    >>> inbound_distances(SimpleNamespace(entry_index=6,
    ...                                   inbound_indices=[6, 5, 3]))
    [1, 2, 4]
    """
    return [block.entry_index + 1 - i for i in block.inbound_indices]


def pool_to_size(x: Tensor, size: Sequence[int]) -> Tensor:
    """Average-pool ``x`` 2x2 (ceil mode) until its spatial size is ``size``.

    Raises:
        ValueError: If ``size`` cannot be reached by halving.
    """
    size = tuple(size)
    src = tuple(x.shape[-2:])
    while tuple(x.shape[-2:]) != size:
        h, w = x.shape[-2:]
        if h < size[0] or w < size[1] or (h, w) == (1, 1):
            raise ValueError(
                f'cannot align a {src[0]}x{src[1]} inbound to '
                f'{size[0]}x{size[1]} by repeated 2x2 average pooling')
        x = F.avg_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)
    return x


def fit_channels(x: Tensor, channels: int) -> Tensor:
    """Zero-pad or truncate dim 1 of ``x`` to ``channels``."""
    c = x.shape[1]
    if c > channels:
        return x[:, :channels]
    if c < channels:
        return F.pad(x, (0, 0, 0, 0, 0, channels - c))
    return x


def padding_mask(in_channels: Sequence[int],
                 channels: int) -> Optional[Tensor]:
    """Bool ``(n, C)``, True where inbound k is zero padding after
    :func:`fit_channels` (channel ``c >= in_channels[k]``); None when no
    inbound is padded. ``GateModule(softmax_mask=...)`` keeps those slots out
    of the softmax.

    >>> padding_mask([8, 4], 8).sum().item(), padding_mask([8, 8], 8)
    (4, None)
    """
    c = torch.arange(channels)
    mask = torch.stack([c >= k for k in in_channels])
    return mask if bool(mask.any()) else None


class InboundRouter:
    """The entries of one forward pass, and the loop every gated stage runs.

    The blocks it runs (in order) say what they read; the router relies on
    this interface (see ``mmgate.models.backbones.blocks.RoutedBlock``):

    - ``entry_index``: the block's position in the list;
    - ``inbound_indices``: the entries its junction reads, most recent first;
    - ``enter(x)``: the input the block works on (a pre-pooling downsampling
      block pools it here); ``project(x)``: the entry it adds (its shortcut);
    - ``reads_descriptors``: whether its junction uses global descriptors;
    - ``out_channels``: its output width, which inbounds are fitted to;
    - ``forward(x, inbounds, descriptors)``: the block output.

    Args:
        blocks (Sequence[nn.Module]): Every block that will run through this
            router, in order (a stage for the Skip pattern, the whole
            network for the Dense one).
        descriptors (str): ``'entry'`` or ``'aligned'``
            (:data:`DESCRIPTOR_MODES`): which map the descriptor of a pooled
            inbound is taken from. Defaults to 'aligned'.

    Example:
        >>> import torch
        >>> from mmgate.models import SkipResNet
        >>> stage = SkipResNet(depth=34, base_channels=8).layer1
        >>> [block.inbound_indices for block in stage]
        [[0], [1, 0], [2, 1]]
        >>> router = InboundRouter(stage)
        >>> x = torch.rand(2, 8, 16, 16)
        >>> for block in stage:
        ...     x = router.step(block, x)
        >>> tuple(x.shape), router.held()
        ((2, 8, 16, 16), [])
    """

    def __init__(self, blocks: Sequence, descriptors: str = 'aligned') -> None:
        if descriptors not in DESCRIPTOR_MODES:
            raise ValueError(f'descriptors must be one of {DESCRIPTOR_MODES},'
                             f' got {descriptors!r}')
        plan = []
        for i, block in enumerate(blocks):
            if block.entry_index != i:
                raise ValueError(
                    f'block {i} of the router ({type(block).__name__}) says '
                    f'it is entry {block.entry_index}')
            if not block.inbound_indices or any(
                    not 0 <= k <= i for k in block.inbound_indices):
                raise ValueError(
                    f'block {i} reads entries {block.inbound_indices}; a '
                    f'block reads its own entry or earlier ones')
            plan.append(list(block.inbound_indices))
        self.descriptors = descriptors
        self._release = last_readers(plan)
        # per entry: {spatial size: map} and {spatial size: descriptor}
        self._maps: List[Optional[Dict[Tuple[int, int], Tensor]]] = []
        self._descs: List[Optional[Dict[Tuple[int, int], Tensor]]] = []

    def __len__(self) -> int:
        return len(self._maps)

    def held(self) -> List[int]:
        """Entries still held (not yet released)."""
        return [i for i, m in enumerate(self._maps) if m is not None]

    def _map(self, index: int, size: Tuple[int, int]) -> Tensor:
        versions = self._maps[index]
        if versions is None:
            raise IndexError(f'entry {index} was released')
        if size not in versions:
            # start from the smallest cached version that is still larger
            start = min(
                (s for s in versions if s[0] >= size[0] and s[1] >= size[1]),
                key=lambda s: s[0] * s[1],
                default=next(iter(versions)))
            versions[size] = pool_to_size(versions[start], size)
        return versions[size]

    def _descriptor(self, index: int, size: Tuple[int, int]) -> Tensor:
        if self.descriptors == 'entry':
            size = next(iter(self._maps[index]))  # the size it was stored at
        descs = self._descs[index]
        if size not in descs:
            descs[size] = global_descriptor(self._map(index, size))
        return descs[size]

    def step(self, block, x: Tensor) -> Tensor:
        """Run ``block`` on ``x``: add its entry, give it its inbounds
        (pooled to its entry's size, fitted to its output channels) and
        their descriptors,
        then release what no later block reads."""
        j = len(self._maps)
        if j >= len(self._release):
            raise IndexError(f'the router was built for {len(self._release)}'
                             ' blocks')
        if block.entry_index != j:
            raise RuntimeError(
                f'{type(block).__name__} is entry {block.entry_index} of its '
                f'router, but it runs as entry {j}')
        x = block.enter(x)
        entry = block.project(x)
        size, channels = tuple(entry.shape[-2:]), block.out_channels
        descs = {}
        if block.reads_descriptors:
            shared, means, _ = shared_map(entry)
            x = shared if entry is x else x  # the branch reads it too
            entry = shared
            descs[size] = means.view(*means.shape, 1, 1)
        self._maps.append({size: entry})
        self._descs.append(descs)
        idx = block.inbound_indices
        inbounds = [fit_channels(self._map(i, size), channels) for i in idx]
        descriptors = [
            fit_channels(self._descriptor(i, size), channels) for i in idx
        ] if block.reads_descriptors else None
        out = block(x, inbounds, descriptors)
        for k in self._release[j]:  # no later block reads these
            self._maps[k] = self._descs[k] = None
        return out
