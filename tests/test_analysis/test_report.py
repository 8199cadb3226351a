"""Benchmark report and training curves on work_dirs written by MMEngine.

Two kinds of fake ``work_dirs``:

- real runs: the config's Runner (``runner_type='mmgate.Runner'``) trains a
  toy model over a real mmgate / MMDetection backbone for 2 epochs and
  tests it (``runner.test()``, as tools/test.py does), and one run crashes
  after its first epoch; the
  metric's values are set in the config, so the table's numbers are known;
- written runs: the published settings (Cascade Mask R-CNN on COCO,
  UPerNet on ADE20k, ResNet-50 vs SkipResNet-50) written with MMEngine's own
  writers (``Config.dump``, ``LocalVisBackend.add_scalars``,
  ``mmengine.fileio.dump``), to check the paper comparison and the pairing,
  which come from the metafiles (``model-index.yml``): mmgate's own, and a
  model index written by the test.
"""
import csv
import json
import math
import os
import os.path as osp
import subprocess
import time

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.fileio import dump
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS, RUNNERS
from mmengine.visualization import LocalVisBackend
from torch.utils.data import Dataset

from mmgate.analysis.curves import plot_curves
from mmgate.analysis.metafiles import MODEL_INDEX_ENV, load_model_index
from mmgate.analysis.report import build_report, format_markdown, write_report
from mmgate.analysis.runs import find_runs, load_run
from tests.helpers import REPO_ROOT, load_tool


