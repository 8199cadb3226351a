import pytest
import torch

from mmgate.models.layers import (GateModule, gate_hidden_channels,
                                  skip_inbound_indices)


def test_hidden_channels_match_reference():
    assert [gate_hidden_channels(c, 8)
            for c in (64, 128, 256, 512, 1024, 2048)] == \
        [8, 16, 32, 64, 128, 256]
    assert gate_hidden_channels(96, 8) == 16
    assert gate_hidden_channels(4, 8) == 8


def test_skip_inbound_indices():
    assert skip_inbound_indices(0) == [0]
    assert skip_inbound_indices(1) == [1, 0]
    assert skip_inbound_indices(3) == [3, 2, 0]
    assert skip_inbound_indices(6) == [6, 5, 3]
    assert skip_inbound_indices(7) == [7, 6, 4, 0]
    with pytest.raises(ValueError, match='index'):
        skip_inbound_indices(-1)


def _definition(gate, y, xs):
    """The published formula, with the concatenation done the slow way."""
    b, c = y.shape[:2]
    d = torch.cat([y] + xs, dim=1).mean(dim=(2, 3), keepdim=True)
    g = gate.conv2(gate.act(gate.norm(gate.conv1(d))))
    g = g.view(b, 1 + len(xs), c)
    out = torch.sigmoid(g[:, 0]).view(b, c, 1, 1) * y
    w = torch.softmax(g[:, 1:], dim=1)
    for k, x in enumerate(xs):
        out = out + w[:, k].view(b, c, 1, 1) * x
    return out, w


@pytest.mark.parametrize('n', [1, 2, 3])
def test_gate_equals_definition(n):
    gate = GateModule(16, n).eval()
    for p in gate.parameters():
        torch.nn.init.normal_(p, std=0.5)
    y = torch.randn(2, 16, 5, 7)
    xs = [torch.randn(2, 16, 5, 7) for _ in range(n)]
    expected, w = _definition(gate, y, xs)
    torch.testing.assert_close(gate(y, xs), expected)
    # the softmax weights sum to 1 over the inbounds, per sample and channel
    torch.testing.assert_close(w.sum(dim=1), torch.ones(2, 16))
    gate.record = True
    gate(y, xs)
    gate_y, weights = gate.last_gates
    assert gate_y.shape == (2, 16) and weights.shape == (2, n, 16)
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 16))


def test_gate_layout_and_lean():
    gate = GateModule(64, 3)
    assert gate.conv1.weight.shape == (8, 64 * 4, 1, 1)
    assert gate.conv2.weight.shape == (64 * 4, 8, 1, 1)
    assert gate.conv1.bias is None and gate.conv2.bias.shape == (256, )
    full, lean = GateModule(64, 1), GateModule(64, 1, lean=True)
    assert full.conv2.out_channels == 128 and lean.conv2.out_channels == 64
    y, x = torch.randn(2, 64, 3, 3), torch.randn(2, 64, 3, 3)
    lean.load_state_dict({
        k: (v[:64] if k.startswith('conv2') else v)
        for k, v in full.state_dict().items()
    })
    torch.testing.assert_close(full.eval()(y, [x]), lean.eval()(y, [x]))


def test_gate_rejects_wrong_number_of_inbounds():
    gate = GateModule(8, 2)
    with pytest.raises(ValueError, match='2 inbounds'):
        gate(torch.randn(1, 8, 2, 2), [torch.randn(1, 8, 2, 2)])


def test_gate_gradients_reach_all_inputs():
    gate = GateModule(8, 2)
    y = torch.randn(2, 8, 4, 4, requires_grad=True)
    xs = [torch.randn(2, 8, 4, 4, requires_grad=True) for _ in range(2)]
    gate(y, xs).sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in [y, *xs])
    assert gate.conv1.weight.grad.abs().sum() > 0


def test_block_with_batchnorm_source_matches_plain_autograd():
    """The memory-saving path (BatchNorm input kept instead of y) gives the
    gradients of the plain formula, in train and eval mode."""
    from mmgate.models.backbones import Bottleneck
    for training in (True, False):
        torch.manual_seed(0)
        block = Bottleneck(
            16,
            4,
            entry_index=1,
            inbound_indices=[1, 0],
            junction=GateModule(16, 2)).double()
        for p in block.parameters():
            torch.nn.init.normal_(p, std=0.3)
        block.train(training)
        x = torch.randn(2, 16, 6, 6, dtype=torch.float64, requires_grad=True)
        xs = [x, torch.randn(2, 16, 6, 6, dtype=torch.float64)]
        descs = [t.mean((2, 3), keepdim=True) for t in xs]
        out = block(x, xs, descs)
        out.square().sum().backward()
        grads = [p.grad.clone() for p in block.parameters()] + [x.grad]
        # the same computation by the definition, plain autograd
        for p in block.parameters():
            p.grad = None
        x2 = x.detach().clone().requires_grad_(True)
        xs2 = [x2, xs[1]]
        y = block.residual(x2)
        d = torch.cat([
            y.mean((2, 3), keepdim=True),
            *[t.mean((2, 3), keepdim=True) for t in xs2]
        ], 1)
        gate_y, w = block.gate.gate_weights(d)
        ref = y * gate_y[..., None, None] + sum(w[:, k, :, None, None] * t
                                                for k, t in enumerate(xs2))
        torch.relu(ref).square().sum().backward()
        ref_grads = [p.grad for p in block.parameters()] + [x2.grad]
        for a, b in zip(grads, ref_grads):
            torch.testing.assert_close(a, b)


def test_last_readers():
    from mmgate.models.layers import last_readers
    assert last_readers([skip_inbound_indices(j) for j in range(4)]) == \
        [[], [], [1], [0, 2, 3]]
    # every entry is released exactly once, after its last reader
    lists = [skip_inbound_indices(j) for j in range(23)]
    released = last_readers(lists)
    flat = [k for r in released for k in r]
    assert sorted(flat) == sorted({k for idx in lists for k in idx})
    for j, ks in enumerate(released):
        for k in ks:
            assert k in lists[j] and all(k not in idx for idx in lists[j + 1:])
