"""Parameters and FLOPs: the counting convention, and the papers' table
(whose numbers come from the metafiles' Metadata.Parameters / FLOPs)."""
import pytest
import torch
from mmengine.fileio import dump

from mmgate.analysis.complexity import (build_model, classification_table,
                                        classifier_cfg, complexity,
                                        format_table, parse_shape)
from mmgate.analysis.metafiles import load_model_index, paper_complexity
from mmgate.models.layers import GateModule
from tests.helpers import load_tool


def test_gate_flops_convention():
    """A gate on 16 channels, 2 inbounds, 6x6 maps: MMEngine counts its two
    1x1 convs (MACs) and its eval-mode BN (2 per element); the pools,
    sigmoid, softmax and weighted sum are not counted."""

    class Wrap(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.gate = GateModule(16, 2, reduction=8)

        def forward(self, x):
            return self.gate(x, [x * 0.5, x * 0.25])

    res = complexity(Wrap(), (16, 6, 6))
    c, n, m = 16, 2, 8  # M = ceil(max(16 // 8, 1) / 8) * 8 = 8
    conv1 = c * (1 + n) * m
    conv2 = m * (1 + n) * c
    bn = 2 * m
    assert res['flops'] == conv1 + conv2 + bn
    assert res['params'] == conv1 + (2 * m) + conv2 + (1 + n) * c
    skipped = set(res['skipped_ops'])
    assert {'aten::mean', 'aten::sigmoid', 'aten::softmax'} <= skipped


@pytest.mark.parametrize(
    'name',
    ['ResNet-50', 'SkipResNet-50', 'SkipResNeXt-50-32x4d', 'SkipConvNeXt-T'])
def test_classification_flops_within_2_percent_of_paper(name):
    """The paper's FLOPs (configs/*/metafile.yml) follow the authors'
    counter ('reference'); the parameter count checks the gate wiring to
    0.01M."""
    (row, ) = classification_table([name], 224, conventions=('reference', ))
    assert abs(row['flops_diff_pct_reference']) < 2, row
    assert row['params_M'] == pytest.approx(row['paper_params_M'], abs=0.01)
    if name == 'ResNet-50':  # the reference rules reproduce it exactly
        assert row['flops_G_reference'] == pytest.approx(4.138, abs=5e-4)


def test_paper_complexity_reads_the_metafiles(tmp_path):
    """The ImageNet-1k classifier with that Metadata.Backbone; none for a
    variant the papers give no numbers of; another index, other numbers."""
    assert paper_complexity('SkipResNet-50') == (40.15, 4.201)
    assert paper_complexity('ResNeXt-101-32x4d') == (44.18, 8.063)
    assert paper_complexity('SkipConvNeXt-B') == (99.85, 15.65)
    assert paper_complexity('ResNet-18') is None
    # a detector with the same backbone states no parameters: not taken
    index = load_model_index()
    assert index.get('cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco'
                     ).backbone == 'SkipResNet-50'

    (tmp_path / 'm').mkdir()
    (tmp_path / 'model-index.yml').write_text('Import:\n  - m/metafile.yml\n')
    dump(
        dict(Models=[
            dict(
                Name='cifar',
                Metadata={
                    'Backbone': 'SkipResNet-18',
                    'Training Data': 'CIFAR-100',
                    'Parameters': 1
                }),
            dict(
                Name='in1k',
                Metadata={
                    'Backbone': 'SkipResNet-18',
                    'Training Data': 'ImageNet-1k',
                    'Parameters': 13_000_000
                }),
        ]), str(tmp_path / 'm' / 'metafile.yml'))
    other = load_model_index(str(tmp_path))
    assert paper_complexity('SkipResNet-18', other) == (13.0, None)
    (row, ) = classification_table(['SkipResNet-18'],
                                   224,
                                   conventions=(),
                                   model_index=other)
    assert row['params_M'] == pytest.approx(12.13, abs=0.01)
    assert row['paper_params_M'] == 13.0 and row['paper_flops_G'] is None
    assert row['params_diff_pct'] == pytest.approx(100 *
                                                   (row['params_M'] - 13) / 13)
    table = format_table([row])
    assert table.splitlines()[0].startswith('| model | params (M) | paper |')
    assert '| SkipResNet-18 | 12.13 | 13.00 |' in table


def test_reference_convention_counts_gate_elementwise_ops():
    """'reference' adds, on top of 'mmengine': conv2's bias (1 per output),
    the pools (1 per input element), sigmoid (4 per element), softmax
    (3n - 1 per n), the product with y (1 per element) and one addcmul per
    inbound (2 per element), and the ReLU inside (2 per element)."""

    class Wrap(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.gate = GateModule(16, 2, reduction=8)

        def forward(self, x, y):
            return self.gate(x, [y, y])

    model = Wrap()
    x = (16, 6, 6)
    base = complexity(_Pair(model), x)['flops']
    ref = complexity(_Pair(model), x, convention='reference')['flops']
    c, n, m, hw = 16, 2, 8, 36
    extra = ((1 + n) * c  # conv2 bias
             + (1 + n) * c * hw  # mean of y and of the 2 inbounds
             + 2 * m  # ReLU in the MLP
             + 4 * c  # sigmoid
             + (3 * n - 1) * c  # softmax over 2 slots, per channel
             + c * hw  # y * gate
             + n * 2 * c * hw)  # addcmul per inbound
    assert ref - base == extra
    with pytest.raises(ValueError, match='convention must be one of'):
        complexity(model, x, convention='fvcore')


class _Pair(torch.nn.Module):
    """One input traced, two tensors for the wrapped forward."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x, x.flip(-1))


def test_classifier_cfg_and_shapes():
    cfg = classifier_cfg('SkipResNeXt-101-32x4d')
    assert cfg['backbone'] == dict(
        type='mmgate.SkipResNeXt',
        depth=101,
        out_indices=(3, ),
        groups=32,
        width_per_group=4)
    assert classifier_cfg('ConvNeXt-S')['backbone'] == dict(
        type='mmpretrain.ConvNeXt', arch='small')
    with pytest.raises(ValueError, match='unknown classification variant'):
        classifier_cfg('VGG-16')
    assert parse_shape([224]) == (3, 224, 224)
    assert parse_shape([800, 1333]) == (3, 800, 1333)
    with pytest.raises(ValueError, match='a shape is'):
        parse_shape([1, 2, 3, 4])


def test_get_flops_cli(capsys):
    tool = load_tool('analysis/get_flops')
    res = tool.main(
        ['SkipResNet-18', '--shape', '64', '--convention', 'reference'])
    out = capsys.readouterr().out
    assert 'params: 12.1' in out and 'reference convention' in out
    assert res['params'] == pytest.approx(12.13e6, abs=0.01e6)


def test_full_detector_flops(tmp_path):
    """A full MMDetection model (tensor mode, with image metas) and its
    backbone alone."""
    from mmengine.config import Config
    path = tmp_path / 'cascade.py'
    path.write_text("_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn"
                    "_1x_coco.py'\n")
    cfg = Config.fromfile(str(path))
    cfg.model.backbone = dict(
        type='mmgate.SkipResNet', depth=18, base_channels=8)
    cfg.model.neck.in_channels = [8, 16, 32, 64]
    cfg.model.test_cfg.rpn.update(nms_pre=50, max_per_img=10)
    model = build_model(cfg.model, 'mmdet')
    full = complexity(model, (3, 64, 96))
    bb = complexity(model, (3, 64, 96), backbone_only=True)
    assert full['flops'] > bb['flops'] > 0
    assert bb['params'] == sum(p.numel() for p in model.backbone.parameters())
    assert {'backbone', 'neck', 'rpn_head',
            'roi_head'} <= set(full['by_module'])
    assert full['by_module']['backbone'] == bb['flops']
