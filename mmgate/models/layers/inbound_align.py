"""Which earlier outputs a DenseResNet block reads, and how they are aligned.

DenseResNet (Takeda, MIRU 2020) keeps one *global* list of earlier outputs:
the stem output first, then what every block used as its shortcut (its input
after its own projection: a 1x1 conv + BN at a ResNet stage boundary, a 2x2
average pool at a stride-2 MobileNetV2 block, the plain previous output
elsewhere). Block ``i`` appends its entry ``i`` and mixes the entries
``i, i-1, ..., i-N+1`` (most recent first, like the Skip pattern) through the
shared :class:`GateModule`. Entries from earlier stages differ from the block
in size and width; as in the authors' 2020 code they are aligned by

- 2x2 average pooling (``ceil_mode``, so odd sizes follow the strided convs),
  repeated until the block's spatial size is reached;
- zero-padding or truncating the channels to the block's ``C``;
- the gate descriptor of an entry is the global average pool of the entry as
  stored (before any pooling), padded or truncated the same way, so the gate
  MLP sees ``C * (1 + n)`` descriptor channels (the layout that gives the
  paper's parameter counts).

``pad_mode`` decides what the softmax does with padded channels:

- ``'paper'``: the 2020 code and the paper's formula: one softmax over all n
  inbounds in every channel. An inbound that is zero padding in channel c
  still takes a weight ``w_kc`` that multiplies zeros, so the weights of the
  real inbounds of that channel sum to less than 1 (the identity path of
  eq. (5) is attenuated there).
- ``'masked'``: padded (inbound, channel) slots are excluded from the softmax
  (``GateModule(softmax_mask=...)``): in every channel the real inbounds'
  weights sum to 1. A channel in which every inbound is padding mixes nothing.

Both modes have the same parameters; only the gate's softmax differs.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .gate import global_descriptor

__all__ = ['PAD_MODES', 'dense_inbound_indices', 'pool_to_size',
           'fit_channels', 'InboundAlign', 'InboundBank']

PAD_MODES = ('paper', 'masked')


def dense_inbound_indices(index: int, num_connections: int) -> List[int]:
    """Entries of the global list that the ``index``-th block reads.

    Entry ``i`` is block ``i``'s own (projected) input; block ``i`` reads the
    last ``min(N, i + 1)`` entries, most recent first.

    >>> dense_inbound_indices(0, 4), dense_inbound_indices(5, 4)
    ([0], [5, 4, 3, 2])
    """
    if index < 0:
        raise ValueError(f'block index must be >= 0, got {index}')
    if num_connections < 1:
        raise ValueError(
            f'num_connections (N) must be >= 1, got {num_connections}')
    return [index - k for k in range(min(num_connections, index + 1))]


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


class InboundAlign(nn.Module):
    """Channel (and, if needed, spatial) alignment of one block's inbounds.

    Holds the connection pattern of one block as data: the channels of the
    inbounds it reads and the block's channels. No parameters.

    Args:
        in_channels (Sequence[int]): Channels of each inbound, in slot order.
        channels (int): Channels C of the block (of ``y``).
        pad_mode (str): ``'paper'`` or ``'masked'`` (module docstring).

    Example:
        >>> import torch
        >>> align = InboundAlign([8, 4], 8, pad_mode='masked')
        >>> maps, descs = align([torch.rand(1, 8, 4, 4),
        ...                      torch.rand(1, 4, 8, 8)],
        ...                     [torch.rand(1, 8, 1, 1),
        ...                      torch.rand(1, 4, 1, 1)], size=(4, 4))
        >>> [tuple(m.shape) for m in maps], tuple(descs[1].shape)
        ([(1, 8, 4, 4), (1, 8, 4, 4)], (1, 8, 1, 1))
        >>> align.softmax_mask.sum().item()  # inbound 1, channels 4..7
        4
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int,
                 pad_mode: str = 'masked') -> None:
        super().__init__()
        if pad_mode not in PAD_MODES:
            raise ValueError(
                f'pad_mode must be one of {PAD_MODES}, got {pad_mode!r}')
        if len(in_channels) < 1:
            raise ValueError('a block needs at least one inbound')
        if channels < 1 or any(c < 1 for c in in_channels):
            raise ValueError(f'channels must be >= 1, got {channels} and '
                             f'inbounds {list(in_channels)}')
        self.in_channels = tuple(int(c) for c in in_channels)
        self.channels = int(channels)
        self.pad_mode = pad_mode

    @property
    def num_inbounds(self) -> int:
        return len(self.in_channels)

    @property
    def padding_mask(self) -> Tensor:
        """Bool ``(n, C)``: ``True`` where inbound k is zero padding."""
        c = torch.arange(self.channels)
        return torch.stack([c >= k for k in self.in_channels])

    @property
    def softmax_mask(self) -> Optional[Tensor]:
        """The mask for ``GateModule(softmax_mask=...)``: None in ``'paper'``
        mode or when nothing is padded."""
        mask = self.padding_mask
        if self.pad_mode == 'paper' or not bool(mask.any()):
            return None
        return mask

    def forward(self,
                inbounds: Sequence[Tensor],
                descriptors: Sequence[Tensor],
                size: Optional[Sequence[int]] = None
                ) -> Tuple[List[Tensor], List[Tensor]]:
        """Align maps and descriptors to ``(B, C, *size)`` / ``(B, C, 1, 1)``.

        Args:
            inbounds (Sequence[Tensor]): The n inbound maps.
            descriptors (Sequence[Tensor]): Their ``(B, C_k, 1, 1)`` global
                descriptors, taken before any pooling.
            size (Sequence[int], optional): Target spatial size; defaults to
                that of the first (most recent) inbound.
        """
        if len(inbounds) != self.num_inbounds or \
                len(descriptors) != self.num_inbounds:
            raise ValueError(
                f'this block reads {self.num_inbounds} inbounds, got '
                f'{len(inbounds)} maps and {len(descriptors)} descriptors')
        got = tuple(x.shape[1] for x in inbounds)
        if got != self.in_channels:
            raise ValueError(f'inbound channels {got} differ from the '
                             f'{self.in_channels} this block was built for')
        size = tuple(inbounds[0].shape[-2:]) if size is None else size
        maps = [fit_channels(pool_to_size(x, size), self.channels)
                for x in inbounds]
        descs = [fit_channels(d, self.channels) for d in descriptors]
        return maps, descs

    def extra_repr(self) -> str:
        return (f'in_channels={list(self.in_channels)}, '
                f'channels={self.channels}, pad_mode={self.pad_mode!r}')


