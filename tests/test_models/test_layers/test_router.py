"""The inbound router (layers/router.py): alignment of DenseResNet's inbounds,
caching and release of entries, and the Gate Module's softmax mask (the
'masked' pad mode)."""
import pytest
import torch
import torch.nn.functional as F

from mmgate.models.backbones import BasicBlock, RoutedStage, build_junction
from mmgate.models.layers import (GateModule, InboundRouter,
                                  dense_inbound_indices, fit_channels,
                                  inbound_distances, padding_mask,
                                  pool_to_size, skip_inbound_indices)


def test_dense_inbound_indices():
    assert dense_inbound_indices(0, 4) == [0]
    assert dense_inbound_indices(2, 4) == [2, 1, 0]
    assert dense_inbound_indices(9, 4) == [9, 8, 7, 6]
    assert dense_inbound_indices(9, 1) == [9]
    with pytest.raises(ValueError, match='num_connections'):
        dense_inbound_indices(3, 0)
    with pytest.raises(ValueError, match='index'):
        dense_inbound_indices(-1, 4)


def test_pool_to_size_follows_strided_convs():
    x = torch.rand(2, 3, 25, 42)
    # a 3x3 / stride-2 / pad-1 conv maps 25x42 -> 13x21 -> 7x11
    out = pool_to_size(x, (7, 11))
    ref = F.avg_pool2d(F.avg_pool2d(x, 2, ceil_mode=True), 2, ceil_mode=True)
    torch.testing.assert_close(out, ref)
    # ceil mode averages the valid elements of a border window only
    torch.testing.assert_close(out[..., -1, -1], x[..., 24:,
                                                   40:].mean(dim=(-2, -1)))
    assert pool_to_size(x, (25, 42)) is x
    with pytest.raises(ValueError, match='cannot align a 25x42'):
        pool_to_size(x, (26, 42))
    with pytest.raises(ValueError, match='cannot align'):
        pool_to_size(x, (10, 11))


def test_fit_channels_pads_with_zeros_and_truncates():
    x = torch.rand(1, 3, 2, 2)
    padded = fit_channels(x, 5)
    assert padded.shape[1] == 5 and torch.equal(padded[:, :3], x)
    assert torch.all(padded[:, 3:] == 0)
    assert torch.equal(fit_channels(x, 2), x[:, :2])
    assert fit_channels(x, 3) is x


def test_padding_mask():
    mask = padding_mask([8, 4, 12], 8)
    assert mask.shape == (3, 8)
    assert mask[1].tolist() == [False] * 4 + [True] * 4
    assert not mask[0].any() and not mask[2].any()  # truncation: no padding
    assert padding_mask([8, 8], 8) is None
    assert build_junction(dict(), 8, [8, 4], 'paper').softmax_mask is None
    assert build_junction(dict(), 8, [8, 4]).softmax_mask.sum() == 4
    with pytest.raises(ValueError, match='pad_mode'):
        build_junction(dict(), 8, [8], pad_mode='zeros')


class _Probe(torch.nn.Module):
    """A block that records what the router hands it."""
    reads_descriptors = True

    def __init__(self, entry_index, inbound_indices, out_channels, stride=1):
        super().__init__()
        self.entry_index = entry_index
        self.inbound_indices = inbound_indices
        self.out_channels = out_channels
        self.stride = stride

    def enter(self, x):
        return x

    def project(self, x):
        return x[..., ::self.stride, ::self.stride]

    def forward(self, x, inbounds, descriptors):
        self.got = (inbounds, descriptors)
        return self.project(x)


def test_router_aligns_caches_and_releases():
    blocks = [
        _Probe(0, [0], 4),
        _Probe(1, [1, 0], 4, stride=2),
        _Probe(2, [2, 1, 0], 6),
        _Probe(3, [3, 2], 6)
    ]
    router = InboundRouter(blocks, descriptors='entry')
    a = torch.rand(1, 4, 9, 9)
    x, held = a, []
    for block in blocks:
        x = router.step(block, x)
        held.append(router.held())
    # an entry is dropped right after its last reader
    assert held == [[0], [0, 1], [2], []]
    maps, descs = blocks[2].got
    assert [tuple(m.shape) for m in maps] == [(1, 6, 5, 5)] * 3
    torch.testing.assert_close(maps[2][:, :4], pool_to_size(a, (5, 5)))
    assert torch.all(maps[2][:, 4:] == 0)  # zero-padded to the block
    # 'entry': descriptors of the entries as stored, then fitted
    torch.testing.assert_close(descs[2][:, :4], a.mean((2, 3), True))
    assert torch.all(descs[2][:, 4:] == 0)
    assert [inbound_distances(b) for b in blocks] == \
        [[1], [1, 2], [1, 2, 3], [1, 2]]


