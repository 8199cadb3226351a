import pytest
import torch

from mmgate.models import (DenseResNet, SkipResNet, SkipResNetV1c,
                           SkipResNetV1d, SkipResNeXt)
from mmgate.models.backbones import RoutedStage
from tests.helpers import (assert_same_forward_backward, check_norm_state,
                           forward_backward, params_with_head)


# parameters with a 1000-class head, as published (Takeda et al., SkipResNet
# README, github.com/takedarts/skipresnet)
@pytest.mark.parametrize('cls,kwargs,expected', [
    (SkipResNet, dict(depth=18), 12.13),
    (SkipResNet, dict(depth=34), 22.72),
    (SkipResNet, dict(depth=50), 40.15),
    (SkipResNet, dict(depth=101), 83.36),
    (SkipResNet, dict(depth=152), 121.98),
    (SkipResNeXt, dict(depth=50, groups=32, width_per_group=4), 39.63),
    (SkipResNeXt, dict(depth=101, groups=32, width_per_group=4), 82.99),
])
def test_parameter_counts_match_published(cls, kwargs, expected):
    model = cls(**kwargs)
    assert params_with_head(model) == pytest.approx(expected, abs=0.005)


def test_resnext101_32x8d_builds_wider():
    x4 = SkipResNeXt(depth=101, groups=32, width_per_group=4)
    x8 = SkipResNeXt(depth=101, groups=32, width_per_group=8)
    assert x8.layer1[0].conv2.out_channels == 256
    assert x8.layer1[0].conv2.groups == 32
    assert params_with_head(x8) > params_with_head(x4) + 40


# inbounds per block of each stage: 1, 2, 4, ... outputs back
@pytest.mark.parametrize('depth,expected', [
    (18, [[1, 2], [1, 2], [1, 2], [1, 2]]),
    (34, [[1, 2, 2], [1, 2, 2, 3], [1, 2, 2, 3, 3, 3], [1, 2, 2]]),
    (50, [[1, 2, 2], [1, 2, 2, 3], [1, 2, 2, 3, 3, 3], [1, 2, 2]]),
    (101, [[1, 2, 2], [1, 2, 2, 3], [1, 2, 2] + [3] * 4 + [4] * 8 + [5] * 8,
           [1, 2, 2]]),
    (152, [[1, 2, 2], [1, 2, 2, 3] + [3] * 3 + [4],
           [1, 2, 2] + [3] * 4 + [4] * 8 + [5] * 16 + [6] * 5, [1, 2, 2]]),
])
def test_inbound_pattern(depth, expected):
    model = SkipResNet(depth=depth, base_channels=8)
    got = [[len(block.inbound_indices) for block in getattr(model, name)]
           for name in model.res_layers]
    assert got == expected
    for name in model.res_layers:
        for j, block in enumerate(getattr(model, name)):
            assert block.gate.num_inbounds == len(block.inbound_indices)
            assert block.inbound_indices[0] == j  # the previous output first
            assert all(0 <= i <= j for i in block.inbound_indices)


@pytest.mark.parametrize('out_indices', [(0, ), (1, ), (2, ), (3, ),
                                         (0, 1, 2, 3), (1, 3), (-1, )])
