"""Prior-pooling ResNets (plain and Skip): placement, equality with
MMDetection's ResNet when no pool is used, freezing, loading plain weights,
errors; the seed_layers configs build."""
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmgate.models import (PriorPoolResNet, PriorPoolResNeXt,
                           PriorPoolSkipResNet, PriorPoolSkipResNeXt)
from mmgate.models.layers import (GaussianPool2d, GaussianPriorConv2d,
                                  LearnableGroupConv2d, MaxEntPool2d)
from tests.helpers import REPO_ROOT

TINY = dict(base_channels=8, out_indices=(0, 1, 2, 3))


@pytest.mark.parametrize('cls,kwargs', [
    (PriorPoolResNet, dict(depth=50)),
    (PriorPoolResNet, dict(depth=18)),
    (PriorPoolResNeXt, dict(depth=50, groups=2, width_per_group=4)),
    (PriorPoolSkipResNet, dict(depth=50)),
    (PriorPoolSkipResNeXt, dict(depth=50, groups=2, width_per_group=4)),
])
@pytest.mark.parametrize('placement', ['post', 'pre'])
def test_shapes_match_resnet(cls, kwargs, placement):
    model = cls(pool_placement=placement, **kwargs, **TINY)
    model.train()
    outs = model(torch.rand(2, 3, 32, 32))
    expansion = model.block.expansion
    assert [tuple(o.shape) for o in outs] == [
        (2, 8 * 2**i * expansion, 8 // 2**i, 8 // 2**i) for i in range(4)
    ]
    assert [f['reduction'] for f in model.feature_info] == [4, 8, 16, 32]
    pools = [m for m in model.modules() if isinstance(m, GaussianPool2d)]
    assert len(pools) == (5 if placement == 'post' else 4)


def test_post_placement_structure():
    model = PriorPoolResNet(depth=50, **TINY)
    assert model.conv1.stride == (1, 1)
    assert [type(m) for m in model.maxpool] == [GaussianPool2d] * 2
    assert [m.kernel_size for m in model.maxpool] == [(2, 2), (3, 3)]
    for i in (2, 3, 4):
        block = getattr(model, f'layer{i}')[0]
        assert block.conv2.stride == (1, 1)
        assert block.downsample[0].stride == (1, 1)
        assert block.pool.channels == 8 * 2**(i - 1) * 4
        assert block.pool.stride == (2, 2)
    assert not hasattr(model.layer1[0], 'pool')


def test_pre_placement_structure_and_maxent():
    model = PriorPoolResNet(
        depth=50,
        pool_placement='pre',
        pool_cfg=dict(type='MaxEntPool2d'),
        **TINY)
    assert model.conv1.stride == (2, 2)
    assert isinstance(model.maxpool, MaxEntPool2d)
    assert model.maxpool.kernel_size == (3, 3)
    # the stage input is pooled: its channels are the previous stage's
    assert model.layer2[0].pool.channels == 32
    assert model.layer3[0].pool.channels == 64
    model = PriorPoolResNet(
        depth=50, pool_placement='pre', pool_stem=False, **TINY)
    assert isinstance(model.maxpool, nn.MaxPool2d)


@pytest.mark.parametrize('depth,extra',
                         [(50, dict()), (18, dict()),
                          (50, dict(groups=2, base_width=4, cls='ResNeXt'))])
def test_without_pools_equals_mmdet_resnet(depth, extra):
    from mmdet.models.backbones import ResNet, ResNeXt
    extra = dict(extra)
    if extra.pop('cls', None):
        theirs = ResNeXt(depth=depth, **extra, **TINY)
        ours = PriorPoolResNeXt(
            depth=depth, pool_cfg=None, groups=2, width_per_group=4, **TINY)
    else:
        theirs = ResNet(depth=depth, **TINY)
        ours = PriorPoolResNet(depth=depth, pool_cfg=None, **TINY)
    ours.load_state_dict(theirs.state_dict())  # same keys, strict
    ours.eval()
    theirs.eval()
    x = torch.rand(2, 3, 64, 64)
    for a, b in zip(ours(x), theirs(x)):
        torch.testing.assert_close(a, b)


def test_cifar_stem():
    model = PriorPoolResNet(depth=50, pool_cfg=None, cifar_stem=True, **TINY)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    outs = model(torch.rand(2, 3, 32, 32))
    assert outs[0].shape[-1] == 32 and outs[3].shape[-1] == 4
    assert [f['reduction'] for f in model.feature_info] == [1, 2, 4, 8]
    with pytest.raises(ValueError, match='cifar_stem and deep_stem'):
        PriorPoolResNet(depth=50, cifar_stem=True, deep_stem=True)


def test_freezing_norm_eval_and_zero_init():
    model = PriorPoolResNet(depth=50, frozen_stages=2, norm_eval=True, **TINY)
    model.init_weights()
    model.train()
    for name, param in model.named_parameters():
        frozen = name.startswith(
            ('conv1', 'bn1', 'maxpool', 'layer1', 'layer2'))
        assert param.requires_grad != frozen, name
    assert not model.maxpool.training and not model.layer2[0].pool.training
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))
    # the last norm of every bottleneck starts at zero
    assert model.layer3[1].bn3.weight.abs().sum() == 0
    assert model.layer3[1].bn2.weight.abs().sum() > 0
    depth, num = model.get_layer_depth('backbone.maxpool.0.prior.conv1.weight',
                                       'backbone.')
    assert depth == 0 and num == 18
    assert model.get_layer_depth('backbone.layer2.0.pool.prior.conv1.weight',
                                 'backbone.')[0] == 4


