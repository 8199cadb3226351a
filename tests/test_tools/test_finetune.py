"""tools/finetune.py (mmgate.finetune): dataset folder -> config -> trained,
tested model; seeded base-vs-gated comparisons; checks across splits.

The end-to-end runs train SkipResNet-18 (the CPU demo recipes) for one pass
over the tiny demo sets (``tiny_demo``): det, seg, and cls with 2 seeds x
base / gated.
"""
import ast
import csv
import importlib
import json
import os
import os.path as osp
import re
import shutil

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from mmgate.datasets import DEMO_CLASSES, DataError
from mmgate.datasets.split_checks import check_splits
from mmgate import finetune
from mmgate.finetune import (load_config, read_dataset, resolve_recipe, run,
                             scale_schedule, train_command, write_config)
from tests.helpers import REPO_ROOT, run_tool

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
# ADE20k ids of the demo classes (mmgate.datasets.demo_data.ADE20K_IDS)
ADE_ORDER = ('wall', 'person', 'box', 'signboard', 'ball')


@pytest.fixture
def data(demo_copy):
    """A private copy of the tiny demo sets (conftest's ``demo_copy``)."""
    return demo_copy


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


def test_reads_classes_and_splits_of_each_layout(data):
    det = read_dataset(data / 'coco', 'det')
    assert (det.layout, det.classes) == ('coco', DEMO_CLASSES)
    assert det.paths == dict(
        train_ann='annotations/instances_train2017.json',
        train_img='train2017', val_ann='annotations/instances_val2017.json',
        val_img='val2017')
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
    assert seg.classes == tuple(c for c in ADE_ORDER
                                if ade_ids[c] in present)

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
    assert seg.layout == 'seg-folders'
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
    ('det', 'mask-rcnn', 'skipresnext50-32x4d', 'coco', 2),
    ('det', 'retinanet', 'skipresnet101', 'coco', 1),
    ('seg', 'upernet', 'skipresnet50', 'ade', 2),
    ('cls', 'linear', 'skipresnet50', 'imagenet', 1),
])
def test_written_configs_fit_the_data(data, tmp_path, capsys, task, recipe,
                                      backbone, folder, heads):
    """Each recipe's config: every head's num_classes, the classes and data
    of every split, auto_scale_lr; its plain twin differs only in the
    backbone."""
    work_dir = tmp_path / 'ft'
    out = run([str(data / folder), '--task', task, '--recipe', recipe,
               '--backbone', backbone, '--compare', 'base', '--no-train',
               '--work-dir', str(work_dir)])
    gated_path, base_path = out['configs']
    assert osp.basename(gated_path) == f'{recipe}_{backbone}_{folder}.py'
    assert f'config: {gated_path}' in capsys.readouterr().out
    spec = read_dataset(data / folder, task)
    gated, base = Config.fromfile(gated_path), Config.fromfile(base_path)
    found = dict(_walk_num_classes(gated.model))
    # cascade: 3 box heads + mask head; mask-rcnn: box + mask head;
    # upernet: decode + auxiliary head
    assert found and set(found.values()) <= {len(spec.classes), 1}
    assert sum(v == len(spec.classes) for v in found.values()) == heads
    for split in ('train', 'val', 'test'):
        ds = _leaf(gated[f'{split}_dataloader'].dataset)
        assert tuple(ds.metainfo.classes) == spec.classes
        assert ds.data_root == str(data / folder) + '/'
    assert gated.auto_scale_lr.enable
    assert gated.model.backbone.type.startswith('mmgate.Skip')
    assert not base.model.backbone.type.startswith('mmgate.')
    g, b = gated.to_dict(), base.to_dict()
    assert g['model'].pop('backbone') != b['model'].pop('backbone')
    assert g == b
    if task == 'det':
        assert gated.val_evaluator.ann_file == str(
            data / folder / spec.paths['val_ann'])
    if recipe == 'retinanet':  # the stock recipe gets mmgate's backbone
        src = load_config(resolve_recipe('det', 'cascade-mask-rcnn',
                                         backbone).config)
        assert gated.model.backbone.init_cfg == src.model.backbone.init_cfg
        assert gated.model.neck.in_channels == [256, 512, 1024, 2048]
    if task == 'cls':  # CIFAR recipe: images from files, 4 classes
        assert gated.train_dataloader.dataset.pipeline[0].type == \
            'LoadImageFromFile'
        assert gated.data_preprocessor.to_rgb
        assert gated.data_preprocessor.num_classes == len(spec.classes)
        assert gated.val_evaluator.topk == (1, )


