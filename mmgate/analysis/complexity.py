"""Parameters and FLOPs of backbones and full models.

FLOPs come from MMEngine's ``FlopAnalyzer`` (a ``torch.jit`` trace of one
forward in eval mode), under one of two conventions:

``'mmengine'`` (default; fvcore's rules, what MMDetection / MMPretrain's
``get_flops`` tools print):
  counted: convolutions and linear layers as multiply-adds (1 per MAC, bias
  not counted), batch norm in eval mode 2 per element (1 without affine),
  group / layer norm 5 per element, adaptive average pooling 1 per input
  element, upsampling; NOT counted: element-wise ops (ReLU, GELU, add, mul,
  ``addcmul``, sigmoid, softmax), ``mean`` reductions, max pooling.
  For a Gate Module: its two 1x1 convs and its norm are counted; the global
  average pools of ``y`` and the inbounds (``Tensor.mean``), the sigmoid /
  softmax and the weighted sum are not.

``'reference'`` (the papers' tables; the rules of the authors' counter,
``takedarts/skipresnet`` ``src/utils/opcounter.py``): the above plus conv /
linear bias 1 per output element, ReLU 2 and sigmoid 4 per element,
add / sub / mul / div 1 per output element (``addcmul`` 2), softmax
``3n - 1`` per n inputs, max pooling ``k*k - 1`` and average pooling
``k*k`` per output element, ``mean`` (global pooling) 1 per input element,
mmgate's fused junction ``_FusedJunction`` (an autograd Function, opaque to the
trace) ``1 + 2n`` per output element;
GELU 1 per element (how the authors' ONNX graph counted GELU and layer norm
is not known: ConvNeXt comes out ~1.7 % below the table).
With it the base ResNet-34/50 and ResNeXt-50 of the table are reproduced
exactly and the Skip models within 0.5 %: mmgate pools each stage output
once and reuses the descriptor, where the reference pools every inbound in
every block.

``complexity()`` also returns the operators it did not count
(``skipped_ops``), so that nothing is hidden.
"""
import copy
import math
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .metafiles import paper_complexity

__all__ = [
    'DEFAULT_TASK_SHAPES', 'count_params', 'build_model', 'complexity',
    'config_complexity', 'classifier_cfg', 'classification_table',
    'format_table', 'reference_op_handles', 'CONVENTIONS', 'parse_shape',
    'model_cfg_of', 'init_weights_quietly'
]

