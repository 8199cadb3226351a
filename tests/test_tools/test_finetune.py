"""tools/finetune.py (mmgate.finetune): dataset folder -> config -> trained,
tested model -> report; the recipe the annotations fit, the CPU scale in
every recipe, plain-ResNet weights for a gated backbone, plain twins from
the metafiles, seeded base-vs-gated comparisons, checks across splits.

The end-to-end runs train SkipResNet-18 (the CPU demo recipes) for one pass
over tiny sets in the layouts users bring (``tests/test_datasets/
layouts.py``: COCO box-only, VOC, YOLO, palette PNG, ImageFolder without
val) and the tiny demo COCO set (masks), and cls with 2 seeds x base /
gated.
"""
import ast
import csv
import importlib
import itertools
import json
import logging
import os
import os.path as osp
import re
import shutil

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmgate import finetune
from mmgate.datasets import DEMO_CLASSES, DataError, check_splits
from mmgate.datasets import read_dataset as _read_dataset
from mmgate.finetune import (RECIPES, load_config, plain_twin, resolve_recipe,
                             run, scale_schedule, train_command, write_config)
from tests.helpers import REPO_ROOT, run_tool
from tests.test_datasets import layouts as L

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
# ADE20k ids of the demo classes (mmgate.datasets.demo_data.ADE20K_IDS)
ADE_ORDER = ('wall', 'person', 'box', 'signboard', 'ball')
TREE = L.CLASSES[:1]
_LOGGERS = itertools.count()


def read_dataset(root, task):
    return _read_dataset(str(root), task)


@pytest.fixture
def data(demo_copy):
    """A private copy of the tiny demo sets (conftest's ``demo_copy``)."""
    return demo_copy


@pytest.fixture(scope='module')
def tiles():
    """4 train / 2 val tiles of 397x211, one class, grayscale."""
    return dict(
        train=L.make_samples(4, gray=True, seed=0),
        val=L.make_samples(2, gray=True, seed=1, prefix='val'))


def _imagefolder(src, dst):
    """The tiny ImageNet-layout set as ImageFolder: train/<class>/,
    val/<class>/."""
    shutil.copytree(src / 'train', dst / 'train')
    for line in (src / 'meta' / 'val.txt').read_text().split('\n'):
        if line:
            name, label = line.split()
            folder = dst / 'val' / DEMO_CLASSES[int(label)]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / 'val' / name, folder / name)
    return dst


def _seg_folders(src, dst):
    """The tiny ADE20k-layout set as img_dir/ + ann_dir/ + classes.txt,
    label maps of class indices (ADE20k's unlabelled 0 -> 255)."""
    ids = {1: 0, 13: 1, 120: 2, 42: 3, 44: 4}  # wall person ball box sign
    lut = np.full(256, 255, np.uint8)
    for ade, idx in ids.items():
        lut[ade] = idx
    for split, ade in (('train', 'training'), ('val', 'validation')):
        shutil.copytree(src / 'images' / ade, dst / 'img_dir' / split)
        (dst / 'ann_dir' / split).mkdir(parents=True)
        for f in sorted((src / 'annotations' / ade).iterdir()):
            label = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(dst / 'ann_dir' / split / f.name), lut[label])
    (dst / 'classes.txt').write_text(
        'wall 120 120 120\nperson 220 20 60\nball 0 0 255\nbox 255 0 0\n'
        'signboard 0 255 0\n')
    return dst


def _coco(data, split):
    path = data / 'coco' / 'annotations' / f'instances_{split}2017.json'
    return path, json.loads(path.read_text())


