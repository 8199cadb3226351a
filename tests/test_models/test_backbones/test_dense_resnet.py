import pytest
import torch
import torch.nn.functional as F

from mmgate.models import DenseResNet, DenseResNetCIFAR
from mmgate.models.backbones import RoutedStage
from tests.helpers import (assert_same_forward_backward, blocks,
                           check_norm_state, forward_backward,
                           params_with_head)


# Takeda, MIRU 2020 (DenseResNet), table 1
@pytest.mark.parametrize('n,expected', [(2, 22.75), (4, 23.38), (6, 24.00),
                                        (8, 24.60)])
def test_dense_resnet34_parameter_counts(n, expected):
    model = DenseResNet(depth=34, num_connections=n, pad_mode='paper')
    assert params_with_head(model) == pytest.approx(expected, abs=0.005)
    assert params_with_head(model, gates=False) == \
        pytest.approx(21.80, abs=0.005)  # ResNet-34


def test_dense_resnet110_cifar_parameter_count():
    # table 2: gate reduction 2 (the authors' CIFAR setting)
    model = DenseResNetCIFAR(depth=110, num_connections=4, gate_reduction=2)
    assert params_with_head(model, 100) == pytest.approx(2.23, abs=0.005)
    assert params_with_head(model, 100, gates=False) == \
        pytest.approx(1.74, abs=0.005)  # ResNet-110
    counts = {
        n:
        params_with_head(
            DenseResNetCIFAR(depth=110, num_connections=n, gate_reduction=2),
            100)
        for n in (2, 6, 8)
    }
    assert counts == pytest.approx({2: 2.03, 6: 2.43, 8: 2.62}, abs=0.005)


def test_dense_resnet34_flops():
    from mmengine.analysis import get_model_complexity_info
    model = DenseResNet(depth=34, num_connections=6, out_indices=(3, )).eval()
    info = get_model_complexity_info(
        model, input_shape=(3, 224, 224), show_table=False, show_arch=False)
    flops = info['flops'] + 512 * 1000  # + the linear head's MACs
    assert flops / 1e9 == pytest.approx(3.70, rel=0.02)


@pytest.mark.parametrize('n', [1, 3, 6])
def test_dense_pattern_crosses_stages(n):
    model = DenseResNet(depth=18, base_channels=8, num_connections=n)
    for i, block in enumerate(blocks(model)):
        assert block.entry_index == i
        assert block.inbound_indices == [i - k for k in range(min(n, i + 1))]
        assert block.gate.num_inbounds == len(block.inbound_indices)
        # the descriptor layout is C * (1 + n): padded / truncated
        c = block.gate.channels
        assert block.gate.conv1.in_channels == c * (1 + min(n, i + 1))
    # block 2 (stage 2, 16 channels) reads stage 1's entries (8 channels)
    if n >= 2:
        reads = [
            model.entry_channels[k] for k in blocks(model)[2].inbound_indices
        ]
        assert reads[:2] == [16, 8] and blocks(model)[2].out_channels == 16