DEFAULT_TASK_SHAPES = {
    'det': (3, 800, 1333),
    'seg': (3, 512, 512),
    'cls': (3, 224, 224),
}


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared ones once)."""
    return sum(p.numel() for p in model.parameters()
               if p.requires_grad or not trainable_only)


def build_model(model_cfg: dict,
                default_scope: Optional[str] = None) -> nn.Module:
    """Build a model or backbone config with MMEngine's registry.

    ``default_scope`` ('mmdet', 'mmseg', 'mmpretrain') is where unscoped
    types are looked up; ``mmgate.*`` types always resolve. Without CUDA,
    SyncBN layers (MMSegmentation's configs) become BN, which computes the
    same in eval mode and runs on a CPU.
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, DefaultScope

    import mmgate.models  # noqa: F401  (registers mmgate's classes)
    with DefaultScope.overwrite_default_scope(default_scope):
        model = MODELS.build(model_cfg)
    if not torch.cuda.is_available():
        model = revert_sync_batchnorm(model)
    return model


def model_cfg_of(cfg) -> dict:
    """``cfg.model`` as MMEngine's Runner builds it: a top-level
    ``data_preprocessor`` (MMPretrain's configs) goes into the model."""
    if 'model' not in cfg:
        raise KeyError('the config has no `model`')
    model = copy.deepcopy(cfg['model'])
    pre = cfg.get('data_preprocessor')
    if isinstance(model, dict) and pre is not None:
        model.setdefault('data_preprocessor', copy.deepcopy(pre))
    return model


def init_weights_quietly(model: nn.Module) -> nn.Module:
    """``model.init_weights()`` without MMEngine's per-parameter INFO log
    (a ``Pretrained`` init_cfg still loads its checkpoint)."""
    import logging

    from mmengine.logging import MMLogger
    if not hasattr(model, 'init_weights'):
        return model
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model


def _ops(count: int, op: str):
    from collections import Counter
    return Counter({op: int(count)})


def _numel(value) -> int:
    from mmengine.analysis.jit_handles import get_shape
    shape = get_shape(value)
    return int(math.prod(shape)) if shape else 0


def _elementwise(per_element: float, op: str, use_input: bool = False):

    def handle(inputs, outputs):
        return _ops(
            per_element * _numel(inputs[0] if use_input else outputs[0]), op)

    return handle


def _with_bias(base_handle, op: str):
    """MACs, plus 1 per output element when the layer has a bias."""

    def handle(inputs, outputs):
        from mmengine.analysis.jit_handles import get_shape
        macs = base_handle(inputs, outputs)
        macs = sum(macs.values()) if hasattr(macs, 'values') else macs
        bias = inputs[2] if len(inputs) > 2 else None
        has_bias = bias is not None and get_shape(bias) is not None
        return _ops(macs + (_numel(outputs[0]) if has_bias else 0), op)

    return handle


def _softmax(inputs, outputs):
    from mmengine.analysis.jit_handles import get_shape
    shape = get_shape(inputs[0])
    dim = inputs[1].toIValue()
    n = shape[dim]
    return _ops((3 * n - 1) * (math.prod(shape) // n), 'softmax')


def _int_list(value) -> List[int]:
    """A constant int list argument of a traced op (e.g. a kernel size)."""
    ivalue = value.toIValue()
    if ivalue is None and value.node().kind() == 'prim::ListConstruct':
        ivalue = [v.toIValue() for v in value.node().inputs()]
    if ivalue is None or any(v is None for v in ivalue):
        raise ValueError(f'cannot read a constant list from {value}')
    return [int(v) for v in ivalue]


def _pool(minus: int):

    def handle(inputs, outputs):
        kernel = _int_list(inputs[1])
        if len(kernel) == 1:
            kernel = kernel * 2
        area = math.prod(kernel)
        return _ops((area - minus) * _numel(outputs[0]), 'pool')

    return handle


def _gated_sum(inputs, outputs):
    """mmgate's fused junction (``mmgate/ops/junction.py``, an autograd
    Function the trace cannot look into; traced blocks pass it the branch
    output, no folded norm or ReLU): ``y * a`` (1 per element) plus one
    ``addcmul`` (2 per element) per inbound; ``n`` from the weights
    ``(B, n, C)``, the only 3-d input."""
    from mmengine.analysis.jit_handles import get_shape
    n = next((get_shape(v)[1] for v in inputs
              if get_shape(v) is not None and len(get_shape(v)) == 3), 0)
    return _ops((1 + 2 * n) * _numel(outputs[0]), 'gated_sum')


def reference_op_handles() -> Dict[str, Callable]:
    """FlopAnalyzer handles of the ``'reference'`` convention (see the
    module docstring), added to MMEngine's defaults."""
    from mmengine.analysis.jit_handles import conv_flop_jit, linear_flop_jit
    handles = {
        'aten::_convolution': _with_bias(conv_flop_jit, 'conv'),
        'aten::linear': _with_bias(linear_flop_jit, 'linear'),
        'aten::relu': _elementwise(2, 'relu'),
        'aten::relu_': _elementwise(2, 'relu'),
        'aten::sigmoid': _elementwise(4, 'sigmoid'),
        'aten::gelu': _elementwise(1, 'gelu'),
        'aten::addcmul_': _elementwise(2, 'addcmul'),
        'aten::addcmul': _elementwise(2, 'addcmul'),
        'aten::mean': _elementwise(1, 'mean', use_input=True),
        'aten::softmax': _softmax,
        'aten::max_pool2d': _pool(1),
        'aten::avg_pool2d': _pool(0),
        'prim::PythonOp._FusedJunction': _gated_sum,
    }
    for op in ('add', 'sub', 'mul', 'div'):
        handles[f'aten::{op}'] = _elementwise(1, op)
        handles[f'aten::{op}_'] = _elementwise(1, op)
    return handles


CONVENTIONS = ('mmengine', 'reference')


class _TensorForward(nn.Module):
    """``model(x, data_samples, mode='tensor')`` of an MMEngine model as a
    one-input module, for tracing."""

    def __init__(self, model: nn.Module, data_samples=None) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, x):
        return self.model(x, self.data_samples, mode='tensor')


def _dummy_data_samples(model: nn.Module, shape: Sequence[int]):
    """Data samples a ``mode='tensor'`` forward needs: MMDetection's
    two-stage and cascade detectors read ``img_shape`` of each image."""
    module = type(model).__module__
    if not module.startswith('mmdet.'):
        return None
    from mmdet.structures import DetDataSample
    h, w = shape[-2:]
    meta = dict(
        img_shape=(h, w),
        ori_shape=(h, w),
        pad_shape=(h, w),
        batch_input_shape=(h, w),
        scale_factor=(1., 1.))
    return [DetDataSample(metainfo=meta)]


def complexity(model: nn.Module,
               input_shape: Optional[Sequence[int]] = (3, 224, 224),
               backbone_only: bool = False,
               convention: str = 'mmengine') -> Dict:
    """Parameters and FLOPs of ``model`` for one image of ``input_shape``.

    Args:
        model (nn.Module): A backbone (``forward(x)``) or an MMEngine model
            (``forward(inputs, data_samples, mode)``), run in eval mode.
        input_shape (Sequence[int], optional): ``(C, H, W)``; None skips
            the FLOP count.
        backbone_only (bool): Count ``model.backbone`` only.
        convention (str): ``'mmengine'`` or ``'reference'`` (module
            docstring).

    Returns:
        dict: ``params`` (int), ``flops`` (int or None, multiply-adds),
        ``skipped_ops`` (dict op -> calls not counted),
        ``by_module`` (dict top-level child -> FLOPs).
    """
    from mmengine.analysis import FlopAnalyzer
    if convention not in CONVENTIONS:
        raise ValueError(f'convention must be one of {CONVENTIONS}, got '
                         f'{convention!r}')
    if backbone_only:
        if not hasattr(model, 'backbone'):
            raise AttributeError(
                f'{type(model).__name__} has no backbone to count alone')
        model = model.backbone
    result = dict(
        params=count_params(model), flops=None, skipped_ops={}, by_module={})
    if input_shape is None:
        return result
    if len(input_shape) != 3:
        raise ValueError(f'input_shape must be (C, H, W), got {input_shape}')
    was_training = model.training
    model.eval()
    try:
        from mmengine.model import BaseModel
        target = model
        if isinstance(model, BaseModel):
            target = _TensorForward(model,
                                    _dummy_data_samples(model, input_shape))
        param = next(model.parameters(), None)
        x = torch.zeros(
            1,
            *input_shape,
            device=param.device if param is not None else 'cpu')
        with torch.no_grad():
            analyzer = FlopAnalyzer(target, (x, ))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            analyzer.tracer_warnings('none')
            if convention == 'reference':
                analyzer.set_op_handle(**reference_op_handles())
            result['flops'] = int(analyzer.total())
            result['skipped_ops'] = dict(analyzer.unsupported_ops())
            prefix = 'model.' if target is not model else ''
            by_module = analyzer.by_module()
            result['by_module'] = {
                name[len(prefix):]: int(by_module[name])
                for name, _ in target.named_modules()
                if name.startswith(prefix) and name != prefix.rstrip('.')
                and name[len(prefix):].count('.') == 0 and name in by_module
            }
    finally:
        model.train(was_training)
    return result


def config_complexity(cfg,
                      input_shape: Optional[Sequence[int]] = None,
                      backbone_only: bool = False,
                      convention: str = 'mmengine') -> Dict:
    """``complexity()`` of the model of an MMEngine config (a ``Config``
    or a path); the config's ``model`` may also be a bare backbone."""
    from mmengine.config import Config
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    model = build_model(model_cfg_of(cfg), cfg.get('default_scope'))
    return complexity(model, input_shape, backbone_only, convention)


# ---- the classification variants of the papers' tables -----------------

_CLS_NAME = re.compile(
    r'^(?P<skip>Skip)?(?P<family>ResNeXt|ResNet|ConvNeXt)-'
    r'(?P<size>\d+|T|S|B|L|XL)(?:-(?P<groups>\d+)x(?P<width>\d+)d)?$')
_CONVNEXT = {
    'T': ('tiny', 768),
    'S': ('small', 768),
    'B': ('base', 1024),
    'L': ('large', 1536),
    'XL': ('xlarge', 2048)
}


def classifier_cfg(name: str, num_classes: int = 1000) -> dict:
    """An MMPretrain ``ImageClassifier`` config of a named variant.

    Base models are MMPretrain's ``ResNet`` / ``ResNeXt`` / ``ConvNeXt``;
    gated ones mmgate's. Names as in the papers: ``ResNet-50``,
    ``SkipResNeXt-101-32x4d``, ``SkipConvNeXt-T``.
    """
    m = _CLS_NAME.match(name)
    if m is None:
        raise ValueError(
            f'unknown classification variant {name!r}: expected e.g. '
            "'ResNet-50', 'SkipResNeXt-50-32x4d', 'SkipConvNeXt-T'")
    skip, family, size = bool(m['skip']), m['family'], m['size']
    scope = 'mmgate.Skip' if skip else 'mmpretrain.'
    neck = dict(type='mmpretrain.GlobalAveragePooling')
    if family == 'ConvNeXt':
        if size not in _CONVNEXT:
            raise ValueError(f'unknown ConvNeXt size {size!r} in {name!r}')
        arch, channels = _CONVNEXT[size]
        backbone = dict(type=scope + 'ConvNeXt', arch=arch)
        neck = None
    else:
        if not size.isdigit():
            raise ValueError(f'{family} needs a depth, got {name!r}')
        depth = int(size)
        backbone = dict(type=scope + family, depth=depth, out_indices=(3, ))
        channels = (512 if depth < 50 else 2048)
        if family == 'ResNeXt':
            backbone.update(
                groups=int(m['groups'] or 32),
                width_per_group=int(m['width'] or 4))
        elif m['groups']:
            raise ValueError(f'ResNet takes no groups: {name!r}')
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=backbone,
        neck=neck,
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=num_classes,
            in_channels=channels))