def test_reads_classes_and_splits_of_the_demo_layouts(data):
    det = read_dataset(data / 'coco', 'det')
    assert (det.layout, det.classes) == ('coco', DEMO_CLASSES)
    assert det.paths == dict(
        train_ann='annotations/instances_train2017.json',
        train_img='train2017',
        val_ann='annotations/instances_val2017.json',
        val_img='val2017')
    assert det.masks.kind == 'all'
    _, train = _coco(data, 'train')
    names = {c['id']: c['name'] for c in train['categories']}
    counts = {c: 0 for c in DEMO_CLASSES}
    for ann in train['annotations']:
        counts[names[ann['category_id']]] += 1
    assert det.train.instances == counts
    assert det.num_train == len({a['image_id'] for a in train['annotations']})
    assert len(det.train.images) == 4 and len(det.val.images) == 2

    seg = read_dataset(data / 'ade', 'seg')
    assert seg.layout == 'ade20k'
    # the ADE20k classes the label maps hold, in ADE20k's order
    present = set()
    for f in (data / 'ade' / 'annotations').rglob('*.png'):
        present |= set(np.unique(cv2.imread(str(f), -1)).tolist())
    ade_ids = dict(wall=1, person=13, box=42, signboard=44, ball=120)
    assert seg.classes == tuple(c for c in ADE_ORDER if ade_ids[c] in present)

    # ImageNet layout: label order of meta/train.txt, not alphabetical
    cls = read_dataset(data / 'imagenet', 'cls')
    assert (cls.layout, cls.classes) == ('imagenet', DEMO_CLASSES)
    assert cls.train.instances == {c: 8 for c in DEMO_CLASSES}
    assert cls.num_train == 32 and len(cls.val.images) == 8

    # ImageFolder: the sorted sub-folders, as MMPretrain reads them
    folder = read_dataset(_imagefolder(data / 'imagenet', data / 'if'), 'cls')
    assert folder.layout == 'imagefolder'
    assert folder.classes == ('ball', 'box', 'person', 'signboard')
    assert folder.val.instances == {c: 2 for c in folder.classes}

    seg = read_dataset(_seg_folders(data / 'ade', data / 'seg'), 'seg')
    assert seg.layout == 'seg-index'
    assert seg.classes == ('wall', 'person', 'ball', 'box', 'signboard')
    assert seg.palette[1] == [220, 20, 60] and seg.img_suffix == '.jpg'


def _walk_num_classes(node, path='model'):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == 'num_classes':
                yield path, v
            else:
                yield from _walk_num_classes(v, f'{path}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk_num_classes(v, f'{path}.{i}')


def _leaf(dataset):
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset


@pytest.mark.parametrize('task,recipe,backbone,folder,heads', [
    ('det', 'cascade-mask-rcnn', 'skipresnet50', 'coco', 4),
    ('det', 'cascade-rcnn', 'skipresnet101', 'coco', 3),
    ('det', 'mask-rcnn', 'skipresnext50-32x4d', 'coco', 2),
    ('det', 'retinanet', 'skipresnet101', 'coco', 1),
    ('seg', 'upernet', 'skipresnet50', 'ade', 2),
    ('cls', 'linear', 'skipresnet50', 'imagenet', 1),
])
def test_written_configs_fit_the_data(data, tmp_path, capsys, task, recipe,
                                      backbone, folder, heads):
    """Each recipe's config: every head's num_classes, the classes and data
    of every split, auto_scale_lr, mmgate's Runner; its plain twin (the
    metafile's Baseline) differs only in the backbone."""
    work_dir = tmp_path / 'ft'
    out = run([
        str(data / folder), '--task', task, '--recipe', recipe, '--backbone',
        backbone, '--compare', 'base', '--no-train', '--work-dir',
        str(work_dir)
    ])
    gated_path, base_path = out['configs']
    assert osp.basename(gated_path) == f'{recipe}_{backbone}_{folder}.py'
    assert f'config: {gated_path}' in capsys.readouterr().out
    spec = read_dataset(data / folder, task)
    gated, base = Config.fromfile(gated_path), Config.fromfile(base_path)
    found = dict(_walk_num_classes(gated.model))
    # cascade: 3 box heads (+ mask head); mask-rcnn: box + mask head;
    # upernet: decode + auxiliary head
    assert found and set(found.values()) <= {len(spec.classes), 1}
    assert sum(v == len(spec.classes) for v in found.values()) == heads
    for split in ('train', 'val', 'test'):
        ds = _leaf(gated[f'{split}_dataloader'].dataset)
        assert tuple(ds.metainfo.classes) == spec.classes
        assert ds.data_root == str(data / folder) + '/'
    assert gated.auto_scale_lr.enable
    assert gated.runner_type == 'mmgate.Runner'
    assert gated.model.backbone.type.startswith('mmgate.Skip')
    assert not base.model.backbone.type.startswith('mmgate.')
    assert base.model.backbone.depth == gated.model.backbone.depth
    g, b = gated.to_dict(), base.to_dict()
    assert g['model'].pop('backbone') != b['model'].pop('backbone')
    assert g == b
    if task == 'det':
        assert gated.val_evaluator.ann_file == str(data / folder /
                                                   spec.paths['val_ann'])
        masks = RECIPES[recipe].masks
        assert gated.val_evaluator.metric == (['bbox', 'segm']
                                              if masks else 'bbox')
        loads = [
            t for p in (gated.train_pipeline, gated.test_pipeline) for t in p
            if t.type == 'LoadAnnotations'
        ]
        assert [t.with_mask for t in loads] == [masks, masks]
    if recipe == 'cascade-rcnn':  # the mask head is gone
        assert gated.model.roi_head.mask_head is None
        assert gated.model.roi_head.mask_roi_extractor is None
    if recipe == 'retinanet':  # the stock recipe gets mmgate's backbone
        src = load_config(
            resolve_recipe('det', 'cascade-mask-rcnn', backbone).config)
        assert gated.model.backbone.init_cfg == src.model.backbone.init_cfg
        assert gated.model.neck.in_channels == [256, 512, 1024, 2048]
    if task == 'cls':  # CIFAR recipe: images from files, 4 classes
        assert gated.train_dataloader.dataset.pipeline[0].type == \
            'LoadImageFromFile'
        assert gated.data_preprocessor.to_rgb
        assert gated.data_preprocessor.num_classes == len(spec.classes)
        assert gated.val_evaluator.topk == (1, )


@pytest.mark.parametrize(
    'recipe', ['cascade-rcnn', 'faster-rcnn', 'retinanet', 'mask-rcnn'])
def test_cpu_backbone_takes_the_demo_scale_in_every_recipe(
        data, tmp_path, recipe):
    """skipresnet18: the demo's 160x120 images, batch 2 and schedule, also
    in MMDetection's stock recipes (1333x800, batch 16 there); the header
    says the scale."""
    (path, ) = run([
        str(data / 'coco'), '--task', 'det', '--recipe', recipe, '--backbone',
        'skipresnet18', '--no-train', '--work-dir',
        str(tmp_path)
    ])['configs']
    cfg = Config.fromfile(path)
    demo = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'demo',
                 'cascade_rcnn_skipresnet18_demo.py'))
    resizes = [[t for t in p if 'Resize' in t.type]
               for p in (cfg.train_pipeline, cfg.test_pipeline)]
    assert resizes == [[t for t in p if 'Resize' in t.type]
                       for p in (demo.train_pipeline, demo.test_pipeline)]
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 2
    # the demo schedule: 6 passes, lr steps at 360 / 480 and 440 / 480
    assert cfg.max_epochs == 6 and cfg.iters_per_epoch == 2
    assert cfg.param_scheduler[-1].milestones == [9, 11]
    assert cfg.model.backbone.base_channels == 32
    header = ' '.join(line[2:] for line in open(path).read().splitlines()
                      if line.startswith('# '))
    assert 'Image scale: train RandomResize scale=[(160, 96), (160, 120)]; ' \
        'test Resize scale=(160, 120) (the CPU demo recipe\'s, ' in header