@MODELS.register_module(force=True)
class ToyGateNet(BaseModel):
    """A backbone from the registry, global pooling and a linear layer."""

    def __init__(self, backbone, out_channels, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.backbone = MODELS.build(backbone)
        self.fc = nn.Linear(out_channels, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.fc(self.backbone(x)[-1].mean(dim=(2, 3)))
        if mode == 'loss':
            return dict(loss=(out - 1).pow(2).mean())
        if mode == 'predict':
            return [o for o in out]
        return out


@DATASETS.register_module(force=True)
class ToyImages(Dataset):

    def __init__(self, num=4):
        gen = torch.Generator().manual_seed(0)
        self.images = torch.rand(num, 3, 32, 32, generator=gen)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return dict(inputs=self.images[i])


@METRICS.register_module(force=True)
class ToyCocoMetric(BaseMetric):
    """Reports ``coco/<name>`` = value + 0.01 * (evaluations so far)."""
    default_prefix = 'coco'

    def __init__(self, values, metric=('bbox', ), **kwargs):
        super().__init__(**kwargs)
        self.values = values
        self.metric = metric
        self.calls = 0

    def process(self, data_batch, data_samples):
        self.results.append(len(data_samples))

    def compute_metrics(self, results):
        out = {k: v + 0.01 * self.calls for k, v in self.values.items()}
        self.calls += 1
        return out


@HOOKS.register_module(force=True)
class CrashAfterEpoch(Hook):
    priority = 'LOWEST'  # after the checkpoint of that epoch

    def __init__(self, epoch):
        self.epoch = epoch

    def after_train_epoch(self, runner):
        if runner.epoch + 1 >= self.epoch:
            raise RuntimeError('planned crash')


def _config(name, backbone, channels, work_dirs, max_epochs, val, test):
    return dict(
        model=dict(
            type='ToyGateNet', backbone=backbone, out_channels=channels),
        work_dir=osp.join(work_dirs, name),
        experiment_name=f'{name}_{time.time_ns()}',
        train_dataloader=dict(
            dataset=dict(type='ToyImages', num=4),
            batch_size=2,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        val_dataloader=dict(
            dataset=dict(type='ToyImages', num=2),
            batch_size=2,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        test_dataloader=dict(
            dataset=dict(type='ToyImages', num=2),
            batch_size=2,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        val_cfg=dict(),
        test_cfg=dict(),
        val_evaluator=dict(
            type='ToyCocoMetric', values=val, metric=['bbox', 'segm']),
        test_evaluator=dict(
            type='ToyCocoMetric', values=test, metric=['bbox', 'segm']),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=1)),
        visualizer=dict(
            type='Visualizer', vis_backends=[dict(type='LocalVisBackend')]),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        # tests its own checkpoints (load_from): mmgate's checkpoint reading
        runner_type='mmgate.Runner',
        log_level='WARNING')


def _next_second():
    # one launch per timestamp directory (they have 1 s resolution)
    time.sleep(1.02 - time.time() % 1)


def _launch(cfg_dict, cfg_dir, name, test=False, custom_hooks=()):
    path = osp.join(cfg_dir, f'{name}.py')
    cfg = Config(dict(cfg_dict, custom_hooks=list(custom_hooks)))
    cfg.dump(path)
    cfg = Config.fromfile(path)
    cfg.experiment_name = f'{name}_{time.time_ns()}'
    _next_second()
    if test:
        ckpt = osp.join(cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
        cfg.load_from = ckpt
        RUNNERS.build(cfg).test()
    else:
        RUNNERS.build(cfg).train()


BASE = dict(type='mmdet.ResNet', depth=18, base_channels=4, out_indices=(3, ))
SKIP = dict(
    type='mmgate.SkipResNet', depth=18, base_channels=4, out_indices=(3, ))


@pytest.fixture(scope='module')
def runner_dirs(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _make_runner_dirs(tmp_path_factory)
    finally:
        torch.set_num_threads(threads)


def _make_runner_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp('analysis')
    work_dirs, cfg_dir = str(root / 'work_dirs'), str(root / 'configs')
    os.makedirs(cfg_dir)
    runs = {
        'toy_resnet18_coco':
        (BASE, dict(bbox_mAP=0.301,
                    segm_mAP=0.252), dict(bbox_mAP=0.310, segm_mAP=0.260)),
        'toy_skipresnet18_coco': (SKIP, dict(bbox_mAP=0.321, segm_mAP=0.262),
                                  dict(bbox_mAP=0.335, segm_mAP=0.280)),
    }
    for name, (bb, val, test) in runs.items():
        cfg = _config(name, bb, 32, work_dirs, 2, val, test)
        _launch(cfg, cfg_dir, name)
        _launch(cfg, cfg_dir, name, test=True)
    # a Skip run with a 3-epoch schedule that crashed after epoch 1 ...
    crashed = _config('toy_skipresnet18_coco_3ep', SKIP, 32, work_dirs, 3,
                      dict(bbox_mAP=0.3), dict(bbox_mAP=0.3))
    with pytest.raises(RuntimeError, match='planned crash'):
        _launch(
            crashed,
            cfg_dir,
            'toy_skipresnet18_coco_3ep',
            custom_hooks=[dict(type='CrashAfterEpoch', epoch=1)])
    # ... and its base, of which only the dumped config exists
    os.makedirs(osp.join(work_dirs, 'toy_resnet18_coco_3ep'))
    Config(dict(crashed, model=dict(crashed['model'], backbone=BASE))).dump(
        osp.join(work_dirs, 'toy_resnet18_coco_3ep',
                 'toy_resnet18_coco_3ep.py'))
    return work_dirs


def test_reads_mmengine_run_layout(runner_dirs):
    run = load_run(osp.join(runner_dirs, 'toy_skipresnet18_coco'))
    assert len(run.timestamps) == 2  # the training and the test launch
    assert run.config.model.backbone.type == 'mmgate.SkipResNet'
    assert osp.basename(run.config_path) == 'toy_skipresnet18_coco.py'
    # 2 epochs x 2 iterations, logged every iteration
    assert [line['iter'] for line in run.train] == [1, 2, 3, 4]
    assert all('loss' in line and 'lr' in line for line in run.train)
    # validation by epoch: second evaluation = value + 0.01
    assert sorted(run.val) == [1, 2]
    assert run.val[2]['coco/bbox_mAP'] == pytest.approx(0.331)
    assert run.checkpoints == {'epoch': [1, 2]}
    (ts, test, where), = run.tests
    assert ts == run.timestamps[1] and where == run.work_dir
    assert run.train_timestamps == run.timestamps[:1]
    assert test['coco/bbox_mAP'] == pytest.approx(0.335)


def test_report_table_numbers(runner_dirs, tmp_path):
    report, paths = write_report(runner_dirs, str(tmp_path / 'out'))
    rows = {s.config: s for s in report.summaries}
    assert set(rows) == {
        'toy_resnet18_coco', 'toy_skipresnet18_coco',
        'toy_skipresnet18_coco_3ep', 'toy_resnet18_coco_3ep'
    }
    base, skip = rows['toy_resnet18_coco'], rows['toy_skipresnet18_coco']
    # test results win over validation; COCO fractions are reported in %
    assert base.source.startswith('test ')
    assert base.metrics == pytest.approx(dict(box_mAP=31.0, mask_mAP=26.0))
    assert skip.metrics == pytest.approx(dict(box_mAP=33.5, mask_mAP=28.0))
    assert base.status == skip.status == 'complete'
    assert (base.task, base.schedule) == ('det', '2 ep')
    assert base.dataset == 'ToyImages'
    assert base.backbone.label == 'ResNet-18 (w4)'
    assert skip.backbone.label == 'SkipResNet-18 (w4)'
    # no metafile model has these config names: no paper values
    assert base.model is None and skip.model is None
    assert base.paper == {} and skip.paper == {}
    # incomplete runs are listed, with why
    crashed = rows['toy_skipresnet18_coco_3ep']
    assert not crashed.complete
    assert crashed.status == 'no metrics; trained 1/3 epochs'
    assert rows['toy_resnet18_coco_3ep'].status.startswith('no logs')
    # pairs come from the configs' backbones and schedules
    pairs = {(p.base.config, p.skip.config): p for p in report.pairs}
    assert set(pairs) == {('toy_resnet18_coco', 'toy_skipresnet18_coco'),
                          ('toy_resnet18_coco_3ep',
                           'toy_skipresnet18_coco_3ep')}
    p = pairs[('toy_resnet18_coco', 'toy_skipresnet18_coco')]
    assert p.paired_by == 'config'
    assert p.gain('box_mAP') == pytest.approx(2.5)
    assert p.gain('mask_mAP') == pytest.approx(2.0)
    assert pairs[('toy_resnet18_coco_3ep',
                  'toy_skipresnet18_coco_3ep')].gain('box_mAP') is None

    with open(paths['csv'], newline='') as f:
        table = {r['config']: r for r in csv.DictReader(f)}
    assert float(table['toy_skipresnet18_coco']['box_mAP']) == \
        pytest.approx(33.5)
    assert table['toy_skipresnet18_coco_3ep']['box_mAP'] == ''
    assert table['toy_skipresnet18_coco_3ep']['complete'] == 'False'
    assert table['toy_skipresnet18_coco']['model'] == ''
    with open(paths['pairs_csv'], newline='') as f:
        gains = {
            (r['skip_config'], r['metric']): r['gain']
            for r in csv.DictReader(f)
        }
    assert float(gains[('toy_skipresnet18_coco', 'box_mAP')]) == \
        pytest.approx(2.5)
    md = open(paths['markdown']).read()
    assert '| toy_skipresnet18_coco | SkipResNet-18 (w4) |' in md
    assert '| 33.50 | 28.00 |' in md
    assert '`toy_skipresnet18_coco_3ep`: no metrics; trained 1/3 epochs' \
        in md
    _assert_png(paths['png'])


def test_training_curves(runner_dirs, tmp_path):
    runs = [
        osp.join(runner_dirs, n)
        for n in ('toy_resnet18_coco', 'toy_skipresnet18_coco',
                  'toy_skipresnet18_coco_3ep')
    ]
    out = str(tmp_path / 'curves.png')
    res = plot_curves(runs, out)
    assert 'toy_skipresnet18_coco: coco/bbox_mAP' in res['drawn']
    assert 'toy_skipresnet18_coco_3ep: loss' in res['drawn']
    # the crashed run has losses but no metric: reported, not dropped
    assert res['empty'] == [
        'toy_skipresnet18_coco_3ep: coco/bbox_mAP',
        'toy_skipresnet18_coco_3ep: coco/segm_mAP'
    ]
    _assert_png(out)


# ---- the published settings ---------------------------------------------


def _write_run(root,
               name,
               model,
               dataset,
               train_cfg,
               val_lines,
               test=None,
               evaluator=None,
               scope='mmdet'):
    """A work dir as MMEngine writes it, with MMEngine's writers."""
    work_dir = osp.join(root, name)
    ts = '20240101_000000'
    os.makedirs(osp.join(work_dir, ts))
    cfg = Config(
        dict(
            default_scope=scope,
            model=model,
            train_cfg=train_cfg,
            val_dataloader=dict(dataset=dict(type=dataset)),
            val_evaluator=evaluator
            or dict(type='CocoMetric', metric=['bbox', 'segm'])))
    cfg.dump(osp.join(work_dir, f'{name}.py'))
    backend = LocalVisBackend(save_dir=osp.join(work_dir, ts, 'vis_data'))
    backend._init_env()
    backend.add_config(cfg)
    for step, it in enumerate(range(0, 40, 10)):
        backend.add_scalars(
            dict(
                lr=0.02,
                loss=2. - step * 0.1,
                iter=it + 10,
                epoch=1,
                time=0.5,
                data_time=0.1),
            step=it + 10,
            file_path=f'{ts}.json')
    for step, metrics in val_lines:
        backend.add_scalars(metrics, step=step, file_path=f'{ts}.json')
    if test is not None:
        test_ts = '20240102_000000'
        os.makedirs(osp.join(work_dir, test_ts))
        dump(
            dict(test, data_time=0.1, time=0.4),
            osp.join(work_dir, test_ts, f'{test_ts}.json'))
    return work_dir


def _cascade(backbone, num_classes=80):
    return dict(
        type='CascadeRCNN',
        backbone=backbone,
        roi_head=dict(
            type='CascadeRoIHead',
            bbox_head=[dict(num_classes=num_classes)] * 3,
            mask_head=dict(type='FCNMaskHead')))


def _upernet(backbone):
    return dict(
        type='EncoderDecoder',
        backbone=backbone,
        decode_head=dict(type='UPerHead'))


# the config names of mmgate's metafile models (configs/skipresnet/)
DET_BASE = 'cascade-mask-rcnn_resnet50_fpn_ms-3x_coco'
DET_SKIP = 'cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco'
SEG_BASE = 'upernet_resnet50_8xb2-160k_ade20k-512x512'
SEG_SKIP = 'upernet_skipresnet50_8xb2-160k_ade20k-512x512'


@pytest.fixture(scope='module')
def paper_dirs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('paper'))
    ep12 = dict(type='EpochBasedTrainLoop', max_epochs=12)
    _write_run(root, DET_BASE, _cascade(dict(type='ResNet', depth=50)),
               'CocoDataset', ep12, [(12, {
                   'coco/bbox_mAP': 0.441,
                   'coco/segm_mAP': 0.383
               })])
    # launched with the path the README used to publish, which the
    # metafile lists as the model's Legacy Config
    _write_run(
        root,
        'cascade_rcnn_skipresnet50_coco',
        _cascade(dict(type='mmgate.SkipResNet', depth=50)),
        'CocoDataset',
        ep12, [(11, {
            'coco/bbox_mAP': 0.46,
            'coco/segm_mAP': 0.40
        }), (12, {
            'coco/bbox_mAP': 0.47,
            'coco/segm_mAP': 0.41
        })],
        test={
            'coco/bbox_mAP': 0.475,
            'coco/segm_mAP': 0.412
        })
    it160 = dict(type='IterBasedTrainLoop', max_iters=160000)
    seg_eval = dict(type='IoUMetric', iou_metrics=['mIoU'])
    # the Skip UPerNet stopped at 80k of 160k iterations
    for name, backbone, (step, aacc, miou) in (
        (SEG_BASE, 'ResNet', (160000, 80.0, 42.0)),
        (SEG_SKIP, 'mmgate.SkipResNet', (80000, 79.5, 41.5)),
    ):
        _write_run(
            root,
            name,
            _upernet(dict(type=backbone, depth=50)),
            'ADE20KDataset',
            it160, [(step, dict(aAcc=aacc, mIoU=miou, mAcc=52.0))],
            evaluator=seg_eval,
            scope='mmseg')
    return root


def test_report_against_paper(paper_dirs, tmp_path):
    report = build_report(paper_dirs)
    assert report.model_index == load_model_index().path
    rows = {s.config: s for s in report.summaries}
    det = rows['cascade_rcnn_skipresnet50_coco']
    assert det.model == DET_SKIP  # by its legacy config name
    assert (det.backbone.label, det.backbone.skip) == ('SkipResNet-50', True)
    assert det.metrics == pytest.approx(dict(box_mAP=47.5, mask_mAP=41.2))
    # configs/skipresnet/metafile.yml, Results of DET_SKIP
    assert det.paper == dict(box_mAP=47.72, mask_mAP=41.42)
    assert det.diff == pytest.approx(dict(box_mAP=-0.22, mask_mAP=-0.22))
    assert det.schedule == '12 ep' and det.status == 'complete'
    base = rows[DET_BASE]
    assert base.model == DET_BASE
    assert base.source == 'val @12'
    assert base.diff == pytest.approx(
        dict(box_mAP=44.1 - 44.81, mask_mAP=38.3 - 38.98))
    seg_base, seg_skip = rows[SEG_BASE], rows[SEG_SKIP]
    assert seg_base.backbone.label == 'ResNet-50'
    assert seg_skip.backbone.label == 'SkipResNet-50'
    assert seg_skip.paper == dict(aAcc=80.16, mIoU=42.44)
    assert seg_skip.status == 'trained 80000/160000 iters'
    assert seg_base.status == 'complete'

    # pairs: the Skip model's Metadata.Baseline, whatever the run names
    pairs = {p.skip.config: p for p in report.pairs}
    det_pair = pairs['cascade_rcnn_skipresnet50_coco']
    assert (det_pair.base.config, det_pair.paired_by) == (DET_BASE, 'metafile')
    assert det_pair.gain('box_mAP') == pytest.approx(47.5 - 44.1)
    assert det_pair.paper_gain('box_mAP') == pytest.approx(47.72 - 44.81)
    assert pairs[SEG_SKIP].base.config == SEG_BASE
    assert pairs[SEG_SKIP].gain('mIoU') == pytest.approx(-0.5)
    md = format_markdown(report)
    assert f'| seg | SkipResNet-50 vs ResNet-50 | {SEG_BASE} | ' \
        f'{SEG_SKIP} | mIoU | 42.00 | 41.50 | -0.50 | ' \
        '41.94 | 42.44 | +0.50 |' in md
    assert f'Model index: `{report.model_index}`' in md

    # without a model index: no paper values, pairs from the configs
    bare = build_report(paper_dirs, model_index=False)
    assert bare.model_index is None
    assert all(s.paper == {} and s.model is None for s in bare.summaries)
    assert {(p.base.config, p.skip.config, p.paired_by)
            for p in bare.pairs
            } == {(DET_BASE, 'cascade_rcnn_skipresnet50_coco', 'config'),
                  (SEG_BASE, SEG_SKIP, 'config')}


@pytest.mark.parametrize(
    'backbone, classes, why',
    [
        (dict(type='mmgate.SkipResNet',
              depth=50), 4, '4 classes, not the 80 of COCO'),
        (dict(type='mmgate.SkipResNet', depth=50, base_channels=32), 80,
         'backbone SkipResNet-50 (w32), not SkipResNet-50'),
        (dict(type='mmgate.SkipResNet',
              depth=101), 80, 'backbone SkipResNet-101, not SkipResNet-50'),
        # the deep stem is another network than the published 7x7 one
        (dict(type='mmgate.SkipResNetV1c',
              depth=50), 80, 'backbone SkipResNetV1c-50, not SkipResNet-50'),
        # so are other gates
        (dict(type='mmgate.SkipResNet', depth=50, gate_reduction=4), 80,
         f'backbone SkipResNet-50 with other parameters than {DET_SKIP}.py\'s'
         ),
    ])
def test_no_paper_values_outside_the_published_setting(tmp_path, backbone,
                                                       classes, why):
    """A run with a metafile model's config name but another class set
    (e.g. a 4-class COCO-format set) or backbone (other parameters than
    the model config's backbone) gets no paper values, and says why."""
    _write_run(
        str(tmp_path), DET_SKIP, _cascade(backbone, classes), 'CocoDataset',
        dict(type='EpochBasedTrainLoop', max_epochs=1), [(1, {
            'coco/bbox_mAP': 0.5,
            'coco/segm_mAP': 0.4
        })])
    (s, ) = build_report(str(tmp_path)).summaries
    assert s.model == DET_SKIP
    assert s.paper == {} and s.metrics['box_mAP'] == pytest.approx(50.)
    assert s.notes == [f'config of {DET_SKIP}, but {why}: no paper values']


def _write_index(root, models):
    """A model index of its own: model-index.yml importing one metafile,
    and the models' configs (``(metafile entry, backbone)`` each)."""
    os.makedirs(osp.join(root, 'configs', 'toy'))
    with open(osp.join(root, 'model-index.yml'), 'w') as f:
        f.write('Import:\n  - configs/toy/metafile.yml\n')
    for entry, backbone in models:
        Config(dict(default_scope='mmdet', model=_cascade(backbone))).dump(
            osp.join(root, entry['Config']))
    dump(
        dict(
            Collections=[dict(Name='Toy')],
            Models=[entry for entry, _ in models]),
        osp.join(root, 'configs', 'toy', 'metafile.yml'))
    return osp.join(root, 'model-index.yml')


def _toy_model(name, box, backbone_cfg, baseline=None, backbone=None):
    meta = {'Training Data': 'COCO'}
    if baseline:
        meta['Baseline'] = baseline
    if backbone:
        meta['Backbone'] = backbone
    return {
        'Name':
        name,
        'In Collection':
        'Toy',
        'Config':
        f'configs/toy/{name}.py',
        'Metadata':
        meta,
        'Results': [{
            'Task': 'Object Detection',
            'Dataset': 'COCO',
            'Metrics': {
                'box AP': box
            }
        }]
    }, backbone_cfg


def test_pairs_and_paper_values_follow_the_model_index(tmp_path, monkeypatch,
                                                       capsys):
    """The baseline a metafile names wins over the structural match (here
    it even has another depth), and the paper values are that index's; with
    no index, the run pairs with the structural match."""
    runs = str(tmp_path / 'work_dirs')
    ep = dict(type='EpochBasedTrainLoop', max_epochs=1)
    for name, backbone, box in (('toy-skip',
                                 dict(type='mmgate.SkipResNet',
                                      depth=50), 0.40),
                                ('toy-plain', dict(type='ResNet', depth=101),
                                 0.30), ('decoy_resnet50',
                                         dict(type='ResNet', depth=50), 0.35)):
        _write_run(runs, name, _cascade(backbone), 'CocoDataset', ep,
                   [(1, {
                       'coco/bbox_mAP': box,
                       'coco/segm_mAP': box
                   })])
    index = _write_index(
        str(tmp_path / 'index'), [
            _toy_model('toy-plain', 33.3, dict(type='ResNet', depth=101)),
            _toy_model(
                'toy-skip',
                44.4,
                dict(type='mmgate.SkipResNet', depth=50),
                baseline='toy-plain',
                backbone='SkipResNet-50')
        ])

    def pairs(report):
        return {(p.base.config, p.skip.config, p.paired_by)
                for p in report.pairs}

    report = build_report(runs, model_index=index)
    rows = {s.config: s for s in report.summaries}
    assert rows['toy-skip'].paper == dict(box_mAP=44.4)
    assert rows['toy-plain'].paper == dict(box_mAP=33.3)
    assert rows['decoy_resnet50'].model is None
    assert pairs(report) == {('toy-plain', 'toy-skip', 'metafile')}
    assert report.pairs[0].paper_gain('box_mAP') == pytest.approx(11.1)
    # the default index comes from $MMGATE_MODEL_INDEX when it is set
    monkeypatch.setenv(MODEL_INDEX_ENV, index)
    assert pairs(build_report(runs)) == pairs(report)
    monkeypatch.delenv(MODEL_INDEX_ENV)
    # mmgate's own index knows none of these names
    assert pairs(build_report(runs)) == {('decoy_resnet50', 'toy-skip',
                                          'config')}
    # the baseline has no run: the structural match, with a note
    os.rename(osp.join(runs, 'toy-plain'), str(tmp_path / 'elsewhere'))
    report = build_report(runs, model_index=index)
    assert pairs(report) == {('decoy_resnet50', 'toy-skip', 'config')}
    (skip, ) = [s for s in report.summaries if s.config == 'toy-skip']
    assert skip.notes == [
        'no run of its baseline toy-plain; paired by '
        'config with decoy_resnet50'
    ]
    # the command line: --model-index / --no-model-index
    tool = load_tool('analysis/benchmark_report')
    report, _ = tool.main([
        runs, '--out-dir',
        str(tmp_path / 'a'), '--model-index',
        osp.dirname(index)
    ])
    assert report.model_index == index
    assert {s.config: s.paper for s in report.summaries}['toy-skip'] == \
        dict(box_mAP=44.4)
    report, _ = tool.main(
        [runs, '--out-dir',
         str(tmp_path / 'b'), '--no-model-index'])
    assert report.model_index is None
    assert 'No model index was read.' in capsys.readouterr().out
    # a model whose config is gone: its backbone cannot be compared
    os.remove(osp.join(osp.dirname(index), 'configs', 'toy', 'toy-skip.py'))
    (skip, ) = [
        s for s in build_report(runs, model_index=index).summaries
        if s.config == 'toy-skip'
    ]
    assert skip.paper == {}
    assert skip.notes[0] == ('config of toy-skip, but its backbone is '
                             'unknown (no file configs/toy/toy-skip.py): no '
                             'paper values')


def test_bad_root(tmp_path):
    with pytest.raises(FileNotFoundError, match='not a directory'):
        find_runs(str(tmp_path / 'nowhere'))


def test_truncated_log_line_is_reported(tmp_path):
    work_dir = _write_run(
        str(tmp_path), 'cascade_rcnn_skipresnet50_coco',
        _cascade(dict(type='mmgate.SkipResNet', depth=50)), 'CocoDataset',
        dict(type='EpochBasedTrainLoop', max_epochs=12),
        [(12, {
            'coco/bbox_mAP': 0.47
        })])
    scalars = osp.join(work_dir, '20240101_000000', 'vis_data', 'scalars.json')
    with open(scalars, 'a') as f:
        f.write('{"coco/bbox_mAP": 0.4')  # a run still writing
    (s, ) = build_report(str(tmp_path)).summaries
    assert s.metrics == pytest.approx(dict(box_mAP=47.0))
    assert s.status == 'partial: no mask_mAP'
    assert any('not JSON' in n for n in s.notes)


def test_demo_layout_nested_test_runs(tmp_path):
    """tools/run_demo.sh: an untrained evaluation in <run>/untrained before
    training, the final test in <run>/test after it."""
    work_dir = _write_run(
        str(tmp_path), 'cascade_rcnn_skipresnet18_demo',
        _cascade(dict(type='mmgate.SkipResNet', depth=18,
                      base_channels=32)), 'CocoDataset',
        dict(type='EpochBasedTrainLoop', max_epochs=4), [(4, {
            'coco/bbox_mAP': 0.05,
            'coco/segm_mAP': 0.04
        })])
    for sub, ts, value in (('untrained', '20231231_235959', 0.0),
                           ('test', '20240102_000000', 0.061)):
        os.makedirs(osp.join(work_dir, sub, ts))
        Config(dict(model=dict(type='CascadeRCNN'))).dump(
            osp.join(work_dir, sub, 'cascade_rcnn_skipresnet18_demo.py'))
        dump({
            'coco/bbox_mAP': value,
            'coco/segm_mAP': value / 2
        }, osp.join(work_dir, sub, ts, f'{ts}.json'))
    runs = find_runs(str(tmp_path))
    assert [r.name for r in runs] == ['cascade_rcnn_skipresnet18_demo']
    (s, ) = build_report(str(tmp_path)).summaries
    assert s.source == 'test 20240102_000000 (test)'
    assert s.metrics == pytest.approx(dict(box_mAP=6.1, mask_mAP=3.05))
    assert s.backbone.label == 'SkipResNet-18 (w32)' and s.paper == {}
    assert s.notes == [
        'test 20231231_235959 (untrained) predates the training: not used'
    ]
    # without the final test, the untrained one is not taken for a result
    import shutil
    shutil.rmtree(osp.join(work_dir, 'test'))
    (s, ) = build_report(str(tmp_path)).summaries
    assert s.source == 'val @4'
    assert s.metrics == pytest.approx(dict(box_mAP=5.0, mask_mAP=4.0))


def test_report_and_curves_clis(paper_dirs, tmp_path, capsys):
    report, paths = load_tool('analysis/benchmark_report').main(
        [paper_dirs, '--out-dir',
         str(tmp_path / 'report')])
    out = capsys.readouterr().out
    assert '## Base vs Skip' in out and '4 runs, 2 pairs' in out
    with open(paths['pairs_csv'], newline='') as f:
        rows = list(csv.DictReader(f))
    assert {r['paired_by'] for r in rows} == {'metafile'}
    assert {
        (r['skip_config'], r['metric']): float(r['paper_gain'])
        for r in rows
    }[(SEG_SKIP, 'mIoU')] == pytest.approx(0.5)
    _assert_png(paths['png'])
    png = str(tmp_path / 'curves.png')
    res = load_tool('analysis/plot_curves').main([
        osp.join(paper_dirs, SEG_BASE),
        osp.join(paper_dirs, SEG_SKIP), '--out', png, '--labels', 'R-50',
        'Skip-R-50'
    ])
    # the default metrics of a segmentation run, each run has both
    assert sorted(res['drawn']) == sorted(f'{r}: {k}'
                                          for r in (SEG_BASE, SEG_SKIP)
                                          for k in ('loss', 'mIoU', 'aAcc'))
    _assert_png(png)


def _assert_png(path):
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert os.path.getsize(path) > 5000


def test_scalars_lines_are_json(runner_dirs):
    """What the reader relies on: one JSON object per line with a step."""
    run = load_run(osp.join(runner_dirs, 'toy_resnet18_coco'))
    path = osp.join(run.work_dir, run.timestamps[0], 'vis_data',
                    'scalars.json')
    with open(path) as f:
        lines = [json.loads(t) for t in f if t.strip()]
    assert all('step' in line for line in lines)


# ---- seeded runs ------------------------------------------------------------


def _seeded_run(root, config, backbone, seed, box, lr=0.02, test=True):
    """A run of ``config`` as tools/finetune.py --seeds lays it out: work
    dir ``<config>_seed<seed>``, the dumped ``<config>.py`` with its
    ``randomness.seed``, a training launch and (``test``) a test in the
    same directory."""
    work_dir = osp.join(root, f'{config}_seed{seed}')
    os.makedirs(osp.join(work_dir, '20240101_000000'))
    Config(
        dict(
            default_scope='mmdet',
            model=_cascade(backbone, 4),
            train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=2),
            val_dataloader=dict(dataset=dict(type='CocoDataset')),
            val_evaluator=dict(type='CocoMetric', metric=['bbox', 'segm']),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
            randomness=dict(seed=seed, deterministic=False),
            work_dir=work_dir,
            load_from=osp.join(work_dir, 'epoch_2.pth'),
            launcher='none')).dump(osp.join(work_dir, f'{config}.py'))
    backend = LocalVisBackend(
        save_dir=osp.join(work_dir, '20240101_000000', 'vis_data'))
    backend._init_env()
    backend.add_scalars(dict(lr=lr, loss=1.5, iter=10, epoch=2), step=10)
    for ckpt in ('epoch_1.pth', 'epoch_2.pth'):
        open(osp.join(work_dir, ckpt), 'w').close()
    if test:
        ts = '20240102_000000'
        os.makedirs(osp.join(work_dir, ts))
        dump({
            'coco/bbox_mAP': box,
            'coco/segm_mAP': box / 2
        }, osp.join(work_dir, ts, f'{ts}.json'))
    return work_dir


SKIP18 = dict(type='mmgate.SkipResNet', depth=18, base_channels=32)
BASE18 = dict(type='ResNet', depth=18, base_channels=32)


@pytest.fixture
def seeded_dirs(tmp_path):
    """3 seeds each of a gated config and its plain twin (box mAP known),
    a 4th gated seed without a twin, a seed of the twin that crashed
    before its test, and a gated run of another lr (another group). The
    configs are written next to the runs, as tools/finetune.py does."""
    root = str(tmp_path / 'finetune')
    for seed, (gated, base) in enumerate([(0.40, 0.39), (0.42, 0.405),
                                          (0.41, 0.40)]):
        _seeded_run(root, 'frcnn_skip', SKIP18, seed, gated)
        _seeded_run(root, 'frcnn_base', BASE18, seed, base)
    _seeded_run(root, 'frcnn_skip', SKIP18, 3, 0.50)
    _seeded_run(root, 'frcnn_base', BASE18, 4, 0.30, test=False)
    _seeded_run(root, 'frcnn_skip_lr', SKIP18, 0, 0.45, lr=0.01)
    for name in ('frcnn_skip', 'frcnn_base'):
        Config(dict(model=_cascade(SKIP18, 4))).dump(
            osp.join(root, f'{name}.py'))
    return root


def test_seeded_runs_are_grouped_and_paired_by_seed(seeded_dirs, tmp_path):
    report, paths = write_report(
        seeded_dirs, str(tmp_path / 'out'), model_index=False)
    # the folder holding the configs is not a run; every seed is
    assert sorted(s.config for s in report.summaries) == sorted(
        [f'frcnn_skip_seed{i}'
         for i in range(4)] + [f'frcnn_base_seed{i}' for i in (0, 1, 2, 4)] +
        ['frcnn_skip_lr_seed0'])
    groups = {g.label: g for g in report.groups}
    assert set(groups) == {'frcnn_skip', 'frcnn_base', 'frcnn_skip_lr'}
    skip, base = groups['frcnn_skip'], groups['frcnn_base']
    assert skip.seeds == [0, 1, 2, 3] and base.seeds == [0, 1, 2, 4]
    # mean, std, t interval over the 4 complete gated seeds (in %)
    st = skip.stats('box_mAP')
    values = [40., 42., 41., 50.]
    m = sum(values) / 4
    sd = math.sqrt(sum((v - m)**2 for v in values) / 3)
    half = 3.182446305284263 * sd / 2  # t(0.975, 3) sd / sqrt(4)
    assert (st.n, st.mean, st.std) == pytest.approx((4, m, sd))
    assert (st.low, st.high) == pytest.approx((m - half, m + half))
    # the crashed seed 4 is listed, but left out of the statistics
    assert base.stats('box_mAP').n == 3
    assert base.notes == ['seed 4 (frcnn_base_seed4): no metrics, left out']
    # another lr: a group of its own, with no plain twin to compare with
    assert groups['frcnn_skip_lr'].notes == [
        'no group of plain runs with the same config but the backbone: not '
        'compared seed by seed'
    ]

    # gated vs base over the seeds both have: 0, 1, 2
    (gp, ) = report.group_pairs
    assert (gp.gated.label, gp.base.label) == ('frcnn_skip', 'frcnn_base')
    assert gp.seeds('box_mAP') == [0, 1, 2]
    test = gp.test('box_mAP')
    assert test.diffs == pytest.approx([1., 1.5, 1.])
    assert test.t == pytest.approx(7.) and not test.includes_zero
    assert test.p == pytest.approx(1 - 7 / math.sqrt(51))
    # each seeded run is paired with the base run of its seed
    pairs = {
        p.skip.config: p.base.config
        for p in report.pairs if p.skip.config.startswith('frcnn_skip_seed')
    }
    assert pairs == {
        'frcnn_skip_seed0': 'frcnn_base_seed0',
        'frcnn_skip_seed1': 'frcnn_base_seed1',
        'frcnn_skip_seed2': 'frcnn_base_seed2',
        'frcnn_skip_seed3': 'frcnn_base_seed0'
    }

    md = open(paths['markdown']).read()
    assert '## Seeded runs' in md and '## Gated vs base, paired by seed' \
        in md
    assert 'paired t-test (two-sided) on the per-seed differences gated - ' \
        'base' in md
    assert (f'| frcnn_skip | SkipResNet-18 (w32) | 0, 1, 2, 3 | {m:.2f} +- '
            f'{sd:.2f} (n=4) | [{m - half:.2f}, {m + half:.2f}] |') in md
    assert ('| det | frcnn_skip vs frcnn_base | box mAP | 0, 1, 2 | 41.00 | '
            '39.83 | +1.17 | 0.29 | [0.45, 1.88] | 0.020 | gated better: '
            'the interval excludes 0 |') in md
    # mask mAP = box / 2: differences 0.5, 0.75, 0.5, same t
    assert '| mask mAP | 0, 1, 2 | 20.50 | 19.92 | +0.58 |' in md
    assert '- `frcnn_base`: seed 4 (frcnn_base_seed4): no metrics, left ' \
        'out' in md

    with open(paths['groups_csv'], newline='') as f:
        rows = {(r['config'], r['metric']): r for r in csv.DictReader(f)}
    row = rows[('frcnn_skip', 'box_mAP')]
    assert (row['n'], row['seeds'], row['gated']) == ('4', '0 1 2 3', 'True')
    assert float(row['ci_low']) == pytest.approx(m - half, abs=1e-4)
    assert rows[('frcnn_skip_lr', 'box_mAP')]['std'] == ''
    with open(paths['group_pairs_csv'], newline='') as f:
        (row, _) = list(csv.DictReader(f))
    assert (row['metric'], row['n'], row['seeds'], row['includes_zero']) == \
        ('box_mAP', '3', '0 1 2', 'False')
    assert float(row['p']) == pytest.approx(1 - 7 / math.sqrt(51), abs=1e-4)


def test_seed_interval_including_zero_is_said_plainly(tmp_path):
    root = str(tmp_path)
    for seed, (gated, base) in enumerate([(0.50, 0.48), (0.48, 0.49)]):
        _seeded_run(root, 'a_skip', SKIP18, seed, gated)
        _seeded_run(root, 'a_base', BASE18, seed, base)
    _seeded_run(root, 'b_skip', SKIP18, 0, 0.5, lr=0.1)
    _seeded_run(root, 'b_base', BASE18, 0, 0.4, lr=0.1)
    report = build_report(root, model_index=False)
    tests = {gp.gated.label: gp.test('box_mAP') for gp in report.group_pairs}
    assert tests['a_skip'].includes_zero
    assert tests['a_skip'].mean == pytest.approx(0.5)
    assert tests['b_skip'].n == 1 and tests['b_skip'].low is None
    md = format_markdown(report)
    assert '| +0.50 | 2.12 | [-18.56, 19.56] | 0.795 | the interval ' \
        'includes 0: no difference shown with 2 seeds |' in md
    assert '| +10.00 | - | - | - | one pair: no interval (train with ' \
        '--seeds 2 or more) |' in md
    out = load_tool('analysis/benchmark_report').main(
        [root, '--out-dir',
         str(tmp_path / 'r'), '--no-model-index'])
    assert len(out[0].groups) == 4


def test_tools_write_under_work_dirs_by_default():
    """The analysis tools write their reports and figures to work_dirs/,
    which git ignores, never into the source tree."""
    report = load_tool('analysis/benchmark_report').parse_args([])
    curves = load_tool('analysis/plot_curves').parse_args(['work_dirs/a'])
    gates = load_tool('analysis/gate_analysis').parse_args(
        ['cfg.py', '--random', '1'])
    outputs = [
        osp.join(report.out_dir, 'report.md'), curves.out,
        osp.join(gates.out_dir, 'gates.png')
    ]
    assert all(p.startswith('work_dirs/') for p in outputs)
    if not osp.isdir(osp.join(REPO_ROOT, '.git')):
        pytest.skip('not a git checkout')
    ignored = subprocess.run(['git', 'check-ignore', *outputs],
                             cwd=REPO_ROOT,
                             capture_output=True,
                             text=True)
    assert ignored.stdout.split() == outputs
