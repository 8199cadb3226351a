"""Backbone names from the built classes, never from file or type names.

Every backbone here is built for real (mmgate's, MMDetection's,
MMPretrain's classes, in the default scope of the config that names it), at
depth 18 / 50 or narrowed, so the file stays quick.
"""
import os
import os.path as osp

import pytest
import torch
from mmdet.models.backbones import ResNet
from mmengine.config import Config
from mmengine.fileio import dump
from mmengine.registry import MODELS

from mmgate.analysis.metafiles import load_model_index
from mmgate.analysis.naming import (BackboneError, config_scope,
                                    describe_backbone)
from mmgate.analysis.report import build_report


@MODELS.register_module(name='SkipResNeXtLookalike', force=True)
class PlainTrunk(ResNet):
    """An MMDetection ResNet registered under a misleading name."""


def test_resnext_groups_are_the_host_librarys_default():
    """``groups`` unset: 32 in MMPretrain, 1 in MMDetection (its ResNeXt
    then is a plain-width trunk and pairs with ResNet-50)."""
    pre = describe_backbone(
        dict(type='mmgate.SkipResNeXt', depth=50), 'mmpretrain')
    assert (pre.label, pre.skip, pre.built) == ('SkipResNeXt-50-32x4d', True,
                                                True)
    plain = describe_backbone(dict(type='ResNeXt', depth=50), 'mmpretrain')
    assert plain.label == 'ResNeXt-50-32x4d' and not plain.skip
    assert plain.family_key == pre.family_key
    assert plain.structure != pre.structure  # the gates
    det = describe_backbone(dict(type='mmgate.SkipResNeXt', depth=50), 'mmdet')
    assert det.label == 'SkipResNeXt-50'
    assert det.family_key == describe_backbone(
        dict(type='ResNet', depth=50), 'mmdet').family_key
    assert det.family_key != pre.family_key
    explicit = describe_backbone(
        dict(type='ResNeXt', depth=50, groups=32, base_width=4), 'mmdet')
    assert explicit.label == 'ResNeXt-50-32x4d'
    assert explicit.family_key == pre.family_key


def test_names_of_the_other_families():
    narrow = describe_backbone(
        dict(type='mmgate.SkipResNetV1c', depth=18, base_channels=8), 'mmseg')
    assert narrow.label == 'SkipResNetV1c-18 (w8)'
    assert narrow.family_key == describe_backbone(
        dict(type='ResNetV1c', depth=18, base_channels=8), 'mmseg').family_key
    # a ConvNeXt arch given as a dict is named by the class's own table
    atto = dict(depths=[2, 2, 6, 2], channels=[40, 80, 160, 320])
    conv = describe_backbone(
        dict(type='mmgate.SkipConvNeXt', arch=atto), 'mmpretrain')
    assert conv.label == 'SkipConvNeXt-atto' and conv.skip
    assert conv.family_key == describe_backbone(
        dict(type='ConvNeXt', arch='atto'), 'mmpretrain').family_key
    custom = describe_backbone(
        dict(
            type='mmgate.SkipConvNeXt',
            arch=dict(depths=[1, 1, 2, 1], channels=[8, 16, 32, 64])),
        'mmpretrain')
    assert custom.label == 'SkipConvNeXt (d1-1-2-1, c8)'
    mobile = describe_backbone(
        dict(type='mmgate.DenseMobileNetV2', widen_factor=0.5), 'mmpretrain')
    assert (mobile.label, mobile.skip) == ('DenseMobileNetV2-0.5', True)
    assert mobile.family_key == describe_backbone(
        dict(type='MobileNetV2', widen_factor=0.5), 'mmpretrain').family_key
    dense = describe_backbone(
        dict(type='mmgate.DenseResNet', depth=18, base_channels=8))
    assert (dense.label, dense.skip) == ('DenseResNet-18 (w8)', True)
    # the class's name, not the name it is registered under
    alias = describe_backbone(
        dict(type='SkipResNeXtLookalike', depth=18, base_channels=8))
    assert (alias.label, alias.skip) == ('PlainTrunk-18 (w8)', False)
    assert alias.family_key == dense.family_key