SPEC_TABLE_MODELS = ('ResNet-50', 'SkipResNet-50', 'ResNeXt-50-32x4d',
                     'SkipResNeXt-50-32x4d', 'ConvNeXt-T', 'SkipConvNeXt-T')


def classification_table(names: Sequence[str] = SPEC_TABLE_MODELS,
                         input_size: int = 224,
                         conventions: Sequence[str] = CONVENTIONS,
                         model_index=None) -> List[Dict]:
    """Params and FLOPs of classification variants next to the paper's
    numbers: ``Metadata.Parameters`` / ``FLOPs`` of the ImageNet-1k model
    with that ``Backbone`` in the model index (``metafiles.paper_complexity``;
    '-' where the paper gives none).

    Args:
        names: Variant names (``classifier_cfg``).
        input_size (int): Square input; the paper's FLOPs are at 224.
        conventions: FLOP conventions to count (empty: parameters only).
        model_index (ModelIndex, optional): Default: mmgate's
            (``metafiles.load_model_index()``).

    Returns:
        list[dict]: ``name, params_M, paper_params_M, params_diff_pct`` and
        for each convention ``c``: ``flops_G_c, flops_diff_pct_c,
        skipped_ops_c``; ``paper_flops_G``.
    """
    from .metafiles import load_model_index
    index = model_index if model_index is not None else load_model_index()
    rows = []
    for name in names:
        model = build_model(classifier_cfg(name), 'mmpretrain')
        paper = paper_complexity(name, index) or (None, None)
        row = dict(
            name=name,
            params_M=count_params(model) / 1e6,
            paper_params_M=paper[0],
            paper_flops_G=paper[1] if input_size == 224 else None)
        row['params_diff_pct'] = _pct(row['params_M'], paper[0])
        for conv in conventions:
            res = complexity(
                model, (3, input_size, input_size), convention=conv)
            row[f'flops_G_{conv}'] = res['flops'] / 1e9
            row[f'flops_diff_pct_{conv}'] = _pct(row[f'flops_G_{conv}'],
                                                 row['paper_flops_G'])
            row[f'skipped_ops_{conv}'] = res['skipped_ops']
        rows.append(row)
    return rows


