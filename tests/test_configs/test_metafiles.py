"""The model index: model-index.yml and the OpenMMLab metafiles of the config
families, as mmgate reads them (mmgate.analysis.metafiles) and as openmim
reads them (``mim search mmgate``)."""
import glob
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmengine.config import Config

from mmgate.analysis.metafiles import (MODEL_INDEX_ENV, load_model_index,
                                       model_index_path)
from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT
FAMILIES = ('skipresnet', 'skipconvnext', 'dense', 'seed_layers')

# The published tables (Takeda, MIRU 2022; KAKENHI 20K11871 final report):
# backbone -> ((base box AP, mask AP), (Skip box AP, mask AP)), ...
DET = {
    'resnet50': ((44.81, 38.98), (47.72, 41.42)),
    'resnet101': ((44.81, 38.82), (48.22, 42.01)),
    'resnext50-32x4d': ((45.45, 39.47), (47.45, 41.30)),
    'resnext101-32x4d': ((46.09, 39.82), (48.86, 42.24))
}
SEG = {
    'resnet50': ((80.19, 41.94), (80.16, 42.44)),
    'resnet101': ((81.01, 44.02), (81.38, 44.43)),
    'resnext50-32x4d': ((80.36, 42.69), (80.74, 43.39)),
    'resnext101-32x4d': ((81.14, 44.07), (81.85, 45.65))
}
# -> ((base top-1, params M, GFLOPs), (Skip ...))
CLS = {
    'resnet34': ((75.53, 21.80, 3.681), (76.75, 22.72, 3.694)),
    'resnet50': ((79.01, 25.56, 4.138), (80.41, 40.15, 4.201)),
    'resnet101': ((80.36, 44.55, 7.874), (81.39, 83.36, 8.017)),
    'resnext50-32x4d': ((79.73, 25.03, 4.292), (80.67, 39.63, 4.355)),
    'resnext101-32x4d': ((80.66, 44.18, 8.063), (81.39, 82.99, 8.205)),
    'convnext-tiny': ((81.57, 28.59, 4.569), (81.58, 31.14, 4.591)),
    'convnext-small': ((83.14, 50.22, 8.863), (83.33, 56.58, 8.912)),
    'convnext-base': ((83.55, 88.59, 15.58), (83.37, 99.85, 15.65))
}
# DenseResNet paper (Takeda, MIRU 2020): top-1 error, params M
DENSE = {
    'resnet34_1xb64-cos300e_in1k-160px': (24.99, 21.80),
    'dense-resnet34-n2_1xb64-cos300e_in1k-160px': (23.80, 22.75),
    'dense-resnet34-n4_1xb64-cos300e_in1k-160px': (23.60, 23.38),
    'dense-resnet34-n6_1xb64-cos300e_in1k-160px': (23.34, 24.00),
    'dense-resnet34-n8_1xb64-cos300e_in1k-160px': (23.43, 24.60),
    'mobilenetv2-1.0_1xb64-cos300e_in1k': (27.70, 3.50),
    'dense-mobilenetv2-1.0_1xb64-cos300e_in1k': (26.60, 4.08),
    'dense-resnet110-n4_1xb64-cos300e_cifar100': (22.62, 2.23)
}
# what a run of a config does; the rest of a config is bookkeeping
RUN_KEYS = ('default_scope', 'model', 'data_preprocessor', 'train_dataloader',
            'val_dataloader', 'test_dataloader', 'val_evaluator',
            'test_evaluator', 'optim_wrapper', 'param_scheduler', 'train_cfg',
            'val_cfg', 'test_cfg', 'default_hooks', 'auto_scale_lr')


@pytest.fixture(scope='module')
def index():
    return load_model_index()


def _configs():
    """Every config of a family (not the demo, _base_ or legacy files)."""
    out = []
    for family in FAMILIES:
        for p in glob.glob(
                osp.join(ROOT, 'configs', family, '**', '*.py'),
                recursive=True):
            rel = osp.relpath(p, ROOT)
            if '_base_' in rel.split(osp.sep):
                continue
            with open(p) as f:
                if f.read().startswith('# Kept for the published path'):
                    continue
            out.append(rel)
    return sorted(out)