def test_naming_builds_without_side_effects():
    state = torch.get_rng_state()
    describe_backbone(
        dict(
            type='mmgate.SkipResNet',
            depth=18,
            base_channels=4,
            num_stages=3,
            strides=(1, 2, 2),
            dilations=(1, 1, 1),
            out_indices=(2, )))
    assert torch.equal(state, torch.get_rng_state())


def test_a_backbone_that_does_not_build_is_named_so():
    with pytest.raises(
            BackboneError,
            match="backbone 'NoSuchNet' does not "
            "build in scope 'mmdet': KeyError"):
        describe_backbone(dict(type='NoSuchNet'), 'mmdet')
    with pytest.raises(BackboneError, match='invalid depth 19'):
        describe_backbone(dict(type='mmgate.SkipResNet', depth=19))


def _run(root, name, backbone, scope='mmdet'):
    """A tested run: its dumped config and a test result."""
    work_dir = osp.join(root, name)
    ts = '20240101_000000'
    os.makedirs(osp.join(work_dir, ts))
    Config(
        dict(
            default_scope=scope,
            model=dict(
                type='CascadeRCNN',
                backbone=backbone,
                roi_head=dict(
                    type='CascadeRoIHead',
                    bbox_head=[dict(num_classes=80)] * 3)),
            train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=1),
            val_dataloader=dict(dataset=dict(type='CocoDataset')),
            val_evaluator=dict(type='CocoMetric'))).dump(
                osp.join(work_dir, f'{name}.py'))
    dump({'coco/bbox_mAP': 0.4}, osp.join(work_dir, ts, f'{ts}.json'))


def test_misleading_config_names_get_the_backbones_name(tmp_path):
    """The file names say SkipResNeXt-101 / ResNeXt-101; the backbones are
    a narrow SkipResNet-18 and its plain twin: named, paired and kept from
    the paper values by what they are."""
    root = str(tmp_path)
    skip = dict(type='mmgate.SkipResNet', depth=18, base_channels=8)
    _run(root, 'cascade_rcnn_skipresnext101_32x4d_coco', skip)
    _run(root, 'cascade_rcnn_resnext101_32x4d_coco', dict(skip, type='ResNet'))
    _run(root, 'broken_resnet50', dict(type='NoSuchNet', depth=50))
    rows = {s.config: s for s in build_report(root).summaries}
    gated = rows['cascade_rcnn_skipresnext101_32x4d_coco']
    assert gated.backbone.label == 'SkipResNet-18 (w8)'
    assert gated.model == \
        'cascade-mask-rcnn_skipresnext101-32x4d_fpn_ms-3x_coco'
    assert gated.paper == {}
    assert gated.notes == [
        f'config of {gated.model}, but backbone SkipResNet-18 (w8), not '
        'SkipResNeXt-101-32x4d: no paper values'
    ]
    report = build_report(root)
    ((base, pair), ) = [(p.base.config, p.label) for p in report.pairs]
    assert base == 'cascade_rcnn_resnext101_32x4d_coco'
    assert pair == 'SkipResNet-18 (w8) vs ResNet-18 (w8)'
    broken = rows['broken_resnet50']
    assert (broken.backbone.label, broken.backbone.built) == ('NoSuchNet',
                                                              False)
    assert broken.notes[0].startswith(
        "backbone 'NoSuchNet' does not build in scope 'mmdet'")
    assert broken.notes[0].endswith('; named by its type')


@pytest.mark.parametrize('name', [
    'cascade-mask-rcnn_skipresnext50-32x4d_fpn_ms-3x_coco',
    'upernet_resnet50_8xb2-160k_ade20k-512x512',
    'skipresnext50-32x4d_8xb128-cos300e_in1k',
    'convnext-tiny_8xb128-cos300e_in1k',
])
def test_metafile_configs_are_named_as_their_metadata(name):
    """The class-derived name of a metafile config's backbone is the
    ``Metadata.Backbone`` the paper uses (one config of each library and
    family)."""
    model = load_model_index().get(name)
    cfg = Config.fromfile(model.config_path)
    info = describe_backbone(cfg.model.backbone, config_scope(cfg))
    # MMSegmentation's deep stem (V1c) is not part of the paper's name
    assert info.label.replace('V1c', '') == model.backbone