def test_recipe_follows_the_annotations(tmp_path, tiles, capsys):
    """Box-only data: cascade-rcnn by default, with a line saying so; a
    mask recipe is one line naming the annotation file and the recipes that
    fit; mixed data: how many images have masks and what that means."""
    L.write_coco(str(tmp_path / 'box'), tiles, TREE)
    out = run([
        str(tmp_path / 'box'), '--task', 'det', '--backbone', 'skipresnet18',
        '--no-train', '--work-dir',
        str(tmp_path / 'w')
    ])
    assert osp.basename(out['configs'][0]) == \
        'cascade-rcnn_skipresnet18_box.py'
    n = sum(len(s.boxes) for s in tiles['train'] + tiles['val'])
    assert ('recipe: cascade-rcnn, the box-only twin of cascade-mask-rcnn '
            f'(no mask head): boxes only: none of the {n} instances has a '
            'mask') in capsys.readouterr().out
    for recipe in ('cascade-mask-rcnn', 'mask-rcnn'):
        with pytest.raises(SystemExit):
            run([
                str(tmp_path / 'box'), '--task', 'det', '--recipe', recipe,
                '--no-train', '--work-dir',
                str(tmp_path / 'w2')
            ])
        ann = tmp_path / 'box' / 'annotations' / 'instances_train.json'
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f'finetune.py: error: --recipe {recipe} trains masks, but {ann} '
            f'holds boxes only: none of the {n} instances has a mask; '
            'recipes that fit: cascade-rcnn, faster-rcnn, retinanet')
    assert not (tmp_path / 'w2').exists()

    L.write_coco(str(tmp_path / 'mixed'), tiles, TREE, masks='mixed')
    run([
        str(tmp_path / 'mixed'), '--task', 'det', '--backbone', 'skipresnet18',
        '--no-train', '--work-dir',
        str(tmp_path / 'w3')
    ])
    with_masks = sum(
        len(s.boxes) for i, s in enumerate(tiles['train'])
        if i % 2 == 0) + len(tiles['val'][0].boxes)
    assert (f'(no mask head): 3 of 6 images have masks for all their '
            f'instances ({with_masks} of {n} instances have one): a mask '
            "head needs a mask on every instance (MMDetection's "
            'LoadAnnotations fails on one without), so the masks are not '
            f'used; give the other {n - with_masks} instances masks to '
            'train them') in capsys.readouterr().out