def test_index_lists_every_family_config(index):
    """Every config of a family is a metafile model named after it, whose
    baseline, collection, README and config files exist."""
    assert index.path == osp.realpath(osp.join(ROOT, 'model-index.yml'))
    assert index.check() == []
    assert {osp.relpath(m.metafile, index.root)
            for m in index} == {f'configs/{f}/metafile.yml'
                                for f in FAMILIES}
    configs = _configs()
    assert sorted(m.config for m in index) == configs
    assert len(index) == len(configs) == 63
    # each Skip / Dense model of the published tables names its baseline
    gated = [m for m in index if m.results and m.baseline]
    assert len(gated) == 4 + 4 + 5 + 3 + 4 + 1


def test_paper_numbers_are_the_published_tables(index):
    for bb, (base, skip) in DET.items():
        for prefix, (box, mask) in (('', base), ('skip', skip)):
            m = index.get(f'cascade-mask-rcnn_{prefix}{bb}_fpn_ms-3x_coco')
            assert m.paper_metrics() == dict(box_mAP=box, mask_mAP=mask)
            assert m.task == 'det' and m.dataset == 'COCO'
    for bb, (base, skip) in SEG.items():
        for prefix, (aacc, miou) in (('', base), ('skip', skip)):
            m = index.get(f'upernet_{prefix}{bb}_8xb2-160k_ade20k-512x512')
            assert m.paper_metrics() == dict(aAcc=aacc, mIoU=miou)
            assert m.task == 'seg' and m.dataset == 'ADE20K'
    for bb, (base, skip) in CLS.items():
        for prefix, (top1, params, flops) in (('', base), ('skip', skip)):
            m = index.get(f'{prefix}{bb}_8xb128-cos300e_in1k')
            assert m.paper_metrics() == dict(top1=top1)
            assert m.params == pytest.approx(params, abs=1e-9)
            assert m.flops == pytest.approx(flops, abs=1e-9)
            assert m.task == 'cls' and m.dataset == 'ImageNet-1k'
    for name, (err, params) in DENSE.items():
        m = index.get(name)
        assert m.paper_metrics() == dict(top1=pytest.approx(100 - err))
        assert m.params == pytest.approx(params, abs=1e-9)


def test_weights_are_the_published_files(index):
    release = ('https://github.com/takedarts/skipresnet-pretrained/'
               'releases/download/v20220420/')
    weights = {m.name: m.weights for m in index if m.weights}
    assert weights == {
        'skipresnet34_8xb128-cos300e_in1k':
        release + 'skipresnet34-b489f850.pth',
        'skipresnet50_8xb128-cos300e_in1k':
        release + 'skipresnet50-c24b1e79.pth',
        'skipresnet101_8xb128-cos300e_in1k':
        release + 'skipresnet101-c36370cc.pth',
        'skipresnext50-32x4d_8xb128-cos300e_in1k':
        release + 'skipresnext50_32x4d-ee04428b.pth',
        'skipresnext101-32x4d_8xb128-cos300e_in1k':
        release + 'skipresnext101_32x4d-5389c356.pth',
    }
    # the detection / segmentation / fine-tuning configs start from them
    for m in index:
        if m.backbone in ('SkipResNet-50', 'SkipResNeXt-101-32x4d') and \
                not m.name.endswith('_in1k'):
            cfg = Config.fromfile(m.config_path)
            stem = m.backbone.lower().replace('-32x4d', '_32x4d') \
                .replace('-', '')
            assert cfg.model.backbone.init_cfg.checkpoint.startswith(
                release + stem + '-'), m.name


def _run_part(cfg):
    out = {k: cfg.get(k) for k in RUN_KEYS}
    out['model'] = {k: v for k, v in out['model'].items() if k != 'backbone'}
    return out


def test_a_model_and_its_baseline_differ_only_in_the_backbone(index):
    pairs = [(m, index.baseline_of(m)) for m in index if m.baseline]
    assert len(pairs) == 22  # 21 of the tables, CIFAR-100 fine-tuning
    for m, base in pairs:
        assert base is not None and base.baseline is None, m.name
        assert (base.task, base.dataset) == (m.task, m.dataset), m.name
        cfg, base_cfg = (Config.fromfile(x.config_path) for x in (m, base))
        assert cfg.model.backbone.type != base_cfg.model.backbone.type
        assert _run_part(cfg) == _run_part(base_cfg), m.name
        if m.backbone.startswith('Skip'):
            assert base.backbone == m.backbone[4:]