def _pct(ours: Optional[float], ref: Optional[float]) -> Optional[float]:
    if ours is None or ref is None:
        return None
    return 100. * (ours - ref) / ref


def format_table(rows: Sequence[Dict]) -> str:
    """Markdown of ``classification_table`` rows."""

    def f(v, d):
        return '-' if v is None else f'{v:.{d}f}'

    convs = [c for c in CONVENTIONS if rows and f'flops_G_{c}' in rows[0]]
    head = '| model | params (M) | paper | Δ % |'
    sep = '|---|---|---|---|'
    for c in convs:
        head += f' FLOPs (G), {c} | Δ % |'
        sep += '---|---|'
    head += ' paper FLOPs (G) |'
    sep += '---|'
    out = [head, sep]
    for r in rows:
        line = (f"| {r['name']} | {f(r['params_M'], 2)} | "
                f"{f(r['paper_params_M'], 2)} | "
                f"{f(r['params_diff_pct'], 2)} |")
        for c in convs:
            line += (f" {f(r[f'flops_G_{c}'], 3)} | "
                     f"{f(r[f'flops_diff_pct_{c}'], 2)} |")
        line += f" {f(r['paper_flops_G'], 3)} |"
        out.append(line)
    return '\n'.join(out)


def parse_shape(values: Union[int, Sequence[int]],
                channels: int = 3) -> Tuple[int, int, int]:
    """``224`` or ``[224]`` -> (3, 224, 224); ``[800, 1333]`` -> (3, 800,
    1333); ``[1, 64, 64]`` -> (1, 64, 64)."""
    if isinstance(values, int):
        values = [values]
    values = [int(v) for v in values]
    if len(values) == 1:
        return channels, values[0], values[0]
    if len(values) == 2:
        return (channels, *values)
    if len(values) == 3:
        return tuple(values)
    raise ValueError(f'a shape is H, H W or C H W; got {values}')
