"""Published-weights layout: converter round trip, init_cfg loading and the
errors for checkpoints that do not fit."""
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.logging import MMLogger

from mmgate.models import SkipConvNeXt, SkipResNet, SkipResNeXt
from mmgate.models.utils import convert_timm_checkpoint, detect_timm_layout
from tests.helpers import REPO_ROOT

ROOT = Path(REPO_ROOT)
CONVERTER = ROOT / 'tools' / 'model_converters' / 'skipnet_timm2mmgate.py'


def init_weights_messages(model):
    """``model.init_weights()``; the messages MMEngine's logger got."""
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        model.init_weights()
    finally:
        logger.removeHandler(handler)
    return [r.getMessage() for r in records]


def resnet_to_timm(state, num_classes=10, feat_dim=None):
    """The key layout of the authors' published timm files
    (github.com/takedarts/skipresnet-reference), written out by hand."""
    out = {}
    for k, v in state.items():
        k = re.sub(r'^layer(\d+)\.0\.downsample\.', r'layer\1.downsample.', k)
        k = re.sub(r'^layer(\d+)\.(\d+)\.', r'layer\1.blocks.\2.', k)
        k = k.replace('.gate.norm.', '.gate.bn.')
        out[k] = v.clone()
    out['fc.weight'] = torch.randn(num_classes, feat_dim)
    out['fc.bias'] = torch.randn(num_classes)
    return out


def convnext_to_timm(state, num_classes=10):
    names = {
        'depthwise_conv': 'conv_dw',
        'pointwise_conv1': 'mlp.fc1',
        'pointwise_conv2': 'mlp.fc2',
        'gate.norm': 'gate.bn'
    }
    out = {}
    for k, v in state.items():
        m = re.match(r'^downsample_layers\.(\d+)\.(.*)$', k)
        if m and m[1] == '0':
            k = f'stem.{m[2]}'
        elif m:
            k = f'stages.{m[1]}.downsample.{m[2]}'
        elif k.startswith('norm3.'):
            k = 'head.norm.' + k[6:]
        else:
            m = re.match(r'^stages\.(\d+)\.(\d+)\.(.*)$', k)
            rest = m[3]
            for a, b in names.items():
                if rest.startswith(a + '.'):
                    rest = b + rest[len(a):]
            k = f'stages.{m[1]}.blocks.{m[2]}.{rest}'
        out[k] = v.clone()
    out['head.fc.weight'] = torch.randn(num_classes, 64)
    out['head.fc.bias'] = torch.randn(num_classes)
    return out


def randomize(model):
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t) * 0.1 + (t == 1).float())
    return model


def make_resnet(**kwargs):
    return SkipResNet(
        depth=50, base_channels=8, out_indices=(0, 1, 2, 3), **kwargs)