def test_schedule_keeps_the_recipes_passes_over_the_data():
    det = resolve_recipe('det', 'cascade-mask-rcnn', 'skipresnet50')
    cfg = load_config(det.config)
    s = scale_schedule('det', cfg, det, 200)
    # ms-3x: RepeatDataset x3 x 12 epochs = 36 passes; 2 images a GPU
    assert (s.epochs, s.recipe_epochs, s.batch, s.iters_per_epoch) == (
        36, 36., 2, 100)
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
    with pytest.raises(ValueError, match=r'no linear recipe for '
                       r'skipresnet101 .*linear has recipes for '
                       r'skipresnet18, skipresnet50, resnet18, resnet50'):
        resolve_recipe('cls', 'linear', 'skipresnet101')
    with pytest.raises(ValueError, match='seg has no recipe retinanet'):
        resolve_recipe('seg', 'retinanet', 'skipresnet50')
    src = resolve_recipe('det', 'cascade-mask-rcnn', 'resnet18')
    assert src.demo and src.backbone['type'] == 'ResNet'
    assert src.backbone['base_channels'] == 32


def test_config_writing_is_atomic_and_keeps_edits(tmp_path):
    path = str(tmp_path / 'a' / 'x.py')
    assert write_config(path, 'x = 1\n')
    assert not write_config(path, 'x = 1\n')  # unchanged
    with open(path, 'a') as f:
        f.write('y = 2\n')  # the user's edit
    with pytest.raises(FileExistsError, match=r'x\.py exists and differs '
                       r'.*pass --overwrite to replace it'):
        write_config(path, 'x = 1\n')
    assert write_config(path, 'x = 3\n', overwrite=True)
    assert open(path).read() == 'x = 3\n'
    assert os.listdir(tmp_path / 'a') == ['x.py']  # no temporary left


def test_command_lines_and_console_script():
    cmd = train_command('c.py', 'w', seed=3, cfg_options=['a=1'])
    assert cmd[1:] == [osp.join(REPO_ROOT, 'tools', 'train.py'), 'c.py',
                       '--work-dir', 'w', '--cfg-options',
                       'randomness.seed=3', 'a=1']
    cmd = train_command('c.py', 'w', gpus=2, resume=True)
    assert cmd == ['bash', osp.join(REPO_ROOT, 'tools', 'dist_train.sh'),
                   'c.py', '2', '--work-dir', 'w', '--resume']
    cmd = finetune.test_command('c.py', 'w/epoch_1.pth', 'w', seed=0)
    assert cmd[1:] == [osp.join(REPO_ROOT, 'tools', 'test.py'), 'c.py',
                       'w/epoch_1.pth', '--work-dir', 'w', '--cfg-options',
                       'randomness.seed=0']
    # setup.py installs mmgate-finetune as mmgate.finetune:main
    tree = ast.parse(open(osp.join(REPO_ROOT, 'setup.py')).read())
    scripts = [ast.literal_eval(kw.value)['console_scripts']
               for node in ast.walk(tree) if isinstance(node, ast.Call)
               for kw in node.keywords if kw.arg == 'entry_points']
    (entry, ), = scripts
    name, target = [p.strip() for p in entry.split('=')]
    module, func = target.split(':')
    assert name == 'mmgate-finetune'
    assert getattr(importlib.import_module(module), func) is finetune.main


# ---- bad data ---------------------------------------------------------------