def _init_from(config):
    """The backbone of a written config, initialised from its init_cfg;
    the loader's log lines."""
    from mmengine.logging import MMLogger
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(config)
    init_default_scope('mmdet')
    backbone = MODELS.build(cfg.model.backbone)
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    # a new instance is the current one, which the loader logs to
    logger = MMLogger.get_instance(f'test_finetune_weights_{next(_LOGGERS)}')
    logger.addHandler(handler)
    try:
        backbone.init_weights()
    finally:
        logger.removeHandler(handler)
    return cfg, backbone, records


def _trunk_loaded(backbone, plain_state, path, records):
    """Every trunk tensor from the file, the gates not, and the log line
    that counts them."""
    state = backbone.state_dict()
    for k, v in plain_state.items():
        assert torch.equal(state[k], v), k
    assert any('.gate.' in k for k in state)
    n = len(plain_state)
    assert any(f'loaded {n} of {len(state)} tensors from {path}' in r
               for r in records), records


def test_gated_backbone_takes_a_plain_resnet_file(data, tmp_path, capsys):
    """--weights: a plain ResNet-18 file (MMDetection / torchvision keys)
    gives the trunk of SkipResNet-18, strictly; the gates keep their
    initialisation, and the log says how many tensors came from it."""
    from mmdet.models.backbones import ResNet
    plain = ResNet(depth=18, base_channels=32).state_dict()
    path = str(tmp_path / 'resnet18_w32.pth')
    torch.save({'state_dict': {
        f'backbone.{k}': v
        for k, v in plain.items()
    }}, path)
    (config, ) = run([
        str(data / 'coco'), '--task', 'det', '--backbone', 'skipresnet18',
        '--weights', path, '--no-train', '--work-dir',
        str(tmp_path / 'w')
    ])['configs']
    assert (
        f'weights: {path} holds {len(plain)} backbone tensors and no '
        'gate: a plain ResNet file; the trunk loads strictly and the '
        'gates start new (init_cfg new_gates=True)') in capsys.readouterr().out
    cfg, backbone, records = _init_from(config)
    assert cfg.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint=path, new_gates=True)
    _trunk_loaded(backbone, plain, path, records)


def test_plain_twins_come_from_the_metafiles(tmp_path, monkeypatch):
    assert plain_twin('det', 'cascade-mask-rcnn', 'skipresnext50-32x4d') == \
        'resnext50-32x4d'
    assert plain_twin('seg', 'upernet', 'skipresnet101') == 'resnet101'
    assert plain_twin('det', 'retinanet', 'skipresnet18') == 'resnet18'
    with pytest.raises(
            ValueError,
            match='resnet50 .* has no '
            'Metadata.Baseline in its metafile'):
        plain_twin('cls', 'linear', 'resnet50')
    # another Baseline in the metafile: another twin
    index = tmp_path / 'model-index.yml'
    meta = open(osp.join(REPO_ROOT, 'configs', 'skipresnet',
                         'metafile.yml')).read()
    meta = meta.replace(
        '      Baseline: upernet_resnet50_8xb2-160k_ade20k-'
        '512x512', '      Baseline: upernet_resnet101_8xb2-'
        '160k_ade20k-512x512')
    (tmp_path / 'metafile.yml').write_text(
        meta.replace('configs/',
                     osp.join(REPO_ROOT, 'configs') + '/'))
    index.write_text('Import:\n  - metafile.yml\n')
    from mmgate.finetune import recipes
    monkeypatch.setenv('MMGATE_MODEL_INDEX', str(index))
    recipes._family.cache_clear()
    try:
        assert plain_twin('seg', 'upernet', 'skipresnet50') == 'resnet101'
    finally:
        monkeypatch.delenv('MMGATE_MODEL_INDEX')
        recipes._family.cache_clear()


def test_schedule_keeps_the_recipes_passes_over_the_data():
    det = resolve_recipe('det', 'cascade-mask-rcnn', 'skipresnet50')
    cfg = load_config(det.config)
    s = scale_schedule('det', cfg, det, 200)
    # ms-3x: RepeatDataset x3 x 12 epochs = 36 passes; 2 images a GPU
    assert (s.epochs, s.recipe_epochs, s.batch, s.iters_per_epoch) == (36, 36.,
                                                                       2, 100)
    assert (s.iters, s.warmup, s.milestones) == (3600, 500, [(9, 12),
                                                             (11, 12)])
    s = scale_schedule('det', cfg, det, 200, gpus=8, epochs=12)
    assert (s.epochs, s.iters_per_epoch, s.iters, s.warmup) == (12, 13, 156,
                                                                39)
    seg = resolve_recipe('seg', 'upernet', 'skipresnet50')
    s = scale_schedule('seg', load_config(seg.config), seg, 200)
    # 160k iterations x 16 images over ADE20k's 20,210: 126.7 passes
    assert s.recipe_epochs == pytest.approx(160000 * 16 / 20210)
    assert (s.epochs, s.by_epoch, s.length) == (127, False, 127 * 100)
    cls = resolve_recipe('cls', 'linear', 'skipresnet50')
    s = scale_schedule('cls', load_config(cls.config), cls, 200, epochs=3)
    assert (s.epochs, s.iters_per_epoch, s.warmup) == (3, 13, 0)
    with pytest.raises(ValueError, match='epochs must be positive'):
        scale_schedule('cls', load_config(cls.config), cls, 200, epochs=0)


