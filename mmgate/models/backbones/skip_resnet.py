"""SkipResNet and SkipResNeXt: ResNets whose blocks end in a Gate Module.

Takeda et al., "Skip-connected ResNets" (SkipResNet, 2022;
https://github.com/takedarts/skipresnet). Every block ends with
``relu(sigmoid(g0) * y + sum_k w_k * x_k)``, where ``x_k`` are its stage's
outputs 1, 2, 4, ... blocks back (``layers/router.py``) and ``w`` a
per-channel softmax (``layers/gate.py``).

The interface is MMDetection's ``ResNet`` / ``ResNeXt`` (same argument names
and meanings), and so is the weight layout of everything but the gates, plus
``layer{s}.{j}.gate.{conv1,norm,conv2}``; the published weights' conversion
is in ``mmgate/models/utils/timm_convert.py``. The body is
:class:`~mmgate.models.backbones.resnet_base.RoutedResNet`.
"""
from typing import Optional

from mmgate.registry import MODELS
from ..layers.gate import gate_cfg_of, gate_norm_of
from .resnet_base import RESNEXT_ARCHS, RoutedResNet

__all__ = ['SkipResNet', 'SkipResNetV1c', 'SkipResNetV1d', 'SkipResNeXt']


@MODELS.register_module()
class SkipResNet(RoutedResNet):
    """SkipResNet backbone (ResNet with Gate Modules), MMDetection interface.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        in_channels (int): Input image channels. Defaults to 3.
        stem_channels (int, optional): Stem width. Defaults to
            ``base_channels``.
        base_channels (int): Width of the first stage. Defaults to 64.
        num_stages (int): 1 to 4. Defaults to 4.
        strides (Sequence[int]): Stride of each stage.
        dilations (Sequence[int]): Dilation of each stage (output stride 8:
            strides (1, 2, 1, 1), dilations (1, 1, 2, 4)).
        out_indices (Sequence[int]): Stages whose outputs are returned.
        style (str): 'pytorch' (stride on the 3x3) or 'caffe'.
        deep_stem (bool): Three 3x3 convs as stem (V1c). Defaults to False.
        avg_down (bool): Average pool in the projection (V1d).
        frozen_stages (int): Stages to freeze (stem = 0); -1 freezes none.
        conv_cfg (dict, optional): Conv config.
        norm_cfg (dict): Norm config (BN, SyncBN, GN ...).
        norm_eval (bool): Keep every BN in eval mode while training, the
            gates' norms included. Defaults to True (as MMDetection).
        dcn (dict, optional): Conv config of the bottleneck 3x3 convs.
        stage_with_dcn (Sequence[bool]): Stages using ``dcn``.
        with_cp (bool): Gradient checkpointing. Defaults to False.
        zero_init_residual (bool): Zero-init the last norm of each residual
            branch. Defaults to True.
        contract_dilation (bool): Halve the first block's dilation in dilated
            stages (MMSegmentation). Defaults to False.
        drop_path_rate (float): Stochastic depth, linear over all blocks.
        gate_reduction (int): Gate MLP reduction. Defaults to 8.
        gate_norm_cfg (dict, optional): Norm inside the gates. Defaults to
            ``norm_cfg`` when that is a BatchNorm (BN, SyncBN: type and
            ``requires_grad`` follow), else BN
            (``layers.gate.gate_norm_of``). With one image per device a
            training gate BN normalises with its running statistics
            (``GateModule._norm``).
        gate_act_cfg (dict): Activation inside the gates. Defaults to ReLU.
        gate_lean (bool): Drop the dead softmax slot of single-inbound gates
            (breaks loading the published weights). Defaults to False.
        init_cfg (dict or list[dict], optional): Initialisation config.
            ``dict(type='Pretrained', checkpoint=..., prefix=...)`` accepts
            mmgate checkpoints and the authors' original timm files; every
            key and shape must fit.

    Example:
        >>> import torch
        >>> from mmgate.models import SkipResNet
        >>> model = SkipResNet(depth=18, base_channels=8,
        ...                    out_indices=(0, 1, 2, 3))
        >>> _ = model.eval()
        >>> outs = model(torch.rand(1, 3, 32, 32))
        >>> for out in outs:
        ...     print(tuple(out.shape))
        (1, 8, 8, 8)
        (1, 16, 4, 4)
        (1, 32, 2, 2)
        (1, 64, 1, 1)
    """

    # which earlier maps the gates read (``RoutedResNet``'s ``pattern``);
    # a subclass that reads another pattern sets its own
    pattern = 'skip'

    def __init__(self,
                 depth: int,
                 gate_reduction: int = 8,
                 gate_norm_cfg: Optional[dict] = None,
                 gate_act_cfg: dict = dict(type='ReLU'),
                 gate_lean: bool = False,
                 **kwargs) -> None:
        self.check_family_args(kwargs)
        if gate_norm_cfg is None:
            gate_norm_cfg = gate_norm_of(
                kwargs.get('norm_cfg', dict(type='BN', requires_grad=True)))
        super().__init__(
            depth,
            gate_cfg=gate_cfg_of(gate_reduction, gate_norm_cfg, gate_act_cfg,
                                 gate_lean),
            pattern=type(self).pattern,
            **kwargs)


@MODELS.register_module()
class SkipResNetV1c(SkipResNet):
    """SkipResNet-V1c: deep stem (three 3x3 convs), as MMSegmentation's
    ``ResNetV1c``."""

    def __init__(self, **kwargs) -> None:
        super().__init__(deep_stem=True, avg_down=False, **kwargs)


@MODELS.register_module()
class SkipResNetV1d(SkipResNet):
    """SkipResNet-V1d: deep stem and average-pool projections."""

    def __init__(self, **kwargs) -> None:
        super().__init__(deep_stem=True, avg_down=True, **kwargs)


@MODELS.register_module()
class SkipResNeXt(SkipResNet):
    """SkipResNeXt backbone: 50-32x4d, 101-32x4d, 101-32x8d, ...

    Args:
        depth (int): 50, 101 or 152.
        groups (int, optional): Cardinality of the 3x3 convs. Defaults to the
            host library's: 1 in MMDetection / MMSegmentation, 32 in
            MMPretrain (``backbones/base.py``).
        width_per_group (int, optional): Width of each group (MMPretrain's
            name; ``base_width`` is MMDetection's). Defaults to 4.
        **kwargs: Everything ``SkipResNet`` takes.

    Example:
        >>> import torch
        >>> from mmgate.models import SkipResNeXt
        >>> model = SkipResNeXt(depth=50, groups=4, width_per_group=4,
        ...                     base_channels=16, out_indices=(3, ))
        >>> _ = model.eval()
        >>> print(tuple(model(torch.rand(1, 3, 32, 32))[0].shape))
        (1, 512, 1, 1)
    """

    arch_settings = RESNEXT_ARCHS
    family_args = ('groups', 'width_per_group', 'base_width')
    resnext = True