def _fails(argv, capsys):
    """run() ends with exit code 1 and one error line."""
    with pytest.raises(SystemExit) as exc:
        run(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('finetune.py: error: ')
    return err[-1][len('finetune.py: error: '):]


def test_class_names_differ_between_train_and_val(data, tmp_path, capsys):
    path, val = _coco(data, 'val')
    val['categories'][2]['name'] = 'crate'  # box
    path.write_text(json.dumps(val))
    msg = _fails([str(data / 'coco'), '--task', 'det', '--work-dir',
                  str(tmp_path / 'w'), '--no-train'], capsys)
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
    with pytest.raises(DataError, match='same names in another order: '
                       'train person, ball, box, signboard / val ball, '
                       'person, box, signboard'):
        check_splits(spec.train, spec.val)

    # ImageFolder: a class folder only val has
    root = _imagefolder(data / 'imagenet', data / 'if')
    (root / 'val' / 'crate').mkdir()
    shutil.copy(next((root / 'val' / 'box').iterdir()),
                root / 'val' / 'crate' / 'c.JPEG')
    msg = _fails([str(root), '--task', 'cls', '--no-train', '--work-dir',
                  str(tmp_path / 'w')], capsys)
    assert msg == (f'class names differ between train ({root}/train) and '
                   f'val ({root}/val): only in val: crate')

    # ImageNet layout: a val label no train image has
    meta = data / 'imagenet' / 'meta' / 'val.txt'
    meta.write_text(meta.read_text() + 'ILSVRC2012_val_00000001.JPEG 7\n')
    msg = _fails([str(data / 'imagenet'), '--task', 'cls', '--no-train',
                  '--work-dir', str(tmp_path / 'w')], capsys)
    assert msg.startswith('class names differ between train (') and \
        msg.endswith('val has label 7 (ILSVRC2012_val_00000001.JPEG), '
                     'which no train image has')


def test_empty_split(data, tmp_path, capsys):
    path, val = _coco(data, 'val')
    path.write_text(json.dumps(dict(val, images=[], annotations=[])))
    msg = _fails([str(data / 'coco'), '--task', 'det', '--no-train',
                  '--work-dir', str(tmp_path / 'w')], capsys)
    assert msg == f'the val split ({path}) is empty: it has no images'

    path, train = _coco(data, 'train')
    path.write_text(json.dumps(dict(train, annotations=[])))
    with pytest.raises(DataError, match=r'the train split \(.*instances_'
                       r'train2017\.json\) is empty: its 4 images have no '
                       'annotated instance'):
        spec = read_dataset(data / 'coco', 'det')
        check_splits(spec.train, spec.val)

    root = _imagefolder(data / 'imagenet', data / 'if')
    for f in (root / 'val').rglob('*.JPEG'):
        f.unlink()
    msg = _fails([str(root), '--task', 'cls', '--no-train', '--work-dir',
                  str(tmp_path / 'w')], capsys)
    assert msg == f'the val split ({root}/val) is empty: it has no images'


def test_class_without_train_instance_is_a_named_warning(data, tmp_path,
                                                         capsys):
    path, train = _coco(data, 'train')
    spec = read_dataset(data / 'coco', 'det')
    absent = [c for c, n in spec.train.instances.items() if not n]
    # remove the class with the most train instances
    name = max(spec.train.instances, key=spec.train.instances.get)
    cat = next(c['id'] for c in train['categories'] if c['name'] == name)
    train['annotations'] = [a for a in train['annotations']
                            if a['category_id'] != cat]
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
    assert warnings == [warning(c) for c in DEMO_CLASSES
                        if c in absent or c == name]
    expected = warning(name)
    # the command warns and goes on
    out = run([str(data / 'coco'), '--task', 'det', '--backbone',
               'skipresnet18', '--no-train', '--work-dir',
               str(tmp_path / 'w')])
    assert osp.isfile(out['configs'][0])
    assert f'finetune.py: warning: {expected}' in capsys.readouterr().err

    root = _imagefolder(data / 'imagenet', data / 'if')
    for f in (root / 'train' / 'box').iterdir():
        f.unlink()
    spec = read_dataset(root, 'cls')
    assert check_splits(spec.train, spec.val) == [
        f'class "box" has no instance in train ({root}/train) but 2 in val: '
        'the model cannot learn it']


def test_images_of_very_different_sizes_are_a_warning(data, tmp_path,
                                                      capsys):
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
    run([str(data / 'imagenet'), '--task', 'cls', '--backbone',
         'skipresnet18', '--no-train', '--work-dir', str(tmp_path / 'w')])
    assert f'finetune.py: warning: {warning}' in capsys.readouterr().err

    # COCO: the sizes the annotation file gives
    path, val = _coco(data, 'val')
    val['images'][0].update(width=1600, height=1200)
    path.write_text(json.dumps(val))
    spec = read_dataset(data / 'coco', 'det')
    warning = check_splits(spec.train, spec.val)[-1]
    assert warning.startswith('images of very different sizes: 160x120 (')
    assert f'to 1600x1200 ({spec.val.images[0]}, val), longer sides 10.0x ' \
        'apart' in warning


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
    msg = _fails([str(data / 'coco'), '--task', 'det', '--backbone',
                  'skipresnet18', '--work-dir', str(tmp_path / 'w')], capsys)
    assert re.match(message.format(ann=re.escape(str(ann)),
                                   img=re.escape(str(img))), msg), msg
    assert not (tmp_path / 'w').exists()  # nothing written


# ---- end to end -------------------------------------------------------------


def _finetune(args, tmp_path):
    result = run_tool(['tools/finetune.py', *args], timeout=900, env=ENV)
    assert result.returncode == 0, result.stdout[-3000:] + \
        result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    return result.stdout


@pytest.mark.parametrize('task,folder,config,metric', [
    ('det', 'coco', 'cascade-mask-rcnn_skipresnet18_coco', 'coco/bbox_mAP'),
    ('seg', 'ade', 'upernet_skipresnet18_ade', 'mIoU'),
])
def test_finetune_writes_trains_and_tests(tiny_demo, tmp_path, task, folder,
                                          config, metric):
    work_dir = tmp_path / 'ft'
    out = _finetune([str(tiny_demo / folder), '--task', task, '--backbone',
                     'skipresnet18', '--epochs', '1', '--work-dir',
                     str(work_dir)], tmp_path)
    path = work_dir / f'{config}.py'
    assert f'config: {path}' in out
    cfg = Config.fromfile(str(path))
    # one pass: 4 images at 2 a batch (det), 3 at 4 (seg)
    assert (cfg.train_cfg.max_epochs, cfg.iters_per_epoch) == (1, 2) \
        if task == 'det' else cfg.train_cfg.max_iters == 1
    run_dir = work_dir / config
    checkpoint = (run_dir / 'last_checkpoint').read_text().strip()
    assert osp.isfile(checkpoint)
    tests = [p for p in run_dir.glob('*/*.json') if p.parent.name ==
             p.stem]
    (test, ) = tests
    assert metric in json.loads(test.read_text())
    report = (work_dir / 'report' / 'report.md').read_text()
    assert f'| {config} | SkipResNet-18 (w32) |' in report
    assert '| complete | test ' in report


def test_seeded_base_vs_gated_comparison(tiny_demo, tmp_path):
    """2 seeds x (SkipResNet-18, its plain twin) on the classification demo
    set: four runs trained and tested, grouped by config and compared seed
    by seed."""
    work_dir = tmp_path / 'ft'
    out = _finetune([str(tiny_demo / 'imagenet'), '--task', 'cls',
                     '--backbone', 'skipresnet18', '--epochs', '1',
                     '--seeds', '2', '--compare', 'base', '--work-dir',
                     str(work_dir)], tmp_path)
    names = ('linear_skipresnet18_imagenet', 'linear_resnet18_imagenet')
    for name in names:
        assert f'config: {work_dir / name}.py' in out
        for seed in (0, 1):
            dumped = Config.fromfile(
                str(work_dir / f'{name}_seed{seed}' / f'{name}.py'))
            assert dumped.randomness.seed == seed
    assert '## Seeded runs' in out and '## Gated vs base, paired by seed' \
        in out
    with open(work_dir / 'report' / 'groups.csv', newline='') as f:
        groups = {r['config']: r for r in csv.DictReader(f)}
    assert set(groups) == set(names)
    assert all(r['n'] == '2' and r['seeds'] == '0 1' for r in groups.values())
    with open(work_dir / 'report' / 'group_pairs.csv', newline='') as f:
        (pair, ) = list(csv.DictReader(f))
    assert (pair['gated_config'], pair['base_config'], pair['n']) == (
        *names, '2')
    gated, base = (float(groups[n]['mean']) for n in names)
    assert float(pair['diff_mean']) == pytest.approx(gated - base, abs=1e-3)
    assert pair['includes_zero'] in ('True', 'False')


def test_imagefolder_and_class_list_layouts(data, tmp_path):
    """ImageFolder (CustomDataset, sorted folders) and classes.txt +
    img_dir / ann_dir (BaseSegDataset, class indices, no
    reduce_zero_label): configs whose datasets build (run() checks
    them)."""
    root = _imagefolder(data / 'imagenet', data / 'if')
    (path, ) = run([str(root), '--task', 'cls', '--backbone',
                    'skipresnet18', '--no-train', '--work-dir',
                    str(tmp_path / 'cls')])['configs']
    cfg = Config.fromfile(path)
    ds = cfg.val_dataloader.dataset
    assert (ds.type, ds.data_prefix, ds.ann_file) == ('CustomDataset', 'val',
                                                      '')
    assert ds.metainfo.classes == ('ball', 'box', 'person', 'signboard')

    root = _seg_folders(data / 'ade', data / 'seg')
    (path, ) = run([str(root), '--task', 'seg', '--backbone',
                    'skipresnet18', '--no-train', '--work-dir',
                    str(tmp_path / 'seg')])['configs']
    cfg = Config.fromfile(path)
    for split in ('train', 'val'):
        ds = cfg[f'{split}_dataloader'].dataset
        assert (ds.type, ds.reduce_zero_label, ds.img_suffix) == (
            'BaseSegDataset', False, '.jpg')
        assert ds.data_prefix.seg_map_path == f'ann_dir/{split}'
        assert ds.metainfo.palette[0] == [120, 120, 120]
        (load, ) = [t for t in ds.pipeline if t.type == 'LoadAnnotations']
        assert load.reduce_zero_label is False
    assert cfg.model.decode_head.num_classes == 5
