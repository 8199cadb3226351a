import pytest
import torch

from mmgate.models import DenseMobileNetV2
from mmgate.models.backbones import InvertedResidual
from mmgate.models.layers import padding_mask
from tests.helpers import (assert_same_forward_backward, blocks,
                           check_norm_state, forward_backward,
                           params_with_head)


def test_parameter_count_and_layout():
    model = DenseMobileNetV2(widen_factor=1.0)
    # Takeda, MIRU 2020, table 1: MobileNetV2 3.50M -> Dense-MobileNetV2 4.08M
    assert params_with_head(model) == pytest.approx(4.08, abs=0.005)
    assert params_with_head(model, gates=False) == \
        pytest.approx(3.50, abs=0.005)
    bs = blocks(model)
    assert len(bs) == 17 and all(isinstance(b, InvertedResidual) for b in bs)
    for i, b in enumerate(bs):
        assert b.inbound_indices == [i - k for k in range(min(4, i + 1))]
        assert isinstance(b.gate.act, torch.nn.ReLU6)
        # reduction 4: hidden = ceil(max(C // 4, 1) / 8) * 8
        c = b.gate.channels
        assert b.gate.conv1.out_channels == -(-max(c // 4, 1) // 8) * 8
        assert isinstance(b.out_act, torch.nn.Identity)  # nothing after gate
        if b.stride == 2:
            assert isinstance(b.downsample, torch.nn.AvgPool2d)
        else:
            assert b.downsample is None

    # block 0 reads the 32-channel stem output truncated to its 16 channels
    def reads(b):
        return [model.entry_channels[k] for k in b.inbound_indices]

    assert reads(bs[0]) == [32] and bs[0].out_channels == 16
    # block 1 (24 ch) reads its own 16-ch input (pooled) and the stem's
    assert reads(bs[1]) == [16, 32]


def test_non_gate_weights_fit_mmpretrain_mobilenet_v2():
    from mmpretrain.models import MobileNetV2
    ref = MobileNetV2(widen_factor=1.4).state_dict()
    ours = DenseMobileNetV2(widen_factor=1.4).state_dict()
    assert set(ref) <= set(ours)
    assert all(ref[k].shape == ours[k].shape for k in ref)
    assert all('.gate.' in k for k in set(ours) - set(ref))


@pytest.mark.parametrize('out_indices', [(0, 1, 2, 3, 4, 5, 6, 7), (-1, )])
def test_forward_shapes(out_indices):
    model = DenseMobileNetV2(widen_factor=0.5, out_indices=out_indices).eval()
    outs = model(torch.rand(2, 3, 65, 65))  # odd: ceil-mode pooling
    sizes = {
        0: (8, 33),
        1: (16, 17),
        2: (16, 9),
        3: (32, 5),
        4: (48, 5),
        5: (80, 3),
        6: (160, 3),
        7: (1280, 3)
    }
    exp = [sizes[i % 8] for i in out_indices]
    assert [(o.shape[1], o.shape[-1]) for o in outs] == exp


@pytest.mark.parametrize('pad_mode', ['paper', 'masked'])
def test_pad_modes(pad_mode):
    model = DenseMobileNetV2(widen_factor=0.5, pad_mode=pad_mode).eval()
    for b in blocks(model):
        b.gate.record = True
    outs = model(torch.rand(1, 3, 64, 64))
    assert all(torch.isfinite(o).all() for o in outs)
    b = blocks(model)[3]  # 16 ch, reads a 16-ch pooled entry, 8-ch older
    w = b.gate.last_gates[1]
    pad = padding_mask([model.entry_channels[k] for k in b.inbound_indices],
                       b.out_channels)
    assert pad.any()
    if pad_mode == 'masked':
        assert torch.all(w[:, pad] == 0)
    else:
        assert torch.all(w[:, pad] > 0)


def test_frozen_stages_and_norm_eval():
    model = DenseMobileNetV2(widen_factor=0.5, frozen_stages=2)
    model.train()
    for m in (model.conv1, model.layer1, model.layer2):
        assert all(not p.requires_grad for p in m.parameters())
        assert check_norm_state(m.modules(), False)
    assert not model.layer2[1].gate.norm.training
    assert all(p.requires_grad for p in model.layer3.parameters())
    assert check_norm_state(model.layer3.modules(), True)
    model = DenseMobileNetV2(widen_factor=0.5, norm_eval=True).train()
    assert check_norm_state(model.modules(), False)
    with pytest.raises(AssertionError, match='frozen_stages'):
        DenseMobileNetV2(frozen_stages=8)
    with pytest.raises(AssertionError, match='out_indices'):
        DenseMobileNetV2(out_indices=(8, ))
    with pytest.raises(ValueError, match='pad_mode'):
        DenseMobileNetV2(pad_mode='none')


def test_with_cp_same_outputs_and_gradients():
    x = torch.rand(2, 3, 32, 32)
    results = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = DenseMobileNetV2(
            widen_factor=0.25, with_cp=with_cp, out_indices=(2, 7)).train()
        results.append(forward_backward(model, x))
    assert_same_forward_backward(*results)
