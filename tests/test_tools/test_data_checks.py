"""Bad input ends with one error naming the file, not a worker traceback."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

from mmgate.datasets import DataError, check_data, explain_data_error
from tests.helpers import REPO_ROOT as ROOT
from tests.helpers import coco_options, run_tool

DET = 'configs/demo/cascade_rcnn_skipresnet18_demo.py'
SEG = 'configs/demo/upernet_skipresnet18_demo.py'
CLS = 'configs/demo/cls_skipresnet18_demo.py'


def _cfg(config, options):
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.merge_from_dict(dict(o.split('=', 1) for o in options))
    return cfg


def _det(root):
    return _cfg(DET, coco_options(root / 'coco'))


def _seg(root):
    return _cfg(SEG, [
        f'{k}_dataloader.dataset.data_root={root / "ade"}'
        for k in ('train', 'val', 'test')
    ])


def _cls(root):
    return _cfg(CLS, [
        f'{k}_dataloader.dataset.data_root={root / "imagenet"}'
        for k in ('train', 'val', 'test')
    ])


@pytest.mark.parametrize('make', [_det, _seg, _cls])
def test_intact_demo_data_pass(make, demo_copy):
    check_data(make(demo_copy), ('train', 'val', 'test'))


def test_missing_data_root_is_named_with_its_config_key(demo_copy):
    cfg = _det(demo_copy)
    cfg.train_dataloader.dataset.dataset.data_root = '/no/such/coco/'
    with pytest.raises(
            DataError,
            match=r'data root /no/such/coco/ of '
            r'CocoDataset \(train_dataloader\.dataset\.dataset'
            r'\.data_root\) does not exist'):
        check_data(cfg)


def test_truncated_annotation_json(demo_copy):
    ann = demo_copy / 'coco' / 'annotations' / 'instances_train2017.json'
    text = ann.read_text()
    ann.write_text(text[:len(text) // 2])
    with pytest.raises(DataError, match=rf'{ann} is not valid JSON'):
        check_data(_det(demo_copy))


@pytest.mark.parametrize('field,value,why', [
    ('image_id', 999, 'unknown image_id'),
    ('category_id', 77, 'unknown category_id'),
    ('bbox', [1, 2, 3], r'needs "bbox"'),
    ('segmentation', [[1, 2, 3]], 'neither polygons'),
])
def test_inconsistent_coco_annotation(demo_copy, field, value, why):
    ann = demo_copy / 'coco' / 'annotations' / 'instances_val2017.json'
    data = json.loads(ann.read_text())
    data['annotations'][1][field] = value
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError, match=rf'{ann}: annotations\[1\] .*{why}'):
        check_data(_det(demo_copy))


def test_annotation_listing_a_missing_image(demo_copy):
    img = demo_copy / 'coco' / 'train2017' / '000000000002.jpg'
    img.unlink()
    with pytest.raises(
            DataError,
            match=rf'{img}, listed by .*instances_'
            r'train2017\.json .* does not exist'):
        check_data(_det(demo_copy))


@pytest.mark.parametrize('make,relpath', [
    (_det, 'coco/val2017/000000000001.jpg'),
    (_seg, 'ade/images/training/ADE_train_00000002.jpg'),
    (_seg, 'ade/annotations/validation/ADE_val_00000001.png'),
    (_cls, 'imagenet/train/ball/ball_00003.JPEG'),
])
def test_corrupt_image_is_named(make, relpath, demo_copy):
    path = demo_copy / relpath
    path.write_bytes(path.read_bytes()[:20])  # a truncated header
    with pytest.raises(DataError, match=rf'{path} .*is not a readable image'):
        check_data(make(demo_copy), ('train', 'val'))


def test_class_list_naming_a_missing_file(demo_copy):
    meta = demo_copy / 'imagenet' / 'meta' / 'val.txt'
    meta.write_text(meta.read_text() + 'ILSVRC2012_val_99999999.JPEG 1\n')
    with pytest.raises(
            DataError,
            match=r'ILSVRC2012_val_99999999\.JPEG, '
            r'listed by .*does not exist'):
        check_data(_cls(demo_copy))


def test_evaluator_annotation_file_is_checked(demo_copy):
    cfg = _det(demo_copy)
    cfg.val_evaluator.ann_file = str(demo_copy / 'missing.json')
    with pytest.raises(
            DataError,
            match=r'missing\.json does not exist '
            r'\(val_evaluator\.ann_file\)'):
        check_data(cfg)


@pytest.mark.slow
def test_train_tool_exits_with_one_line_naming_the_file(demo_copy, tmp_path):
    """End to end: tools/train.py and tools/test.py stop before the Runner,
    with the message as the last line and no traceback; an image the check
    did not decode ends the run the same way when training meets it."""
    img = demo_copy / 'coco' / 'train2017' / '000000000003.jpg'
    img.write_bytes(b'not a jpeg')
    result = run_tool([
        'tools/train.py', DET, '--work-dir',
        str(tmp_path / 'w'), '--cfg-options', *coco_options(demo_copy / 'coco')
    ])
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f'train.py: error: {img} (CocoDataset, train_dataloader.dataset.'
        'dataset) is not a readable image: the file is corrupt or not an '
        'image')

    # the same image met while training (the check skipped): one line too
    result = run_tool([
        'tools/train.py', DET, '--work-dir',
        str(tmp_path / 'w'), '--check-data', 'none', '--cfg-options',
        *coco_options(demo_copy / 'coco')
    ])
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f'train.py: error: {img} is not a readable image'
                           ), result.stderr[-3000:]
    assert 'found while reading the data' in last

    result = run_tool(['tools/test.py', DET, str(tmp_path / 'none.pth')])
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert 'none.pth does not exist' in result.stderr


def test_errors_raised_inside_a_worker_are_explained():
    """A DataLoader worker's error arrives as text inside a new exception."""
    worker = AssertionError(
        'Caught AssertionError in DataLoader worker process 0.\nOriginal '
        'Traceback (most recent call last):\n  ...\n    assert img is not '
        "None, f'failed to load image: {filename}'\nAssertionError: failed "
        'to load image: data/coco/train2017/000000000009.jpg\n')
    error = explain_data_error(RuntimeError('wrapped').with_traceback(None))
    assert error is None
    error = explain_data_error(worker)
    assert str(error).startswith('data/coco/train2017/000000000009.jpg is '
                                 'not a readable image')
    try:
        try:
            open('/no/such/seg_map.png')
        except FileNotFoundError as e:
            raise RuntimeError('while loading') from e
    except RuntimeError as e:
        assert str(explain_data_error(e)).startswith(
            '/no/such/seg_map.png does not exist')