class InboundBank:
    """The global list of a DenseResNet forward pass.

    Keeps each entry's descriptor (taken once, from the entry as stored) and
    its pooled versions (each size computed once, shared by every block that
    reads it). Entries older than ``keep`` are released: no block reads them.

    Args:
        keep (int): N, the number of entries a block reads.
    """

    def __init__(self, keep: int) -> None:
        assert keep >= 1, f'keep must be >= 1, got {keep}'
        self.keep = keep
        self._maps: List[Optional[Dict[Tuple[int, int], Tensor]]] = []
        self._descriptors: List[Optional[Tensor]] = []

    def __len__(self) -> int:
        return len(self._maps)

    def append(self, x: Tensor) -> None:
        """Add an entry and release the ones no later block reads."""
        self._maps.append({tuple(x.shape[-2:]): x})
        self._descriptors.append(global_descriptor(x))
        old = len(self._maps) - self.keep - 1
        if old >= 0:
            self._maps[old] = None
            self._descriptors[old] = None

    def _pooled(self, index: int, size: Tuple[int, int]) -> Tensor:
        versions = self._maps[index]
        if versions is None:
            raise IndexError(f'entry {index} was released (keep={self.keep},'
                             f' {len(self)} entries)')
        if size not in versions:
            # start from the smallest cached version that is still larger
            start = min((s for s in versions
                         if s[0] >= size[0] and s[1] >= size[1]),
                        key=lambda s: s[0] * s[1],
                        default=next(iter(versions)))
            versions[size] = pool_to_size(versions[start], size)
        return versions[size]

    def gather(self, indices: Sequence[int], size: Sequence[int]
               ) -> Tuple[List[Tensor], List[Tensor]]:
        """Entries ``indices`` pooled to ``size``, and their descriptors."""
        size = tuple(size)
        return ([self._pooled(i, size) for i in indices],
                [self._descriptors[i] for i in indices])

    def step(self, block: nn.Module, x: Tensor) -> Tensor:
        """Run one dense block on its input ``x``: append its projected
        input ``block.project(x)`` as the next entry, gather the entries
        ``block.inbound_indices`` and call ``block(x, maps, descriptors)``.
        """
        entry = block.project(x)
        if len(self) != block.entry_index:
            raise RuntimeError(
                f'block expects to be entry {block.entry_index} of the list, '
                f'but it holds {len(self)} entries')
        self.append(entry)
        maps, descs = self.gather(block.inbound_indices, entry.shape[-2:])
        return block(x, maps, descs)