def test_recipe_and_backbone_choices_are_checked():
    with pytest.raises(
            ValueError,
            match=r'no linear recipe for '
            r'skipresnet101 .*linear has recipes for '
            r'skipresnet18, resnet18, resnet50, skipresnet50'):
        resolve_recipe('cls', 'linear', 'skipresnet101')
    with pytest.raises(ValueError, match='seg has no recipe retinanet'):
        resolve_recipe('seg', 'retinanet', 'skipresnet50')
    src = resolve_recipe('det', 'cascade-mask-rcnn', 'resnet18')
    assert src.cpu and src.backbone['type'] == 'ResNet'
    assert src.backbone['base_channels'] == 32


def test_config_writing_is_atomic_and_keeps_edits(tmp_path):
    path = str(tmp_path / 'a' / 'x.py')
    assert write_config(path, 'x = 1\n')
    assert not write_config(path, 'x = 1\n')  # unchanged
    with open(path, 'a') as f:
        f.write('y = 2\n')  # the user's edit
    with pytest.raises(
            FileExistsError,
            match=r'x\.py exists and differs '
            r'.*pass --overwrite to replace it'):
        write_config(path, 'x = 1\n')
    assert write_config(path, 'x = 3\n', overwrite=True)
    assert open(path).read() == 'x = 3\n'
    assert os.listdir(tmp_path / 'a') == ['x.py']  # no temporary left


def test_command_lines_and_console_script():
    cmd = train_command(
        'c.py', 'w', gpus=2, seed=3, resume=True, cfg_options=['a=1'])
    assert cmd == [
        'bash',
        osp.join(REPO_ROOT, 'tools',
                 'dist_train.sh'), 'c.py', '2', '--work-dir', 'w', '--resume',
        '--cfg-options', 'randomness.seed=3', 'a=1'
    ]
    cmd = finetune.test_command('c.py', 'w/epoch_1.pth', 'w', gpus=2, seed=0)
    assert cmd[1:] == [
        osp.join(REPO_ROOT, 'tools', 'dist_test.sh'), 'c.py', 'w/epoch_1.pth',
        '2', '--work-dir', 'w', '--cfg-options', 'randomness.seed=0'
    ]
    # setup.py installs mmgate-finetune as mmgate.finetune:main
    tree = ast.parse(open(osp.join(REPO_ROOT, 'setup.py')).read())
    scripts = [
        ast.literal_eval(kw.value)['console_scripts']
        for node in ast.walk(tree) if isinstance(node, ast.Call)
        for kw in node.keywords if kw.arg == 'entry_points'
    ]
    entry = [
        e for group in scripts for e in group
        if e.startswith('mmgate-finetune')
    ]
    name, target = [p.strip() for p in entry[0].split('=')]
    module, func = target.split(':')
    assert name == 'mmgate-finetune'
    assert getattr(importlib.import_module(module), func) is finetune.main


# ---- bad data ---------------------------------------------------------------


def test_class_names_differ_between_train_and_val(data, tmp_path, capsys):
    path, val = _coco(data, 'val')
    val['categories'][2]['name'] = 'crate'  # box
    path.write_text(json.dumps(val))
    msg = L.run_fails([
        str(data / 'coco'), '--task', 'det', '--work-dir',
        str(tmp_path / 'w'), '--no-train'
    ], capsys)
    assert msg == (
        f'class names differ between train ({data}/coco/annotations/'
        f'instances_train2017.json) and val ({path}): only in train: box; '
        'only in val: crate')
    assert not (tmp_path / 'w').exists()  # no config written

    # the same names in another order would swap the labels
    val['categories'][2]['name'] = 'box'
    val['categories'][0]['name'], val['categories'][1]['name'] = 'ball', \
        'person'
    path.write_text(json.dumps(val))
    spec = read_dataset(data / 'coco', 'det')
    with pytest.raises(
            DataError,
            match='same names in another order: '
            'train person, ball, box, signboard / val ball, '
            'person, box, signboard'):
        check_splits(spec.train, spec.val)

    # ImageFolder: a class folder only val has
    root = _imagefolder(data / 'imagenet', data / 'if')
    (root / 'val' / 'crate').mkdir()
    shutil.copy(
        next((root / 'val' / 'box').iterdir()),
        root / 'val' / 'crate' / 'c.JPEG')
    msg = L.run_fails([
        str(root), '--task', 'cls', '--no-train', '--work-dir',
        str(tmp_path / 'w')
    ], capsys)
    assert msg == (f'class names differ between train ({root}/train) and '
                   f'val ({root}/val): only in val: crate')

    # ImageNet layout: a val label no train image has
    meta = data / 'imagenet' / 'meta' / 'val.txt'
    meta.write_text(meta.read_text() + 'ILSVRC2012_val_00000001.JPEG 7\n')
    msg = L.run_fails([
        str(data / 'imagenet'), '--task', 'cls', '--no-train', '--work-dir',
        str(tmp_path / 'w')
    ], capsys)
    assert msg.startswith('class names differ between train (') and \
        msg.endswith('val has label 7 (ILSVRC2012_val_00000001.JPEG), '
                     'which no train image has')