def test_loads_plain_resnet_weights(tmp_path):
    from mmdet.models.backbones import ResNet
    plain = ResNet(depth=50, **TINY)
    state = dict(plain.state_dict())
    state['fc.weight'] = torch.zeros(10, 256)  # a torchvision-style file
    state['fc.bias'] = torch.zeros(10)
    path = tmp_path / 'resnet50.pth'
    torch.save(state, path)
    model = PriorPoolResNet(
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)),
        **TINY)
    model.init_weights()
    torch.testing.assert_close(model.layer3[2].conv2.weight,
                               plain.layer3[2].conv2.weight)
    # layers new to a plain network: their own init, the filters load
    model = PriorPoolResNet(
        depth=50,
        pool_cfg=None,
        stage_with_dcn=(True, ) * 4,
        dcn=dict(type='mmgate.GaussianPriorConv2d'),
        init_cfg=dict(type='Pretrained', checkpoint=str(path)),
        **TINY)
    model.init_weights()
    assert isinstance(model.layer3[2].conv2, GaussianPriorConv2d)
    torch.testing.assert_close(model.layer3[2].conv2.weight,
                               plain.layer3[2].conv2.weight)
    state['layer1.0.conv9.weight'] = torch.zeros(1)
    torch.save(state, path)
    model = PriorPoolResNet(
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)),
        **TINY)
    with pytest.raises(ValueError, match='layer1.0.conv9.weight'):
        model.init_weights()


def test_skip_post_pools_the_shortcut_map():
    model = PriorPoolSkipResNet(depth=50, out_indices=(1, ), base_channels=8)
    model.eval()
    x = torch.rand(1, 3, 64, 64)
    layer = model.layer2
    x1 = model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x)))))
    xs0 = layer[0].project(x1)
    from mmgate.models.layers import global_descriptor
    y = layer[0](x1, [xs0], [global_descriptor(xs0)])  # pools its output
    xs0 = nn.functional.avg_pool2d(xs0, 2, 2, ceil_mode=True)
    xs, descs = [xs0, y], [global_descriptor(xs0), global_descriptor(y)]
    for block in layer[1:]:
        idx = block.inbound_indices
        y = block(y, [xs[i] for i in idx], [descs[i] for i in idx])
        xs.append(y)
        descs.append(global_descriptor(y))
    torch.testing.assert_close(model(x)[0], y)


def test_bad_options():
    with pytest.raises(ValueError, match='pool_placement'):
        PriorPoolResNet(depth=50, pool_placement='middle')
    with pytest.raises(TypeError, match='pool_cfg'):
        PriorPoolResNet(depth=50, pool_cfg='GaussianPool2d')
    with pytest.raises(KeyError, match='not registered'):
        PriorPoolResNet(depth=50, pool_cfg=dict(type='Nope'))
    with pytest.raises(TypeError, match=r"no gates; remove \['gate_lean'\]"):
        PriorPoolResNet(depth=50, gate_lean=True)
    with pytest.raises(TypeError, match='pool_stem must be a bool'):
        PriorPoolResNet(depth=50, pool_stem='no')
    with pytest.raises(KeyError, match='invalid depth 34'):
        PriorPoolResNeXt(depth=34)


def test_layers_in_the_dcn_slot_of_the_skip_and_plain_backbones():
    for cls in (PriorPoolResNet, PriorPoolSkipResNet):
        model = cls(
            depth=50,
            pool_cfg=None,
            stage_with_dcn=(False, True, False, True),
            dcn=dict(type='mmgate.GaussianPriorConv2d'),
            **TINY)
        assert isinstance(model.layer2[0].conv2, GaussianPriorConv2d)
        assert not isinstance(model.layer3[0].conv2, GaussianPriorConv2d)
        model = cls(
            depth=50,
            pool_cfg=None,
            stage_with_dcn=(True, ) * 4,
            dcn=dict(type='mmgate.LearnableGroupConv2d', num_groups=2),
            **TINY)
        assert isinstance(model.layer4[2].conv2, LearnableGroupConv2d)
        assert model(torch.rand(2, 3, 32, 32))[3].shape == (2, 256, 1, 1)


CONFIG_DIR = Path(REPO_ROOT) / 'configs' / 'seed_layers'
CONFIGS = sorted(
    str(p) for p in CONFIG_DIR.rglob('*.py') if '_base_' not in p.parts)


def test_configs_are_listed():
    names = {c.split('/')[-1] for c in CONFIGS}
    assert len([n for n in names if 'flgc' in n]) == 8
    assert 'cascade-mask-rcnn_skipresnet50-gausspool-pre_fpn_ms-3x_coco.py' \
        in names


@pytest.mark.parametrize(
    'path', [c for c in CONFIGS if 'cascade' not in c],
    ids=lambda p: p.split('/')[-1])
def test_classification_configs_build(path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(path)
    layer = {
        'gausspool': GaussianPool2d,
        'maxentpool': MaxEntPool2d,
        'gaussconv': GaussianPriorConv2d,
        'flgc': LearnableGroupConv2d
    }
    expected = [cls for key, cls in layer.items() if key in path]
    # full width is slow to build on CPU: the structure is what matters
    cfg.model.backbone.base_channels = 16
    cfg.model.backbone.stem_channels = 16
    cfg.model.head.in_channels = 16 * 8 * (4 if '34' not in path else 1)
    model = MODELS.build(cfg.model)
    assert any(isinstance(m, expected[0]) for m in model.modules())
    model.eval()
    size = 32 if 'cifar' in path else 64
    out = model(torch.rand(1, 3, size, size), mode='tensor')
    assert out.shape[-1] == cfg.model.head.num_classes
