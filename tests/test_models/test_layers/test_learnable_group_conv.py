"""LearnableGroupConv2d (FLGC + feature duplication): masked conv vs its
packed / folded deploy forms, straight-through gradients, the duplication
rule by hand, its logging in a real Runner, and errors."""
import logging
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmgate.models.layers import (LearnableGroupConv2d, PackedGroupConv2d,
                                  deploy_learnable_group_convs,
                                  learnable_group_stats)
from tests.helpers import REPO_ROOT


def _random_assignment(conv, scale=2.):
    with torch.no_grad():
        conv.in_group_logits.normal_(0, scale)
        conv.out_group_logits.normal_(0, scale)


def _mask_by_hand(conv, dup):
    """M[o, c] = 1 when channel c is a member of (or duplicated into) the
    group of filter o."""
    gin = conv.in_group_logits.argmax(1)
    gout = conv.out_group_logits.argmax(1)
    mask = torch.zeros(conv.out_channels, conv.in_channels)
    for o in range(conv.out_channels):
        for c in range(conv.in_channels):
            mask[o, c] = float(gin[c] == gout[o] or bool(dup[c, gout[o]]))
    return mask


def _duplicates_by_hand(conv):
    """Seed 002's rule, one group at a time."""
    logits = conv.in_group_logits.detach()
    stat = torch.softmax(logits, 1) if conv.dup_source == 'prob' else logits
    gin = logits.argmax(1)
    dup = torch.zeros_like(stat, dtype=torch.bool)
    for g in range(conv.num_groups):
        if conv.dup_reference == 'members':
            ref = stat[gin == g, g]
        else:
            ref = stat[:, g]
        if ref.numel() == 0:
            continue
        threshold = ref.sort(descending=True).values[:conv.dup_topk].mean()
        for c in range(conv.in_channels):
            dup[c, g] = gin[c] != g and stat[c, g] > threshold
    return dup


@pytest.mark.parametrize('duplicate', [False, True])
def test_masked_conv_equals_packed_and_folded(duplicate):
    conv = LearnableGroupConv2d(
        12,
        10,
        3,
        stride=2,
        padding=1,
        num_groups=4,
        duplicate=duplicate,
        dup_source='logit',
        dup_reference='column')
    _random_assignment(conv)
    with torch.no_grad():
        # group 2 reads channels but has no filter, group 3 has filters
        # (8, 9) but no input channel
        conv.out_group_logits[:, 2] = -10.
        conv.out_group_logits[8:, 3] = 10.
        conv.out_group_logits[:8, 3] = -10.
        conv.in_group_logits[:, 3] = -10.
        conv.bias.normal_()
    x = torch.randn(2, 12, 9, 9)
    out = conv(x)
    dup = _duplicates_by_hand(conv) if duplicate else torch.zeros(12, 4)
    assert int(conv.num_duplicates) == int(dup.sum())
    if duplicate:
        assert int(dup.sum()) > 0, 'the test needs some duplicates'
    mask = _mask_by_hand(conv, dup)
    torch.testing.assert_close(conv.mask().detach(), mask)
    ref = F.conv2d(x, conv.weight * mask[:, :, None, None], conv.bias, 2, 1)
    torch.testing.assert_close(out, ref)

    packed = conv.pack()
    assert isinstance(packed, PackedGroupConv2d)
    assert packed.num_idle == 2 and len(packed.convs) == 2
    torch.testing.assert_close(packed(x), out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv.fold()(x), out, rtol=1e-5, atol=1e-5)
    dense = 10 * 12
    assert sum(c.weight[:, :, 0, 0].numel() for c in packed.convs) < dense


def test_packing_saves_compute_when_balanced():
    conv = LearnableGroupConv2d(16, 16, 3, padding=1, num_groups=4)
    packed = conv.pack()
    assert [c.in_channels for c in packed.convs] == [4, 4, 4, 4]
    x = torch.randn(1, 16, 8, 8)
    torch.testing.assert_close(packed(x), conv(x), rtol=1e-5, atol=1e-5)
    # the contiguous start is a standard group conv
    grouped = nn.Conv2d(16, 16, 3, padding=1, groups=4)
    with torch.no_grad():
        grouped.weight.copy_(
            torch.cat([
                conv.weight[4 * g:4 * g + 4, 4 * g:4 * g + 4] for g in range(4)
            ]))
        grouped.bias.copy_(conv.bias)
    torch.testing.assert_close(grouped(x), conv(x), rtol=1e-5, atol=1e-5)


def test_gradients_reach_the_assignment_logits():
    conv = LearnableGroupConv2d(8, 8, 3, padding=1, num_groups=2)
    _random_assignment(conv, 0.5)
    conv(torch.randn(2, 8, 6, 6)).square().sum().backward()
    assert conv.in_group_logits.grad.abs().sum() > 0
    assert conv.out_group_logits.grad.abs().sum() > 0
    # weights outside the mask get no gradient (grad * mask)
    mask = conv.mask().detach()
    assert (conv.weight.grad[mask == 0] == 0).all()
    assert (conv.weight.grad[mask == 1] != 0).any()


@pytest.mark.parametrize('source,reference,topk', [('prob', 'members', 3),
                                                   ('logit', 'members', 2),
                                                   ('prob', 'column', 3),
                                                   ('logit', 'column', 4)])