@pytest.mark.parametrize('depth', [18, 50])
def test_forward_shapes(depth, out_indices):
    model = SkipResNet(depth=depth, base_channels=8, out_indices=out_indices)
    model.eval()
    outs = model(torch.rand(2, 3, 64, 64))
    exp = 1 if depth == 18 else 4
    idx = [i % 4 for i in out_indices]
    assert len(outs) == len(idx)
    for out, i in zip(outs, idx):
        assert out.shape == (2, 8 * 2**i * exp, 16 // 2**i, 16 // 2**i)
    assert [f['num_chs'] for f in model.feature_info] == \
        [8 * 2**i * exp for i in idx]


@pytest.mark.parametrize('strides,dilations,size', [
    ((1, 2, 1, 1), (1, 1, 2, 4), 8),
    ((1, 2, 2, 1), (1, 1, 1, 2), 4),
])
def test_output_stride_by_dilation(strides, dilations, size):
    model = SkipResNet(
        depth=50,
        base_channels=8,
        strides=strides,
        dilations=dilations,
        contract_dilation=True).eval()
    outs = model(torch.rand(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [16, 8, size, size]
    assert model.layer4[1].conv2.dilation == (dilations[3], ) * 2


def test_variants_and_styles():
    v1c = SkipResNetV1c(depth=18, base_channels=8)
    assert v1c.deep_stem and not hasattr(v1c, 'conv1')
    v1d = SkipResNetV1d(depth=50, base_channels=8)
    assert isinstance(v1d.layer2[0].downsample[0], torch.nn.AvgPool2d)
    caffe = SkipResNet(depth=50, base_channels=8, style='caffe')
    assert caffe.layer2[0].conv1.stride == (2, 2)
    assert caffe.layer2[0].conv2.stride == (1, 1)
    for model in (v1c, v1d, caffe):
        model.eval()
        assert model(torch.rand(1, 3, 32, 32))[-1].shape[-1] == 1


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(KeyError, match='invalid depth 42'):
        SkipResNet(depth=42)
    with pytest.raises(KeyError, match='invalid depth 18'):
        SkipResNeXt(depth=18)
    with pytest.raises(AssertionError, match='num_stages'):
        SkipResNet(depth=18, num_stages=5)
    with pytest.raises(AssertionError, match='strides and dilations'):
        SkipResNet(depth=18, strides=(1, 2, 2), dilations=(1, 1, 1, 1))
    with pytest.raises(AssertionError, match='out_indices'):
        SkipResNet(depth=18, out_indices=(4, ))
    with pytest.raises(AssertionError, match='style'):
        SkipResNet(depth=50, style='tf')
    with pytest.raises(TypeError, match='unexpected keyword'):
        SkipResNet(depth=18, no_such_option=1)


@pytest.mark.parametrize('cls,depth', [(SkipResNet, 50), (DenseResNet, 18)])
def test_frozen_stages_cover_gates(cls, depth):
    model = cls(depth=depth, base_channels=8, frozen_stages=2, norm_eval=False)
    model.train()
    for m in (model.conv1, model.norm1):
        assert all(not p.requires_grad for p in m.parameters())
        assert not m.training
    for i in (1, 2):
        layer = getattr(model, f'layer{i}')
        assert all(not p.requires_grad for p in layer.parameters())
        assert check_norm_state(layer.modules(), False)
        assert not layer[-1].gate.norm.training
    for i in (3, 4):
        layer = getattr(model, f'layer{i}')
        assert all(p.requires_grad for p in layer.parameters())
        assert check_norm_state(layer.modules(), True)
        assert layer[0].gate.norm.training
    model(torch.rand(2, 3, 32, 32))[-1].sum().backward()
    assert model.layer1[0].conv1.weight.grad is None
    assert model.layer3[0].gate.conv1.weight.grad is not None


def test_frozen_deep_stem():
    model = SkipResNetV1c(
        depth=18, base_channels=8, frozen_stages=0, norm_eval=False)
    model.train()
    assert all(not p.requires_grad for p in model.stem.parameters())
    assert check_norm_state(model.stem.modules(), False)
    assert check_norm_state(model.layer1.modules(), True)


def test_norm_eval_covers_gate_norms():
    model = SkipResNet(depth=18, base_channels=8, norm_eval=True)
    model.train()
    assert check_norm_state(model.modules(), False)
    gate_norms = [
        b.gate.norm for n in model.res_layers for b in getattr(model, n)
    ]
    assert gate_norms and all(not m.training for m in gate_norms)
    # running stats of every BN, the gates' too, stay untouched
    before = {
        k: v.clone()
        for k, v in model.state_dict().items() if 'running_mean' in k
    }
    model(torch.rand(2, 3, 32, 32))
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    model = SkipResNet(depth=18, base_channels=8, norm_eval=False)
    model.train()
    assert check_norm_state(model.modules(), True)


def test_gate_norm_and_act_are_configurable():
    model = SkipResNet(
        depth=18,
        base_channels=32,
        norm_cfg=dict(type='GN', num_groups=4),
        gate_norm_cfg=dict(type='GN', num_groups=4),
        gate_act_cfg=dict(type='GELU'),
        gate_reduction=4)
    gate = model.layer1[0].gate
    assert isinstance(gate.norm, torch.nn.GroupNorm)
    assert isinstance(gate.act, torch.nn.GELU)
    assert gate.conv1.out_channels == 8
    assert model.layer1[0].norm1_name == 'gn1'
    model.train()
    assert model(torch.rand(1, 3, 32, 32))[0].shape == (1, 32, 8, 8)


def test_zero_init_residual_and_init():
    model = SkipResNet(depth=50, base_channels=8)
    model.init_weights()
    for name in model.res_layers:
        for block in getattr(model, name):
            assert torch.all(block.norm3.weight == 0)
            assert torch.all(block.norm1.weight == 1)
            assert torch.all(block.gate.conv2.bias == 0)
    model = SkipResNet(depth=18, base_channels=8, zero_init_residual=False)
    model.init_weights()
    assert torch.all(model.layer1[0].norm2.weight == 1)


@pytest.mark.parametrize('cls,kwargs', [
    (SkipResNet, dict(depth=50)),
    (SkipResNeXt, dict(depth=50, groups=2, width_per_group=4)),
])
def test_with_cp_same_outputs_and_gradients(cls, kwargs):
    x = torch.rand(2, 3, 32, 32)
    results = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = cls(
            base_channels=8,
            with_cp=with_cp,
            norm_eval=False,
            drop_path_rate=0.,
            **kwargs)
        model.init_weights()
        for p in model.parameters():  # undo zero init so every path counts
            torch.nn.init.normal_(p, std=0.1) if p.dim() == 1 else None
        model.train()
        results.append(forward_backward(model, x))
    assert_same_forward_backward(*results)


def test_stage_outputs_equal_definition():
    """A stage equals the reference loop: xs[0] projected input, block j reads
    xs[j+1-2**i] and its gate mixes them by the formula."""
    model = SkipResNet(
        depth=18,
        base_channels=8,
        num_stages=2,
        strides=(1, 2),
        dilations=(1, 1),
        out_indices=(1, )).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    stage = model.layer2
    x = torch.rand(2, 8, 16, 16)
    xs = [stage[0].downsample(x)]
    h = x
    for j, block in enumerate(stage):
        y = block.residual(h)
        inb = [
            xs[i] for i in [j + 1 - 2**i for i in range(4) if 2**i <= j + 1]
        ]
        d = torch.cat([y] + inb, 1).mean((2, 3), keepdim=True)
        g = block.gate.conv2(
            block.gate.act(block.gate.norm(block.gate.conv1(d)))).view(
                2, 1 + len(inb), -1)
        out = torch.sigmoid(g[:, 0])[..., None, None] * y
        w = torch.softmax(g[:, 1:], 1)
        for k, t in enumerate(inb):
            out = out + w[:, k][..., None, None] * t
        h = torch.relu(out)
        xs.append(h)
    torch.testing.assert_close(stage(x), h)
    assert isinstance(stage, RoutedStage)


def test_drop_path_and_layer_depth():
    model = SkipResNet(depth=50, base_channels=8, drop_path_rate=0.2)
    rates = [
        b.drop_path.drop_prob for n in model.res_layers
        for b in getattr(model, n) if hasattr(b.drop_path, 'drop_prob')
    ]
    assert rates[-1] == pytest.approx(0.2) and len(rates) == 15
    assert model.get_layer_depth('backbone.conv1.weight', 'backbone.') == \
        (0, 18)
    assert model.get_layer_depth('backbone.layer2.1.conv1.weight',
                                 'backbone.') == (5, 18)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (17, 18)
