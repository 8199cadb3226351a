"""Weights checked on load: a backbone's ``init_cfg=dict(type='Pretrained',
...)`` refuses a file with NaN / Inf tensors in one line, and casts a file
of another dtype (fp16 into an fp32 model) with one log line.

``LOAD_FAULTS`` are rows of README's fault table (rendered by
``tests/test_tools/test_faults.py``); each is asserted here. The control
test shows MMEngine's own ``Pretrained`` init taking the same NaN file
without a word.
"""
import math

import pytest
import torch

from mmgate.fileio import CheckpointError
from mmgate.registry import MODELS
from tests.test_models.test_pretrained import (init_weights_messages,
                                               resnet_to_timm)
from tests.test_tools.test_faults import Fault

NAN_FILE = ('a SkipResNet-50 file whose tensors are all NaN, given as '
            "init_cfg=dict(type='Pretrained', ...)")
LOAD_FAULTS = {
    'nan_weights':
    Fault(
        NAN_FILE,
        'checkpoint {file} holds non-finite values (NaN / Inf) in {count} '
        'tensors ({names}, ... +{more} more): refused',
        'nothing is loaded: the backbone keeps its initialisation'),
    'inf_weight':
    Fault(
        'one infinity in one tensor of the authors\' timm file',
        'checkpoint {file} holds non-finite values (NaN / Inf) in 1 tensor '
        '({names}): refused', 'nothing is loaded'),
    'fp16_weights':
    Fault(
        'a SkipResNet-50 file saved in float16, for a float32 backbone',
        "SkipResNet: cast {count} float16 tensors to float32 (the model's "
        'dtype) from checkpoint {file}',
        'every tensor loads, cast to float32; the message is a log line '
        '(INFO), the run goes on'),
}

TINY = dict(depth=50, base_channels=8, out_indices=(3, ))


def _skipresnet(path=None):
    init_cfg = dict(type='Pretrained', checkpoint=str(path)) if path else None
    return MODELS.build(
        dict(type='mmgate.SkipResNet', init_cfg=init_cfg, **TINY))


def _float_keys(state):
    return [k for k, v in state.items() if v.is_floating_point()]


def _nan_file(tmp_path, state):
    state = {k: v.clone() for k, v in state.items()}
    for k in _float_keys(state):
        state[k].fill_(math.nan)
    path = tmp_path / 'nan.pth'
    torch.save(state, path)
    return path


def test_nan_weights_are_refused_naming_the_tensors(tmp_path):
    source = _skipresnet().state_dict()
    path = _nan_file(tmp_path, source)
    names = _float_keys(source)
    model = _skipresnet(path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        model.init_weights()
    assert str(err.value) == LOAD_FAULTS['nan_weights'].sees.format(
        file=path,
        count=len(names),
        names=', '.join(names[:5]),
        more=len(names) - 5)
    # nothing was loaded
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_one_inf_in_a_timm_file_is_named_by_its_key_there(tmp_path):
    state = resnet_to_timm(_skipresnet().state_dict(), feat_dim=256)
    key = 'layer3.blocks.2.gate.conv2.weight'
    state[key].view(-1)[7] = -math.inf
    path = tmp_path / 'skipresnet50-timm.pth'
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        _skipresnet(path).init_weights()
    assert str(err.value) == LOAD_FAULTS['inf_weight'].sees.format(
        file=path, names=key)


def test_fp16_weights_are_cast_with_one_log_line(tmp_path):
    source = _skipresnet()
    with torch.no_grad():
        for v in source.state_dict().values():
            if v.is_floating_point():
                v.normal_()
    half = source.half().state_dict()
    path = tmp_path / 'fp16.pth'
    torch.save({'state_dict': {
        'backbone.' + k: v
        for k, v in half.items()
    }}, path)
    model = _skipresnet(path)
    messages = init_weights_messages(model)
    count = len(_float_keys(half))
    expected = LOAD_FAULTS['fp16_weights'].sees.format(file=path, count=count)
    assert [m for m in messages if ': cast ' in m] == [expected]
    for k, v in model.state_dict().items():
        assert v.dtype == (torch.float32
                           if k in _float_keys(half) else half[k].dtype), k
        assert torch.equal(v, half[k].to(v.dtype)), k


def test_same_dtype_logs_no_cast(tmp_path):
    path = tmp_path / 'fp32.pth'
    torch.save(_skipresnet().state_dict(), path)
    assert not [
        m for m in init_weights_messages(_skipresnet(path)) if ': cast ' in m
    ]


def test_control_mmengine_pretrained_init_takes_nan_weights(tmp_path):
    """The same file through MMEngine's ``Pretrained`` init of MMDetection's
    ResNet-50 loads without a word: the check above is mmgate's."""
    from mmdet.models.backbones import ResNet
    plain = ResNet(depth=50, base_channels=8)
    path = _nan_file(tmp_path, plain.state_dict())
    model = ResNet(
        depth=50,
        base_channels=8,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert torch.isnan(model.layer3[1].conv2.weight).all()
