"""Swapping only ``type`` builds the same model as the host library's own
backbone: defaults follow the default scope the model is built under
(``backbones/base.py``), stock arguments are honoured, key layouts match.

Each test builds through the host registry under the host's scope, as a
config would, and compares with the stock class built from the same kwargs.
"""
import pytest
import torch
from mmengine.registry import init_default_scope
from torch.nn.modules.batchnorm import _BatchNorm

from mmgate.models.layers import GateModule
from tests.test_models.test_pretrained import init_weights_messages

HOSTS = ('mmdet', 'mmseg', 'mmpretrain')


def _build(host, cfg):
    init_default_scope(host)
    registry = __import__(f'{host}.registry', fromlist=['MODELS']).MODELS
    return registry.build(cfg)


def _bn_modes(model, gates=False):
    return [
        m.training for n, m in model.named_modules()
        if isinstance(m, _BatchNorm) and ('.gate.' in f'.{n}.') == gates
    ]


def _trainable(model):
    return sum(p.numel() for n, p in model.named_parameters()
               if p.requires_grad and '.gate.' not in n)


@pytest.mark.parametrize('host', HOSTS)
def test_norm_eval_and_out_indices_follow_the_host(host):
    kwargs = dict(depth=18, base_channels=8)
    stock = _build(host, dict(type='ResNet', **kwargs))
    ours = _build(host, dict(type='mmgate.SkipResNet', **kwargs))
    assert ours.host == host
    assert ours.norm_eval == stock.norm_eval
    assert tuple(ours.out_indices) == tuple(stock.out_indices)
    stock.train()
    ours.train()
    assert _bn_modes(ours) == _bn_modes(stock)
    # the gates' norms train exactly when the backbone's do
    assert set(_bn_modes(ours, gates=True)) == {not stock.norm_eval}
    x = torch.rand(2, 3, 32, 32)
    assert [o.shape for o in ours(x)] == [o.shape for o in stock(x)]


def test_without_a_scope_mmdetection_defaults_apply():
    from mmgate.models import SkipResNet
    model = SkipResNet(depth=18, base_channels=8)
    assert (model.host, model.norm_eval, model.out_indices) == \
        ('mmdet', True, (0, 1, 2, 3))


@pytest.mark.parametrize(
    'host,stock_cfg',
    [
        ('mmdet', dict(type='ResNeXt', groups=32, base_width=4)),
        ('mmseg', dict(type='ResNeXt', groups=32, base_width=4)),
        ('mmpretrain', dict(type='ResNeXt', groups=32, width_per_group=4)),
        ('mmdet', dict(type='ResNeXt')),  # mmdet's default: groups=1
        ('mmpretrain', dict(type='ResNeXt')),  # MMPretrain's: 32x4d
    ])
def test_resnext_arguments_and_groups_per_host(host, stock_cfg):
    kwargs = dict(depth=50, base_channels=16)
    stock = _build(host, dict(stock_cfg, **kwargs))
    ours = _build(host, dict(stock_cfg, type='mmgate.SkipResNeXt', **kwargs))
    assert ours.layer2[0].conv2.groups == stock.layer2[0].conv2.groups
    theirs = stock.state_dict()
    mine = ours.state_dict()
    assert all(mine[k].shape == v.shape for k, v in theirs.items())


def test_resnext_width_names_must_agree():
    from mmgate.models import SkipResNeXt
    with pytest.raises(ValueError, match='width_per_group .* base_width'):
        SkipResNeXt(depth=50, groups=4, width_per_group=4, base_width=8)


def test_plugins_round_trip_follow_mmdetection():
    plugins = [
        dict(
            cfg=dict(type='ContextBlock', ratio=1. / 4),
            stages=(False, True, True, True),
            position='after_conv3'),
        dict(
            cfg=dict(
                type='GeneralizedAttention',
                spatial_range=-1,
                num_heads=2,
                attention_type='0010',
                kv_stride=2),
            stages=(False, False, True, True),
            position='after_conv2')
    ]
    kwargs = dict(depth=50, base_channels=16, plugins=plugins)
    stock = _build('mmdet', dict(type='ResNet', **kwargs))
    ours = _build('mmdet', dict(type='mmgate.SkipResNet', **kwargs))
    theirs, mine = stock.state_dict(), ours.state_dict()
    plugin_keys = {
        k
        for k in theirs if 'context_block' in k or 'gen_attention_block' in k
    }
    assert plugin_keys and plugin_keys <= set(mine)
    assert all(mine[k].shape == theirs[k].shape for k in theirs)
    assert not any('context_block' in k
                   for k in mine if k.startswith('layer1.'))
    ours.train()
    sum(o.sum() for o in ours(torch.rand(2, 3, 64, 64))).backward()
    # (the block's last conv starts at zero, MMCV's ContextBlock init)
    grad = ours.layer3[0].context_block.channel_add_conv[-1].weight.grad
    assert grad is not None and grad.abs().sum() > 0
    # plugins=None is MMDetection's default and accepted
    _build('mmdet', dict(type='mmgate.SkipResNet', depth=18, plugins=None))
    with pytest.raises(ValueError, match='BasicBlock'):
        _build('mmdet',
               dict(type='mmgate.SkipResNet', depth=18, plugins=plugins[:1]))
    with pytest.raises(ValueError, match='plugins must be'):
        _build(
            'mmdet',
            dict(
                type='mmgate.SkipResNet',
                depth=50,
                plugins=[
                    dict(
                        cfg=dict(type='ContextBlock'), position='after_conv4')
                ]))