def _reference_forward(model, x, masked):
    """The paper's loop written out: one global list, pool 2x2 / pad /
    truncate, gate descriptors from the originals, softmax over the n."""
    h = model.maxpool(model.relu(model.norm1(model.conv1(x))))
    entries = []
    outs = []
    for s, name in enumerate(model.res_layers):
        for block in getattr(model, name):
            z = block.project(h)
            entries.append(z)
            i = len(entries) - 1
            idx = [i - k for k in range(min(model.num_connections, i + 1))]
            y = block.residual(h)
            c = y.shape[1]
            maps, descs, pad = [], [], []
            for k in idx:
                e = entries[k]
                d = e.mean((2, 3), keepdim=True)
                while e.shape[-2:] != y.shape[-2:]:
                    e = F.avg_pool2d(e, 2, ceil_mode=True)
                fit = (lambda t: t[:, :c] if t.shape[1] >= c else F.pad(
                    t, (0, 0, 0, 0, 0, c - t.shape[1])))
                maps.append(fit(e))
                descs.append(fit(d))
                pad.append(torch.arange(c) >= e.shape[1])
            gate = block.gate
            d = torch.cat([y.mean((2, 3), keepdim=True)] + descs, 1)
            g = gate.conv2(gate.act(gate.norm(gate.conv1(d))))
            g = g.view(g.shape[0], 1 + len(idx), c)
            logits = g[:, 1:]
            if masked:
                logits = logits.masked_fill(torch.stack(pad), float('-inf'))
            w = torch.softmax(logits, 1) if len(idx) > 1 else \
                torch.ones_like(logits)
            out = torch.sigmoid(g[:, 0])[..., None, None] * y
            for k, m in enumerate(maps):
                out = out + w[:, k][..., None, None] * m
            h = torch.relu(out)
        if s in model.out_indices:
            outs.append(h)
    return outs


@pytest.mark.parametrize('pad_mode', ['paper', 'masked'])
def test_forward_equals_paper_definition(pad_mode):
    torch.manual_seed(0)
    model = DenseResNet(
        depth=18,
        base_channels=8,
        num_connections=5,
        pad_mode=pad_mode,
        norm_eval=False).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.rand(2, 3, 45, 71)  # odd sizes: ceil-mode pooling
    got = model(x)
    ref = _reference_forward(model, x, masked=pad_mode == 'masked')
    assert len(got) == 4
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b)


def test_masked_and_paper_modes_differ_only_in_padded_channels():
    torch.manual_seed(0)
    paper = DenseResNet(
        depth=18, base_channels=8, num_connections=4, pad_mode='paper').eval()
    masked = DenseResNet(
        depth=18, base_channels=8, num_connections=4,
        pad_mode='masked').eval()
    assert paper.state_dict().keys() == masked.state_dict().keys()
    masked.load_state_dict(paper.state_dict())
    for p, q in zip(paper.parameters(), masked.parameters()):
        torch.nn.init.normal_(p, std=0.2)
        q.data.copy_(p.data)
    x = torch.rand(2, 3, 32, 32)
    for m in (paper, masked):
        for b in blocks(m):
            b.gate.record = True
    out_p, out_m = paper(x), masked(x)
    # stage 1 has no padding: identical; later stages differ
    torch.testing.assert_close(out_p[0], out_m[0])
    assert not torch.allclose(out_p[3], out_m[3])
    b_p, b_m = blocks(paper)[2], blocks(masked)[2]  # 16 ch reading 8-ch maps
    w_p, w_m = b_p.gate.last_gates[1], b_m.gate.last_gates[1]
    assert torch.all(w_m[:, 1:, 8:] == 0)  # padded slots: no weight
    torch.testing.assert_close(w_m.sum(1), torch.ones(2, 16))
    assert torch.all(w_p[:, 1:, 8:] > 0)  # paper: weight spent on zeros


@pytest.mark.parametrize('depth,out_indices', [(18, (0, 1, 2, 3)),
                                               (18, (-1, )), (50, (1, 3))])