def test_empty_split(data, tmp_path, capsys):
    path, val = _coco(data, 'val')
    path.write_text(json.dumps(dict(val, images=[], annotations=[])))
    msg = L.run_fails([
        str(data / 'coco'), '--task', 'det', '--no-train', '--work-dir',
        str(tmp_path / 'w')
    ], capsys)
    assert msg == f'the val split ({path}) is empty: it has no images'

    path, train = _coco(data, 'train')
    path.write_text(json.dumps(dict(train, annotations=[])))
    with pytest.raises(
            DataError,
            match=r'the train split \(.*instances_'
            r'train2017\.json\) is empty: its 4 images have no '
            'annotated instance'):
        spec = read_dataset(data / 'coco', 'det')
        check_splits(spec.train, spec.val)

    root = _imagefolder(data / 'imagenet', data / 'if')
    for f in (root / 'val').rglob('*.JPEG'):
        f.unlink()
    msg = L.run_fails([
        str(root), '--task', 'cls', '--no-train', '--work-dir',
        str(tmp_path / 'w')
    ], capsys)
    assert msg == f'the val split ({root}/val) is empty: it has no images'


def test_class_without_train_instance_is_a_named_warning(
        data, tmp_path, capsys):
    path, train = _coco(data, 'train')
    spec = read_dataset(data / 'coco', 'det')
    absent = [c for c, n in spec.train.instances.items() if not n]
    # remove the class with the most train instances
    name = max(spec.train.instances, key=spec.train.instances.get)
    cat = next(c['id'] for c in train['categories'] if c['name'] == name)
    train['annotations'] = [
        a for a in train['annotations'] if a['category_id'] != cat
    ]
    path.write_text(json.dumps(train))
    _, val = _coco(data, 'val')
    in_val = {c: 0 for c in DEMO_CLASSES}
    for a in val['annotations']:
        in_val[DEMO_CLASSES[a['category_id'] - 1]] += 1

    def warning(c):
        return (f'class "{c}" has no instance in train ({path})' +
                (f' but {in_val[c]} in val' if in_val[c] else '') +
                ': the model cannot learn it')

    spec = read_dataset(data / 'coco', 'det')
    warnings = check_splits(spec.train, spec.val)
    assert warnings == [
        warning(c) for c in DEMO_CLASSES if c in absent or c == name
    ]
    expected = warning(name)
    # the command warns and goes on
    out = run([
        str(data / 'coco'), '--task', 'det', '--backbone', 'skipresnet18',
        '--no-train', '--work-dir',
        str(tmp_path / 'w')
    ])
    assert osp.isfile(out['configs'][0])
    assert f'finetune.py: warning: {expected}' in capsys.readouterr().err


def test_images_of_very_different_sizes_are_a_warning(data, tmp_path, capsys):
    big = data / 'imagenet' / 'train' / 'box' / 'box_00002.JPEG'
    small = data / 'imagenet' / 'val' / 'ILSVRC2012_val_00000001.JPEG'
    cv2.imwrite(str(big), np.zeros((300, 400, 3), np.uint8))
    cv2.imwrite(str(small), np.zeros((30, 40, 3), np.uint8))
    spec = read_dataset(data / 'imagenet', 'cls')
    (warning, ) = check_splits(spec.train, spec.val)
    assert warning.startswith(
        f'images of very different sizes: 40x30 ({small}, val) to 400x300 '
        f'({big}, train), longer sides 10.0x apart (more than 4x); the '
        'recipe resizes every image to one scale')
    assert check_splits(spec.train, spec.val, max_size_ratio=10) == []
    run([
        str(data / 'imagenet'), '--task', 'cls', '--backbone', 'skipresnet18',
        '--no-train', '--work-dir',
        str(tmp_path / 'w')
    ])
    assert f'finetune.py: warning: {warning}' in capsys.readouterr().err