def test_multi_grid_and_expansion():
    kwargs = dict(
        depth=50,
        base_channels=8,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        multi_grid=(1, 2, 4),
        contract_dilation=True)
    stock = _build('mmseg', dict(type='ResNetV1c', **kwargs))
    ours = _build('mmseg', dict(type='mmgate.SkipResNetV1c', **kwargs))
    assert [b.conv2.dilation for b in ours.layer4] == \
        [b.conv2.dilation for b in stock.layer4] == [(1, 1), (2, 2), (4, 4)]
    with pytest.raises(ValueError, match='multi_grid needs one dilation'):
        _build('mmseg',
               dict(kwargs, type='mmgate.SkipResNetV1c', multi_grid=(1, 2)))
    ours = _build(
        'mmpretrain',
        dict(type='mmgate.SkipResNet', depth=50, expansion=4, base_channels=8))
    assert ours.feat_dim == 256
    with pytest.raises(ValueError, match='expansion=2'):
        _build('mmpretrain',
               dict(type='mmgate.SkipResNet', depth=50, expansion=2))


@pytest.mark.parametrize('host', HOSTS)
def test_v1d_key_layout_follows_the_host(host):
    kwargs = dict(depth=50, base_channels=8)
    stock = _build(host, dict(type='ResNetV1d', **kwargs))
    ours = _build(host, dict(type='mmgate.SkipResNetV1d', **kwargs))
    theirs, mine = stock.state_dict(), ours.state_dict()
    assert set(theirs) <= set(mine), sorted(set(theirs) - set(mine))[:4]
    assert all(mine[k].shape == v.shape for k, v in theirs.items())
    assert all('.gate.' in k for k in set(mine) - set(theirs))


@pytest.mark.parametrize('kwargs', [
    dict(arch='atto', use_grn=True, layer_scale_init_value=0.),
    dict(arch='nano', linear_pw_conv=False),
    dict(
        arch='pico', norm_cfg=dict(type='LN2d', eps=1e-6,
                                   requires_grad=False)),
])
def test_convnext_arguments(kwargs):
    stock = _build('mmpretrain', dict(type='ConvNeXt', **kwargs))
    ours = _build('mmpretrain', dict(type='mmgate.SkipConvNeXt', **kwargs))
    theirs, mine = stock.state_dict(), ours.state_dict()
    assert all(mine[k].shape == v.shape for k, v in theirs.items())
    assert all('.gate.' in k for k in set(mine) - set(theirs))
    assert _trainable(ours) == _trainable(stock)
    if 'norm_cfg' in kwargs:  # the gates' LN follows requires_grad too
        assert not any(p.requires_grad
                       for n, p in ours.named_parameters() if 'norm' in n)
    x = torch.rand(1, 3, 64, 64)
    assert [o.shape for o in ours(x)] == [o.shape for o in stock(x)]


@pytest.mark.parametrize('norm_cfg,expected', [
    (dict(type='SyncBN', requires_grad=True), 'SyncBatchNorm'),
    (dict(type='BN', requires_grad=False), 'BatchNorm2d'),
    (dict(type='GN', num_groups=4, requires_grad=False), 'BatchNorm2d'),
])
def test_gate_norm_follows_norm_cfg(norm_cfg, expected):
    model = _build(
        'mmdet',
        dict(
            type='mmgate.SkipResNet',
            depth=18,
            base_channels=8,
            norm_cfg=norm_cfg))
    for gate in (m for m in model.modules() if isinstance(m, GateModule)):
        assert type(gate.norm).__name__ == expected
        assert all(p.requires_grad == norm_cfg['requires_grad']
                   for p in gate.norm.parameters())


def test_gate_bn_trains_on_one_image():
    """norm_eval=False and one image per device: the stock backbone trains;
    so does the gated one (its gate BNs normalise one pooled vector with the
    running statistics)."""
    kwargs = dict(depth=18, base_channels=8, norm_eval=False)
    stock = _build('mmseg', dict(type='ResNet', **kwargs))
    ours = _build('mmseg', dict(type='mmgate.SkipResNet', **kwargs))
    stock.train()
    ours.train()
    x = torch.rand(1, 3, 64, 64)  # the last stage still sees 2x2 values
    stock(x)
    gate = ours.layer2[1].gate
    before = gate.norm.running_mean.clone()
    bn = ours.layer2[1].norm1
    bn_before = bn.running_mean.clone()
    outs = ours(x)
    sum(o.sum() for o in outs).backward()
    assert all(torch.isfinite(o).all() for o in outs)
    assert torch.equal(gate.norm.running_mean, before)
    assert not torch.equal(bn.running_mean, bn_before)  # branch BNs train
    assert gate.conv1.weight.grad is not None


def test_trunk_from_a_plain_resnet_checkpoint(tmp_path):
    """Opt-in: the trunk from a plain ResNet file, the gates fresh and
    listed in the log; without the opt-in the strict load refuses it."""
    from mmdet.models.backbones import ResNet
    plain = ResNet(depth=18, base_channels=8)
    state = plain.state_dict()
    state['fc.weight'] = torch.zeros(10, 64)  # a torchvision-style head
    path = str(tmp_path / 'resnet18.pth')
    torch.save(state, path)
    cfg = dict(type='mmgate.SkipResNet', depth=18, base_channels=8)
    strict = _build(
        'mmdet', dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(ValueError, match='missing keys: layer1.0.gate'):
        strict.init_weights()
    model = _build(
        'mmdet',
        dict(
            cfg,
            init_cfg=dict(type='Pretrained', checkpoint=path, new_gates=True)))
    message = ' '.join(init_weights_messages(model))
    assert torch.equal(model.layer3[1].conv2.weight,
                       plain.layer3[1].conv2.weight)
    assert '56 tensors not in the checkpoint keep their initialisation' in \
        message and 'layer4.1.gate.conv2.bias' in message