def test_converter_and_init_cfg_round_trip(tmp_path):
    source = randomize(make_resnet()).eval()
    timm_state = resnet_to_timm(source.state_dict(), feat_dim=256)
    assert detect_timm_layout(timm_state) == 'resnet'
    assert 'layer2.downsample.0.weight' in timm_state
    assert 'layer3.blocks.5.gate.bn.running_var' in timm_state
    timm_file = tmp_path / 'skipresnet50-tiny.pth'
    torch.save(timm_state, timm_file)

    out_file = tmp_path / 'converted.pth'
    subprocess.run(
        [sys.executable,
         str(CONVERTER),
         str(timm_file),
         str(out_file)],
        check=True,
        cwd=ROOT)
    converted = torch.load(out_file, weights_only=True)['state_dict']
    assert set(converted) == {'backbone.' + k for k in source.state_dict()} \
        | {'head.fc.weight', 'head.fc.bias'}
    torch.testing.assert_close(converted['head.fc.weight'],
                               timm_state['fc.weight'])

    x = torch.rand(1, 3, 64, 64)
    expected = source(x)
    for ckpt in (timm_file, out_file):  # the original file loads directly
        model = make_resnet(
            init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
        model.init_weights()
        model.eval()
        for a, b in zip(model(x), expected):
            torch.testing.assert_close(a, b)


def test_converter_refuses_bad_input(tmp_path):
    bad = tmp_path / 'bad.pth'
    torch.save({'foo.weight': torch.zeros(1)}, bad)
    proc = subprocess.run(
        [sys.executable,
         str(CONVERTER),
         str(bad),
         str(tmp_path / 'out.pth')],
        cwd=ROOT,
        capture_output=True,
        text=True)
    assert proc.returncode != 0
    assert 'not a timm' in proc.stderr
    assert not (tmp_path / 'out.pth').exists()


def test_convnext_round_trip(tmp_path):
    arch = dict(depths=[1, 1, 2, 1], channels=[8, 16, 32, 64])
    source = randomize(SkipConvNeXt(arch=arch, out_indices=(3, ))).eval()
    timm_state = convnext_to_timm(source.state_dict())
    converted = convert_timm_checkpoint(timm_state)
    assert 'backbone.stages.2.1.gate.norm.weight' in converted
    ckpt = tmp_path / 'skipconvnext.pth'
    torch.save(timm_state, ckpt)
    # a detection backbone: four outputs, the extra output norms keep init
    model = SkipConvNeXt(
        arch=arch,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    model.init_weights()
    x = torch.rand(1, 3, 32, 32)
    last = model.eval()(x)[3]
    torch.testing.assert_close(
        last.mean((2, 3)), _convnext_last_features(source, x))
    # the classifier's output (GAP then norm) matches too
    torch.testing.assert_close(
        model.norm3(model.stages[3](model.downsample_layers[3](_stage_input(
            model, x, 3))).mean((2, 3), keepdim=True)).flatten(1),
        source(x)[0])


def _stage_input(model, x, stage):
    for i in range(stage):
        x = model.stages[i](model.downsample_layers[i](x))
    return x


def _convnext_last_features(model, x):
    for down, stage in zip(model.downsample_layers, model.stages):
        x = stage(down(x))
    return model.norm3(x).mean((2, 3))


def test_mismatched_checkpoint_lists_what_does_not_fit(tmp_path):
    source = make_resnet()
    state = resnet_to_timm(source.state_dict(), feat_dim=256)
    del state['layer1.blocks.0.gate.conv1.weight']
    state['layer1.blocks.1.conv1.weight'] = torch.zeros(3, 3, 1, 1)
    state['layer9.blocks.0.extra'] = torch.zeros(1)
    with pytest.raises(ValueError, match='no mmgate counterpart'):
        convert_timm_checkpoint(dict(state, **{'stem.foo': torch.zeros(1)}))
    ckpt = tmp_path / 'broken.pth'
    torch.save(state, ckpt)
    model = make_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    with pytest.raises(ValueError) as err:
        model.init_weights()
    msg = str(err.value)
    assert 'missing keys: layer1.0.gate.conv1.weight' in msg
    assert 'layer1.1.conv1.weight (3, 3, 1, 1) vs model (8, 32, 1, 1)' in msg
    assert 'unexpected keys: layer9.0.extra' in msg


def test_wrong_model_for_checkpoint(tmp_path):
    """A SkipResNeXt file given to a SkipResNet is an error, not a warning
    followed by random weights."""
    src = SkipResNeXt(depth=50, groups=2, width_per_group=4, base_channels=8)
    ckpt = tmp_path / 'x50.pth'
    torch.save(
        {
            'state_dict': {
                'backbone.' + k: v
                for k, v in src.state_dict().items()
            }
        }, ckpt)
    model = make_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    with pytest.raises(ValueError, match='shape mismatches'):
        model.init_weights()
    model = make_resnet(
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt), prefix='neck.'))
    with pytest.raises(ValueError, match="prefix 'neck.'"):
        model.init_weights()
    missing = make_resnet(
        init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'no.pth')))
    with pytest.raises(FileNotFoundError, match='no.pth'):
        missing.init_weights()


def test_fewer_stages_may_skip_later_stage_weights(tmp_path):
    source = randomize(make_resnet()).eval()
    ckpt = tmp_path / 'full.pth'
    torch.save(source.state_dict(), ckpt)
    model = SkipResNet(
        depth=50,
        base_channels=8,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    model.init_weights()
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(model.eval()(x)[0], source(x)[2])


class Evil:
    """Any object that is not a tensor or a plain container."""


def test_plain_weight_files_load_weights_only(tmp_path):
    """A pretrained file that pickles arbitrary objects is refused."""
    ckpt = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': Evil()}, ckpt)
    model = make_resnet(init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    with pytest.raises(Exception, match='(?i)weights.only|unpickl'):
        model.init_weights()