@pytest.mark.parametrize('damage,message', [
    ('truncate_json', r'annotation file {ann} is not valid JSON'),
    ('corrupt_image', r'{img} \(CocoDataset, train_dataloader\.dataset\.'
     r'dataset\) is not a readable image'),
    ('missing_image', r'{img}, listed by .*instances_train2017\.json '
     r'\(CocoDataset, .*\), does not exist'),
])
def test_existing_data_checks_run_first(data, tmp_path, capsys, damage,
                                        message):
    """Broken annotations, corrupt and missing images: the checks of
    tools/train.py, as one line from finetune.py before any run."""
    ann = data / 'coco' / 'annotations' / 'instances_train2017.json'
    img = data / 'coco' / 'train2017' / '000000000002.jpg'
    if damage == 'truncate_json':
        ann.write_text(ann.read_text()[:100])
    elif damage == 'corrupt_image':
        img.write_bytes(img.read_bytes()[:20])
    else:
        img.unlink()
    msg = L.run_fails([
        str(data / 'coco'), '--task', 'det', '--backbone', 'skipresnet18',
        '--work-dir',
        str(tmp_path / 'w')
    ], capsys)
    assert re.match(
        message.format(ann=re.escape(str(ann)), img=re.escape(str(img))),
        msg), msg
    assert not (tmp_path / 'w').exists()  # nothing written


# ---- end to end -------------------------------------------------------------


def _tree_files(root):
    return {
        osp.join(d, f): os.path.getmtime(osp.join(d, f))
        for d, _, files in os.walk(root)
        for f in files
    }


def _check_run(work_dir, run_name, metric, config=None):
    """The run's dumped config, checkpoint, test result and report row
    (``config``: the config's name when the run's differs)."""
    config = config or run_name
    run_dir = work_dir / run_name
    cfg = Config.fromfile(str(run_dir / f'{config}.py'))
    assert cfg.runner_type == 'mmgate.Runner'
    checkpoint = (run_dir / 'last_checkpoint').read_text().strip()
    assert osp.isfile(checkpoint) and osp.isfile(run_dir / 'weights.pth')
    (test, ) = [p for p in run_dir.glob('*/*.json') if p.parent.name == p.stem]
    metrics = json.loads(test.read_text())
    assert metric in metrics
    report = (work_dir / 'report' / 'report.md').read_text()
    assert re.search(rf'\| {re.escape(run_name)} \|.*\| complete \| test ',
                     report), report
    return cfg, metrics


@pytest.mark.parametrize('layout', ['coco-box', 'coco-masks', 'voc'])
def test_detection_layouts_train_test_and_report(tiny_demo, tiles, tmp_path,
                                                 capsys, layout):
    """Read -> config -> one pass (2 iterations) -> test -> report, on a
    box-only COCO folder, the demo's COCO with masks and a VOCdevkit."""
    data = tmp_path / 'data'
    if layout == 'coco-box':
        L.write_coco(str(data), tiles, TREE)
        config, metric = 'cascade-rcnn_skipresnet18_data', 'coco/bbox_mAP'
    elif layout == 'coco-masks':
        data = tiny_demo / 'coco'
        config = 'cascade-mask-rcnn_skipresnet18_coco'
        metric = 'coco/segm_mAP'
    else:
        L.write_voc(str(data), tiles, TREE)
        config, metric = 'cascade-rcnn_skipresnet18_data', 'coco/bbox_mAP'
    before = _tree_files(data)
    work_dir = tmp_path / 'ft'
    run([
        str(data), '--task', 'det', '--backbone', 'skipresnet18', '--epochs',
        '1', '--work-dir',
        str(work_dir)
    ])
    out = capsys.readouterr().out
    cfg, metrics = _check_run(work_dir, config, metric)
    assert (cfg.train_cfg.max_epochs, cfg.iters_per_epoch) == (1, 2)
    assert 'coco/bbox_mAP' in metrics
    assert _tree_files(data) == before  # the user's files as they were
    if layout == 'voc':
        assert cfg.train_dataloader.dataset.dataset.ann_file == str(
            work_dir / 'data' / 'instances_train.json')
        assert ('voc layout: ImageSets/Main/train.txt + ImageSets/Main/'
                'val.txt, classes: the object names found; converted to COCO '
                f'JSON: {work_dir}/data/instances_train.json, '
                f'{work_dir}/data/instances_val.json') in out