def test_forward_shapes(depth, out_indices):
    model = DenseResNet(
        depth=depth,
        base_channels=8,
        out_indices=out_indices,
        num_connections=3).eval()
    outs = model(torch.rand(2, 3, 64, 64))
    exp = 1 if depth == 18 else 4
    idx = [i % 4 for i in out_indices]
    assert [tuple(o.shape) for o in outs] == \
        [(2, 8 * 2**i * exp, 16 // 2**i, 16 // 2**i) for i in idx]
    assert [f['num_chs'] for f in model.feature_info] == \
        [8 * 2**i * exp for i in idx]
    assert isinstance(model.layer1, RoutedStage)


def test_output_stride_8_and_cifar_layout():
    model = DenseResNet(
        depth=50,
        base_channels=8,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        contract_dilation=True,
        num_connections=8).eval()
    assert [o.shape[-1] for o in model(torch.rand(1, 3, 64, 64))] == \
        [16, 8, 8, 8]
    cifar = DenseResNetCIFAR(depth=20, num_connections=4).eval()
    assert isinstance(cifar.maxpool, torch.nn.Identity)
    assert cifar.conv1.kernel_size == (3, 3) and cifar.conv1.stride == (1, 1)
    assert tuple(cifar(torch.rand(1, 3, 32, 32))[0].shape) == (1, 64, 8, 8)
    assert cifar.feature_info == [
        dict(num_chs=64, reduction=4, module='layer3')
    ]


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match='num_connections'):
        DenseResNet(depth=18, num_connections=0)
    with pytest.raises(ValueError, match='pad_mode'):
        DenseResNet(depth=18, pad_mode='zero')
    with pytest.raises(KeyError, match='invalid depth 110'):
        DenseResNet(depth=110)
    with pytest.raises(KeyError, match='invalid depth 34'):
        DenseResNetCIFAR(depth=34)
    with pytest.raises(AssertionError, match='3 stages'):
        DenseResNetCIFAR(depth=20, num_stages=4)
    with pytest.raises(TypeError, match='unexpected keyword'):
        DenseResNet(depth=18, no_such_option=1)


def test_norm_eval_covers_gate_norms():
    model = DenseResNet(depth=18, base_channels=8, norm_eval=True)
    model.train()
    assert check_norm_state(model.modules(), False)
    before = {
        k: v.clone()
        for k, v in model.state_dict().items() if 'running_mean' in k
    }
    assert any('gate.norm' in k for k in before)
    model(torch.rand(2, 3, 32, 32))
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    model = DenseResNet(depth=18, base_channels=8, norm_eval=False).train()
    assert check_norm_state(model.modules(), True)


@pytest.mark.parametrize('depth', [18])
def test_with_cp_same_outputs_and_gradients(depth):
    x = torch.rand(2, 3, 32, 32)
    results = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = DenseResNet(
            depth=depth,
            base_channels=8,
            with_cp=with_cp,
            norm_eval=False,
            num_connections=4)
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.1)
        model.train()
        results.append(forward_backward(model, x))
    assert_same_forward_backward(*results)


def test_init_zero_residual_drop_path_and_layer_depth():
    model = DenseResNet(depth=50, base_channels=8, drop_path_rate=0.2)
    model.init_weights()
    for block in blocks(model):
        assert torch.all(block.norm3.weight == 0)
        assert torch.all(block.norm2.weight == 1)
    model = DenseResNet(depth=18, base_channels=8, zero_init_residual=False)
    model.init_weights()
    assert torch.all(blocks(model)[0].norm2.weight == 1)
    rates = [
        b.drop_path.drop_prob for b in blocks(
            DenseResNet(depth=50, base_channels=8, drop_path_rate=0.2))
        if hasattr(b.drop_path, 'drop_prob')
    ]
    assert len(rates) == 15 and rates[-1] == pytest.approx(0.2)
    assert model.get_layer_depth('backbone.layer2.1.conv1.weight',
                                 'backbone.') == (4, 10)


def test_checkpoint_round_trip(tmp_path):
    model = DenseResNet(depth=18, base_channels=8, num_connections=3).eval()
    path = tmp_path / 'dense.pth'
    torch.save(
        {
            'state_dict': {
                f'backbone.{k}': v
                for k, v in model.state_dict().items()
            }
        }, path)
    other = DenseResNet(
        depth=18,
        base_channels=8,
        num_connections=3,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    other.init_weights()
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(other.eval()(x), model(x))
    wrong_n = DenseResNet(
        depth=18,
        base_channels=8,
        num_connections=4,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(Exception, match='gate'):
        wrong_n.init_weights()
