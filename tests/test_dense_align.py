"""Inbound alignment of DenseResNet (layers/inbound_align.py) and the Gate
Module's softmax mask (the 'masked' pad mode)."""
import pytest
import torch
import torch.nn.functional as F

from mmgate.models.layers import (GateModule, InboundAlign, InboundBank,
                                  dense_inbound_indices, fit_channels,
                                  pool_to_size)


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
    torch.testing.assert_close(out[..., -1, -1],
                               x[..., 24:, 40:].mean(dim=(-2, -1)))
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


def test_inbound_align_masks_and_errors():
    align = InboundAlign([8, 4, 12], 8, pad_mode='masked')
    mask = align.softmax_mask
    assert mask.shape == (3, 8)
    assert mask[1].tolist() == [False] * 4 + [True] * 4
    assert not mask[0].any() and not mask[2].any()  # truncation: no padding
    assert InboundAlign([8, 4], 8, pad_mode='paper').softmax_mask is None
    assert InboundAlign([8, 8], 8, pad_mode='masked').softmax_mask is None
    maps = [torch.rand(1, 8, 4, 4), torch.rand(1, 4, 8, 8),
            torch.rand(1, 12, 16, 16)]
    descs = [m.mean((2, 3), keepdim=True) for m in maps]
    out, out_descs = align(maps, descs)
    assert [tuple(m.shape) for m in out] == [(1, 8, 4, 4)] * 3
    assert [tuple(d.shape) for d in out_descs] == [(1, 8, 1, 1)] * 3
    # descriptors come from the originals, not from the pooled maps
    torch.testing.assert_close(out_descs[2], descs[2][:, :8])
    with pytest.raises(ValueError, match='pad_mode'):
        InboundAlign([8], 8, pad_mode='zeros')
    with pytest.raises(ValueError, match='reads 3 inbounds'):
        align(maps[:2], descs[:2])
    with pytest.raises(ValueError, match='inbound channels'):
        align([maps[0], maps[0], maps[2]], descs)


def test_inbound_bank_caches_pools_and_releases():
    bank = InboundBank(keep=2)
    a = torch.rand(1, 4, 9, 9)
    bank.append(a)
    bank.append(torch.rand(1, 4, 9, 9))
    maps, descs = bank.gather([1, 0], (5, 5))
    again, _ = bank.gather([0], (5, 5))
    assert again[0] is maps[1]  # pooled once, shared
    torch.testing.assert_close(descs[1], a.mean((2, 3), keepdim=True))
    bank.append(torch.rand(1, 4, 5, 5))
    bank.append(torch.rand(1, 4, 3, 3))  # entry 0 is no longer readable
    with pytest.raises(IndexError, match='entry 0 was released'):
        bank.gather([0], (3, 3))
    assert bank.gather([3, 2], (3, 3))[0][1].shape[-2:] == (3, 3)


def _gate(channels, n, mask=None):
    gate = GateModule(channels, n, softmax_mask=mask).eval()
    torch.manual_seed(1)
    for p in gate.parameters():
        torch.nn.init.normal_(p, std=0.5)
    return gate


def test_softmax_mask_keeps_padding_out():
    align = InboundAlign([8, 4, 2], 8, pad_mode='masked')
    masked = _gate(8, 3, align.softmax_mask)
    paper = _gate(8, 3)
    assert masked.state_dict().keys() == paper.state_dict().keys()
    masked.load_state_dict(paper.state_dict())
    d = torch.randn(2, 32, 1, 1)
    _, w_masked = masked.gate_weights(d)
    _, w_paper = paper.gate_weights(d)
    pad = align.padding_mask
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