def test_yolo_from_the_command_line(tiles, tmp_path):
    """tools/finetune.py on a YOLO folder without a val split: the split
    is made, printed, and the run reports a box mAP."""
    data = tmp_path / 'yolo'
    L.write_yolo(str(data), dict(train=tiles['train'] + tiles['val']), TREE)
    work_dir = tmp_path / 'ft'
    result = run_tool([
        'tools/finetune.py',
        str(data), '--task', 'det', '--backbone', 'skipresnet18', '--epochs',
        '1', '--val-fraction', '0.2', '--work-dir',
        str(work_dir)
    ],
                      timeout=900,
                      env=ENV)
    assert result.returncode == 0, result.stdout[-3000:] + \
        result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    assert (f'no val split in {data}: 20 % of the train images (seed 0) -> '
            f'{work_dir}/splits/val.json') in result.stdout
    _check_run(work_dir, 'cascade-rcnn_skipresnet18_yolo', 'coco/bbox_mAP')
    assert '| cascade-rcnn_skipresnet18_yolo | SkipResNet-18 (w32) |' in \
        result.stdout


def test_palette_png_without_val(tiles, tmp_path):
    """Palette PNG label maps (mode P), no val split: the split is made,
    one short run, tested and reported."""
    samples = tiles['train'] + tiles['val']
    seg = tmp_path / 'trees_seg'
    L.write_seg(
        str(seg),
        dict(train=samples), ('ground', 'tree'),
        palette=[[0, 0, 0], [0, 160, 60]])
    run([
        str(seg), '--task', 'seg', '--backbone', 'skipresnet18', '--epochs',
        '1', '--val-fraction', '0.2', '--work-dir',
        str(tmp_path / 'seg')
    ])
    cfg, metrics = _check_run(tmp_path / 'seg', 'upernet_skipresnet18_'
                              'trees_seg', 'mIoU')
    assert cfg.train_dataloader.dataset.metainfo.palette == [[0, 0, 0],
                                                             [0, 160, 60]]
    assert cfg.val_dataloader.dataset.ann_file == str(tmp_path / 'seg' /
                                                      'splits' / 'val.txt')


def test_seeded_base_vs_gated_on_an_imagefolder_without_val(tmp_path, capsys):
    """Crops of two classes in train/<class>/ and no val/: a stratified
    split, then 2 seeds x (SkipResNet-18, its plain twin): four runs
    trained and tested, grouped by config and compared seed by seed."""
    data = tmp_path / 'trees'
    big = L.make_samples(4, classes=L.CLASSES, seed=2, objects=(6, 8))
    L.write_imagefolder(str(data), dict(train=L.crops(big, L.CLASSES)))
    work_dir = tmp_path / 'ft'
    out = run([
        str(data), '--task', 'cls', '--backbone', 'skipresnet18', '--epochs',
        '1', '--seeds', '2', '--compare', 'base', '--work-dir',
        str(work_dir)
    ])
    assert 'stratified by class (seed 0)' in capsys.readouterr().out
    names = ('linear_skipresnet18_trees', 'linear_resnet18_trees')
    assert [osp.basename(c)
            for c in out['configs']] == [n + '.py' for n in names]
    for name in names:
        for seed in (0, 1):
            cfg, _ = _check_run(
                work_dir, f'{name}_seed{seed}', 'accuracy/top1', config=name)
            assert cfg.randomness.seed == seed
            assert cfg.val_dataloader.dataset.data_prefix == 'train'
            assert cfg.model.head.num_classes == 2
    with open(work_dir / 'report' / 'groups.csv', newline='') as f:
        groups = {r['config']: r for r in csv.DictReader(f)}
    assert set(groups) == set(names)
    assert all(r['n'] == '2' and r['seeds'] == '0 1' for r in groups.values())
    with open(work_dir / 'report' / 'group_pairs.csv', newline='') as f:
        (pair, ) = list(csv.DictReader(f))
    assert (pair['gated_config'], pair['base_config'], pair['n']) == (*names,
                                                                      '2')
    gated, base = (float(groups[n]['mean']) for n in names)
    assert float(pair['diff_mean']) == pytest.approx(gated - base, abs=1e-3)
    assert pair['includes_zero'] in ('True', 'False')

    # the plain classifier's weights (MMPretrain's keys, plain tensors)
    # give a detector's SkipResNet-18 its trunk
    weights = str(work_dir / 'linear_resnet18_trees_seed0' / 'weights.pth')
    assert out['runs'][1]['weights'] == weights
    det = tmp_path / 'det'
    L.write_coco(str(det), dict(train=big[:2], val=big[2:]), L.CLASSES)
    (config, ) = run([
        str(det), '--task', 'det', '--backbone', 'skipresnet18', '--weights',
        weights, '--no-train', '--work-dir',
        str(tmp_path / 'det_ft')
    ])['configs']
    state = torch.load(weights)['state_dict']
    plain = {
        k[len('backbone.'):]: v
        for k, v in state.items() if k.startswith('backbone.')
    }
    _, backbone, records = _init_from(config)
    _trunk_loaded(backbone, plain, weights, records)
