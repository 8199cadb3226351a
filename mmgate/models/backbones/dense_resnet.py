"""DenseResNet (Takeda, MIRU 2020): ResNet whose blocks mix the last N
outputs of the whole network through a Gate Module.

Block ``i`` computes (paper eq. 3)::

    x_i = act(v_i * f_i(x_{i-1}) + sum_{k=i-N+1..i} w_ik * e_k)
    with sum_k w_ik = 1

where ``e_k`` is entry k of one global list (what every block used as its
shortcut), so connections cross stage boundaries; older entries are
average-pooled and zero-padded / truncated to the block's shape by the
:class:`~mmgate.models.layers.InboundRouter`. The junction and the branches
are the Skip family's; only the connection pattern differs (the class
attribute ``pattern = 'dense'``). Weight layout: MMDetection's ResNet keys plus
``layer{s}.{j}.gate.{conv1,norm,conv2}``.
"""
from typing import Sequence

from mmgate.registry import MODELS
from .blocks import BasicBlock
from .skip_resnet import SkipResNet

__all__ = ['DenseResNet', 'DenseResNetCIFAR']


@MODELS.register_module()
class DenseResNet(SkipResNet):
    """DenseResNet backbone, MMDetection ``ResNet`` interface.

    Every block ends with ``relu(sigmoid(g0) * y + sum_k w_k * e_k)`` over
    the last ``N`` entries of the global list, across stage boundaries.
    DenseResNet-34 with N = 2 / 4 / 6 / 8 has 22.75M / 23.38M / 24.00M /
    24.60M parameters with a 1000-class head.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        num_connections (int): N, the number of earlier entries each block
            mixes (any N >= 1; the paper's ImageNet best is 6). Defaults to 4
            (the 2020 code's default).
        pad_mode (str): ``'masked'`` keeps zero-padded channels of narrower
            (older) inbounds out of the softmax; ``'paper'`` is the 2020
            code's plain softmax over all inbounds. Same parameters.
            Defaults to 'masked'.
        **kwargs: Every :class:`SkipResNet` argument.

    Example:
        >>> import torch
        >>> from mmgate.models import DenseResNet
        >>> model = DenseResNet(depth=18, base_channels=8, num_connections=4,
        ...                     out_indices=(1, 3)).eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 32, 32))]
        [(1, 16, 4, 4), (1, 64, 1, 1)]
        >>> model.layer2[0].inbound_indices  # entries 2, 1, 0, stage 1's
        [2, 1, 0]
    """

    pattern = 'dense'
    family_args = ('num_connections', 'pad_mode')

    def __init__(self,
                 depth: int,
                 num_connections: int = 4,
                 pad_mode: str = 'masked',
                 **kwargs) -> None:
        super().__init__(
            depth,
            num_connections=num_connections,
            pad_mode=pad_mode,
            **kwargs)


@MODELS.register_module()
class DenseResNetCIFAR(DenseResNet):
    """DenseResNet in the CIFAR layout of the paper's CIFAR-100 table.

    ResNet-(6n+2) of He et al.: a 3x3 stem conv (stride 1, no max pool) and
    three stages of n basic blocks with 16 / 32 / 64 channels (strides 1, 2,
    2; 1x1 conv + BN projections). Dense-ResNet-110 with N = 4 and gate
    reduction 2 (the authors' CIFAR setting) has 2.23M parameters with a
    100-class head (ResNet-110: 1.74M).

    Args:
        depth (int): 20, 32, 44, 56 or 110.
        base_channels (int): Width of the first stage. Defaults to 16.
        out_indices (Sequence[int]): Defaults to (2, ), the last stage.
        **kwargs: :class:`DenseResNet` arguments (``num_connections``,
            ``pad_mode``, ``gate_reduction`` ...).

    Example:
        >>> import torch
        >>> from mmgate.models import DenseResNetCIFAR
        >>> model = DenseResNetCIFAR(depth=20, gate_reduction=2).eval()
        >>> tuple(model(torch.rand(1, 3, 32, 32))[0].shape)
        (1, 64, 8, 8)
    """

    arch_settings = {
        depth: (BasicBlock, ((depth - 2) // 6, ) * 3)
        for depth in (20, 32, 44, 56, 110)
    }
    family_args = DenseResNet.family_args + ('cifar_stem', )

    def __init__(self,
                 depth: int,
                 base_channels: int = 16,
                 num_stages: int = 3,
                 strides: Sequence[int] = (1, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1),
                 out_indices: Sequence[int] = (2, ),
                 deep_stem: bool = False,
                 **kwargs) -> None:
        assert not deep_stem, 'DenseResNetCIFAR has a single 3x3 stem conv'
        assert 1 <= num_stages <= 3, \
            f'the CIFAR layout has 3 stages, got num_stages={num_stages}'
        super().__init__(
            depth=depth,
            base_channels=base_channels,
            num_stages=num_stages,
            strides=strides,
            dilations=dilations,
            out_indices=out_indices,
            cifar_stem=True,
            **kwargs)