def test_router_aligned_descriptors_and_errors():
    blocks = [_Probe(0, [0], 4, stride=1), _Probe(1, [1, 0], 4, stride=2)]
    router = InboundRouter(blocks)  # 'aligned'
    a = torch.rand(1, 4, 8, 8)
    router.step(blocks[1], router.step(blocks[0], a))
    maps, descs = blocks[1].got
    torch.testing.assert_close(descs[1], maps[1].mean((2, 3), True))
    with pytest.raises(ValueError, match='says it is entry 2'):
        InboundRouter([_Probe(2, [2], 4)])
    with pytest.raises(ValueError, match='reads entries'):
        InboundRouter([_Probe(0, [1], 4)])
    with pytest.raises(ValueError, match='descriptors must be one of'):
        InboundRouter(blocks, descriptors='pooled')
    router = InboundRouter(blocks)
    with pytest.raises(RuntimeError, match='runs as entry 0'):
        router.step(blocks[1], a)


def test_stage_loop_routes_the_skip_pattern():
    stage = RoutedStage(*[
        BasicBlock(
            4,
            4,
            entry_index=j,
            inbound_indices=skip_inbound_indices(j),
            junction=build_junction(dict(), 4, [4] *
                                    len(skip_inbound_indices(j))))
        for j in range(5)
    ]).eval()
    x = torch.rand(2, 4, 6, 6)
    # by hand: the stage's outputs, block j reads j + 1 - 2**k
    xs = [x]
    for j, block in enumerate(stage):
        inb = [xs[i] for i in skip_inbound_indices(j)]
        xs.append(block(xs[-1], inb, [t.mean((2, 3), True) for t in inb]))
    torch.testing.assert_close(stage(x), xs[-1])


def _gate(channels, n, mask=None):
    gate = GateModule(channels, n, softmax_mask=mask).eval()
    torch.manual_seed(1)
    for p in gate.parameters():
        torch.nn.init.normal_(p, std=0.5)
    return gate


def test_softmax_mask_keeps_padding_out():
    pad = padding_mask([8, 4, 2], 8)
    masked = _gate(8, 3, pad)
    paper = _gate(8, 3)
    assert masked.state_dict().keys() == paper.state_dict().keys()
    masked.load_state_dict(paper.state_dict())
    d = torch.randn(2, 32, 1, 1)
    _, w_masked = masked.gate_weights(d)
    _, w_paper = paper.gate_weights(d)
    # masked: padded slots get 0, the real inbounds of a channel sum to 1
    assert torch.all(w_masked[:, pad] == 0)
    torch.testing.assert_close(w_masked.sum(1), torch.ones(2, 8))
    # paper: padded slots take weight, so the real ones sum to less than 1
    real = (w_paper * (~pad)).sum(1)
    assert torch.all(w_paper[:, pad] > 0)
    assert torch.all(real[:, 2:] < 1)
    torch.testing.assert_close(real[:, :2], torch.ones(2, 2))
    # channels without padding: both modes give the same weights
    torch.testing.assert_close(w_masked[:, :, :2], w_paper[:, :, :2])


def test_softmax_mask_all_padded_channel_mixes_nothing():
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[:, 3] = True  # channel 3 is padding in both inbounds
    gate = _gate(4, 2, mask)
    y = torch.randn(2, 4, 3, 3)
    xs = [torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)]
    for x in xs:
        x[:, 3] = 0
    gate.record = True
    out = gate(y, xs)
    gate_y, w = gate.last_gates
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    torch.testing.assert_close(out[:, 3], y[:, 3] * gate_y[:, 3, None, None])
    with pytest.raises(ValueError, match='softmax_mask must have shape'):
        GateModule(4, 2, softmax_mask=torch.zeros(3, 4, dtype=torch.bool))