def test_legacy_configs_are_the_top_level_files(index):
    """Runs launched with a path the README used to publish match their
    model: every top-level config is a model's Legacy Config, and inherits
    that model's config."""
    top = sorted(
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(ROOT, 'configs', '*.py')))
    legacy = {p: m for m in index for p in m.legacy_configs}
    assert set(top) <= set(legacy)
    for path, m in legacy.items():
        with open(osp.join(ROOT, path)) as f:
            text = f.read()
        base = re.sub(r"'\s+'", '', text.split('_base_ = ', 1)[1])
        assert osp.normpath(
            osp.join(osp.dirname(path),
                     base.strip().strip("[]'"))) == m.config
        name = osp.splitext(osp.basename(path))[0]
        assert index.match_config(name) is m
        assert index.match_config(f'/some/work_dir/{name}.py') is m
    assert index.match_config('cascade_rcnn_skipresnet18_demo') is None


def test_model_index_path_resolution(tmp_path, monkeypatch):
    (tmp_path / 'model-index.yml'
     ).write_text('Models:\n  - Name: only\n    Config: only.py\n')
    monkeypatch.setenv(MODEL_INDEX_ENV, str(tmp_path))
    assert model_index_path() == osp.realpath(tmp_path / 'model-index.yml')
    assert [m.name for m in load_model_index()] == ['only']
    # an explicit path wins over the environment
    assert len(load_model_index(osp.join(ROOT, 'model-index.yml'))) == 63
    monkeypatch.setenv(MODEL_INDEX_ENV, str(tmp_path / 'nowhere.yml'))
    with pytest.raises(FileNotFoundError, match='nowhere.yml'):
        load_model_index()


def _openmim_table(index_path):
    from mim.commands.search import convert2df
    from modelindex.load_model_index import load
    return convert2df(load(index_path))


def test_openmim_reads_the_same_models_and_metrics(index):
    """openmim's reader (model-index's ``load`` and ``mim search``'s
    table) finds every model with the metrics mmgate reads."""
    df = _openmim_table(index.path)
    assert sorted(df.index) == sorted(m.name for m in index)
    for m in index:
        row = df.loc[m.name]
        assert row['config'] == m.config
        for r in m.results:
            for key, value in r.metrics.items():
                col = f'{r.dataset.lower()}/{key.lower().replace(" ", "_")}'
                assert row[col] == value, (m.name, col)
        if m.baseline:
            assert row['baseline'] == m.baseline.lower()


def test_mim_search_lists_the_installed_package(index):
    """``mim search mmgate`` on the installed (editable) package: openmim
    finds mmgate/.mim/model-index.yml through the checkout's metadata
    (``python -m mim`` from the checkout) and prints every model with its
    metrics."""
    result = subprocess.run([
        sys.executable, '-m', 'mim', 'search', 'mmgate', '--display-width',
        '200'
    ],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    blocks = {}
    for block in result.stdout.split('config id: ')[1:]:
        lines = block.strip().splitlines()
        blocks[lines[0].strip()] = dict(
            line.split(None, 1) for line in lines[1:]
            if len(line.split(None, 1)) == 2 and not line.startswith('--'))
    assert sorted(blocks) == sorted(m.name for m in index)
    det = blocks['cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco']
    assert det['coco/box_ap'] == '47.72' and det['coco/mask_ap'] == '41.42'
    assert det['baseline'] == 'cascade-mask-rcnn_resnet50_fpn_ms-3x_coco'
    cls = blocks['skipresnet50_8xb128-cos300e_in1k']
    assert cls['imagenet-1k/top_1_accuracy'] == '80.41'
    assert cls['parameters'] == '40150000' and cls['flops'] == '4201000000'
    assert cls['weight'].endswith('skipresnet50-c24b1e79.pth')
    seg = blocks['upernet_skipresnext101-32x4d_8xb2-160k_ade20k-512x512']
    assert (seg['ade20k/aacc'], seg['ade20k/miou']) == ('81.85', '45.65')