def test_duplication_rule_and_count(source, reference, topk):
    conv = LearnableGroupConv2d(
        32,
        16,
        1,
        num_groups=4,
        duplicate=True,
        dup_source=source,
        dup_reference=reference,
        dup_topk=topk)
    _random_assignment(conv, 1.)
    conv(torch.randn(1, 32, 2, 2))
    dup = _duplicates_by_hand(conv)
    assert int(conv.num_duplicates) == int(dup.sum())
    stats = learnable_group_stats(nn.Sequential(conv))['0']
    assert stats['duplicates'] == int(dup.sum())
    members = F.one_hot(conv.in_group_logits.argmax(1), 4).sum(0)
    assert stats['in_sizes'] == (members + dup.sum(0)).tolist()
    assert sum(stats['out_sizes']) == 16


def test_seed_rule_fires_on_uncertain_groups():
    """Members of group 1 are unsure (p = 0.3), channel 0 belongs to group 0
    but leans to group 1 (p = 0.4 > 0.3): it is duplicated into group 1."""
    conv = LearnableGroupConv2d(8, 8, 1, num_groups=4, duplicate=True)
    probs = torch.full((8, 4), 0.1)
    probs[:, 0] = 0.7
    probs[4:, :] = torch.tensor([0.25, 0.3, 0.25, 0.2])
    probs[0] = torch.tensor([0.45, 0.4, 0.1, 0.05])
    with torch.no_grad():
        conv.in_group_logits.copy_(probs.log())
    conv(torch.randn(1, 8, 2, 2))
    assert int(conv.num_duplicates) == 1
    members = conv.group_members()
    assert 0 in members[1][0].tolist() and 0 in members[0][0].tolist()


def test_deploy_a_backbone_and_the_dcn_slot():
    from mmdet.models.backbones import ResNet
    model = ResNet(
        depth=50,
        base_channels=16,
        out_indices=(3, ),
        dcn=dict(
            type='mmgate.LearnableGroupConv2d',
            num_groups=4,
            duplicate=True,
            dup_source='logit'),
        stage_with_dcn=(True, True, True, True))
    for m in model.modules():
        if isinstance(m, LearnableGroupConv2d):
            _random_assignment(m, 1.)
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    out = model(x)[0]
    stats = learnable_group_stats(model)
    assert len(stats) == 16 and 'layer1.0.conv2' in stats
    deploy_learnable_group_convs(model, 'pack')
    assert not any(
        isinstance(m, LearnableGroupConv2d) for m in model.modules())
    torch.testing.assert_close(model(x)[0], out, rtol=1e-4, atol=1e-4)


def test_resnext_groups_become_learnable_groups():
    conv = LearnableGroupConv2d(32, 32, 3, padding=1, groups=8)
    assert conv.num_groups == 8 and conv.groups == 1
    with pytest.raises(ValueError, match='groups=8 from its caller'):
        LearnableGroupConv2d(32, 32, 3, groups=8, num_groups=4)


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_groups=9), r'num_groups must .* = \[1, 8\], got 9'),
    (dict(num_groups=0), 'num_groups'),
    (dict(num_groups=2, dup_topk=0), 'dup_topk'),
    (dict(num_groups=2, dup_source='softmax'), 'dup_source'),
    (dict(num_groups=2, dup_reference='all'), 'dup_reference'),
    (dict(num_groups=2, duplicate='yes'), 'duplicate must be a bool'),
])
def test_bad_options(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LearnableGroupConv2d(8, 16, 3, **kwargs)
    with pytest.raises(ValueError, match="'pack' or 'fold'"):
        deploy_learnable_group_convs(nn.Identity(), 'prune')


def test_config_keeps_logits_out_of_weight_decay():
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(
        str(
            Path(REPO_ROOT) / 'configs/seed_layers/flgc/'
            'resnet50-cifar_flgc-dup-g8_8xb16_cifar10.py'))
    assert cfg.model.backbone.dcn.num_groups == 8
    assert cfg.model.backbone.dcn.duplicate is True
    model = nn.Sequential(LearnableGroupConv2d(8, 8, 3, num_groups=8))
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {
        id(p): g['weight_decay']
        for g in optim.param_groups
        for p in g['params']
    }
    assert decay[id(model[0].in_group_logits)] == 0.
    assert decay[id(model[0].out_group_logits)] == 0.
    assert decay[id(model[0].weight)] == 1e-4


def test_stats_hook_logs_duplicates_in_a_runner(tmp_path):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Tiny(BaseModel):

        def __init__(self):
            super().__init__()
            self.conv = LearnableGroupConv2d(
                8,
                8,
                1,
                num_groups=4,
                duplicate=True,
                dup_source='logit',
                dup_reference='column')
            with torch.no_grad():
                self.conv.in_group_logits.normal_(0, 2)

        def forward(self, inputs, mode='loss'):
            return dict(loss=self.conv(inputs).square().mean())

    data = [dict(inputs=torch.randn(8, 2, 2)) for _ in range(4)]
    runner = Runner(
        model=Tiny(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=data,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.)),
        custom_hooks=[dict(type='mmgate.LearnableGroupStatsHook', interval=1)],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1), checkpoint=None),
        default_scope='mmengine',
        log_level=logging.INFO)
    runner.train()
    expected = int(_duplicates_by_hand(runner.model.conv).sum())
    assert expected > 0
    assert runner.message_hub.get_scalar(
        'train/flgc_duplicates').current() == expected
    log = next(tmp_path.rglob('*.log')).read_text()
    assert f'FLGC duplicated channels per layer: conv={expected}' in log
    assert re.search(rf'flgc_duplicates: {expected}(\.0+)?\s', log)
