import pytest
import torch

from mmgate.models import SkipConvNeXt
from mmgate.models.layers import LayerNorm2d

TINY = dict(depths=[2, 2, 3, 2], channels=[8, 16, 32, 64])


@pytest.mark.parametrize('arch,expected', [('tiny', 31.14), ('small', 56.58),
                                           ('base', 99.85)])
def test_parameter_counts_match_published(arch, expected):
    model = SkipConvNeXt(arch=arch)
    n = sum(p.numel() for p in model.parameters())
    n += model.channels[-1] * 1000 + 1000
    assert n / 1e6 == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize('arch', ['large', 'xlarge'])
def test_large_archs_build(arch):
    model = SkipConvNeXt(arch=arch)
    assert model.channels[-1] == {'large': 1536, 'xlarge': 2048}[arch]


def test_inbounds_and_gate_style():
    model = SkipConvNeXt(arch='tiny')
    assert [[len(b.inbound_indices) for b in s] for s in model.stages] == \
        [[1, 2, 2], [1, 2, 2], [1, 2, 2, 3, 3, 3, 3, 4, 4], [1, 2, 2]]
    gate = model.stages[0][0].gate
    assert isinstance(gate.norm, LayerNorm2d) and gate.norm.eps == 1e-6
    assert isinstance(gate.act, torch.nn.GELU)
    assert gate.conv1.out_channels == 16


@pytest.mark.parametrize('out_indices', [(0, 1, 2, 3), (-1, ), (1, 2)])
def test_forward_shapes(out_indices):
    model = SkipConvNeXt(
        arch=TINY, out_indices=out_indices,
        gap_before_final_norm=False).eval()
    outs = model(torch.rand(2, 3, 64, 64))
    for out, i in zip(outs, [i % 4 for i in out_indices]):
        assert out.shape == (2, 8 * 2**i, 16 // 2**i, 16 // 2**i)
    cls = SkipConvNeXt(arch=TINY).eval()
    assert cls(torch.rand(2, 3, 64, 64))[0].shape == (2, 64)


def test_block_reads_previous_output_without_identity_add():
    model = SkipConvNeXt(
        arch=TINY, out_indices=(0, ), gap_before_final_norm=False).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    stage = model.stages[0]
    x = torch.rand(1, 8, 8, 8)
    xs = [x]
    for j, block in enumerate(stage):
        y = block.residual(xs[j])
        inb = [xs[i] for i in block.inbound_indices]
        xs.append(block.gate(y, inb))  # no activation after the junction
    torch.testing.assert_close(stage(x), xs[-1])


def test_frozen_stages_and_with_cp():
    model = SkipConvNeXt(arch=TINY, frozen_stages=2)
    model.train()
    for i in range(2):
        assert all(not p.requires_grad for p in model.stages[i].parameters())
        assert all(not p.requires_grad
                   for p in model.downsample_layers[i].parameters())
        assert not model.stages[i].training
    assert all(p.requires_grad for p in model.stages[2].parameters())
    x = torch.rand(2, 3, 32, 32)
    grads = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        m = SkipConvNeXt(
            arch=TINY,
            with_cp=with_cp,
            out_indices=(0, 1, 2, 3),
            gap_before_final_norm=False,
            layer_scale_init_value=1.)
        m.train()
        outs = m(x.clone().requires_grad_(True))
        sum(o.sum() for o in outs).backward()
        grads.append(([o.detach() for o in outs], {
            n: p.grad
            for n, p in m.named_parameters()
        }))
    for a, b in zip(grads[0][0], grads[1][0]):
        torch.testing.assert_close(a, b)
    for k in grads[0][1]:
        torch.testing.assert_close(grads[0][1][k], grads[1][1][k], msg=k)


def test_bad_arch():
    with pytest.raises(KeyError, match="invalid arch 'giant'"):
        SkipConvNeXt(arch='giant')
    with pytest.raises(KeyError, match='channels'):
        SkipConvNeXt(arch=dict(depths=[1, 1]))
    with pytest.raises(AssertionError, match='out_indices'):
        SkipConvNeXt(arch=TINY, out_indices=(4, ))


def test_layer_depth():
    model = SkipConvNeXt(arch='tiny')
    assert model.get_layer_depth('backbone.downsample_layers.0.0.weight',
                                 'backbone.') == (0, 8)
    assert model.get_layer_depth('backbone.stages.2.4.gate.conv1.weight',
                                 'backbone.') == (4, 8)
