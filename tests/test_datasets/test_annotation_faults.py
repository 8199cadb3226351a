"""Broken COCO records: an error naming the file and the record, or a
warning naming them for a record the run skips as MMDetection does (decided
per case in ``mmgate/datasets/checks.py``).

``ANNOTATION_FAULTS`` are rows of the fault table of
docs/en/user_guides/faults.md (rendered by ``tests/test_tools/
test_faults.py``); each is asserted here, exactly.
"""
import json
import os.path as osp
import shutil
import warnings

import cv2
import pytest
from mmengine.config import Config

from mmgate.datasets import DataError, DataWarning, check_data
from tests.helpers import REPO_ROOT, coco_options
from tests.test_tools.test_faults import Fault

DET = 'configs/demo/cascade_rcnn_skipresnet18_demo.py'
ERROR = 'every file; the run stops before the Runner is built'
SKIP = 'every other record; the run goes on without this one'

ANNOTATION_FAULTS = {
    'negative':
    Fault(
        'a box with a negative width or height',
        'annotation file {ann}: annotations[{i}] has a "bbox" with a '
        'negative width or height (COCO boxes are [x, y, w, h], not [x1, '
        'y1, x2, y2]): {json}', ERROR),
    'zero':
    Fault(
        'a box of zero size (w or h < 1, or area 0)',
        'annotation file {ann}: annotations[{i}] has a box under 1 pixel '
        'wide or high, or a zero area: the record is skipped, as MMDetection '
        'does: {json}', SKIP),
    'outside':
    Fault(
        'a box wholly outside its image',
        'annotation file {ann}: annotations[{i}] has a box outside its '
        '{width}x{height} image: the record is skipped, as MMDetection does: '
        '{json}', SKIP),
    'polygon':
    Fault(
        'a polygon with fewer than 3 points (another polygon left)',
        'annotation file {ann}: annotations[{i}] has a polygon with fewer '
        'than 3 points: the polygon is dropped, as MMDetection does: {json}',
        SKIP),
    'polygon_only':
    Fault(
        'an instance whose only polygon has fewer than 3 points',
        'annotation file {ann}: annotations[{i}] has a polygon with fewer '
        'than 3 points: the polygon is dropped and the instance ignored (no '
        'polygon is left), as MMDetection does: {json}', SKIP),
    'category':
    Fault(
        'a category_id missing from "categories"',
        'annotation file {ann}: annotations[{i}] refers to an unknown '
        'category_id {id} (not in "categories"): {json}', ERROR),
    'dup_image':
    Fault(
        'two images with the same id',
        'annotation file {ann}: images[{i}] has the same id {id} as '
        'images[{j}]: {json}', ERROR),
    'dup_ann':
    Fault(
        'two annotations with the same id',
        'annotation file {ann}: annotations[{i}] has the same id {id} as '
        'annotations[{j}]: {json}', ERROR),
    'size':
    Fault(
        'an image whose size differs from its record',
        '{image} (CocoDataset, {key}) is {width}x{height} pixels, but its '
        'record images[{i}] in {ann} says {rec_width}x{rec_height} (width x '
        'height)', ERROR),
}


@pytest.fixture
def coco(tiny_demo, tmp_path):
    """A private copy of the tiny COCO demo set, free to break."""
    dst = tmp_path / 'coco'
    shutil.copytree(tiny_demo / 'coco', dst)
    return dst


def _cfg(root):
    cfg = Config.fromfile(osp.join(REPO_ROOT, DET))
    cfg.merge_from_dict(dict(o.split('=', 1) for o in coco_options(root)))
    return cfg


def _edit(root, edit, split='train'):
    ann = root / 'annotations' / f'instances_{split}2017.json'
    data = json.loads(ann.read_text())
    values = edit(data) or {}
    ann.write_text(json.dumps(data))
    return dict(values, ann=str(ann))


def _record(data, kind, i):
    return dict(i=i, json=json.dumps(data[kind][i])[:200])


def _check(root):
    """check_data's error (or None) and warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            check_data(_cfg(root), ('train', 'val'))
            error = None
        except DataError as e:
            error = str(e)
    return error, [
        str(w.message) for w in caught if issubclass(w.category, DataWarning)
    ]


def _set_bbox(bbox, area=None, i=2):

    def edit(data):
        data['annotations'][i]['bbox'] = bbox
        if area is not None:
            data['annotations'][i]['area'] = area
        return _record(data, 'annotations', i)

    return edit


def _polygon(keep_other):

    def edit(data):
        seg = data['annotations'][3]['segmentation']
        data['annotations'][3]['segmentation'] = (seg[:1] if keep_other else
                                                  []) + [[1.0, 2.0, 5.0, 6.0]]
        return _record(data, 'annotations', 3)

    return edit


def _category(data):
    data['annotations'][1]['category_id'] = 77
    return dict(_record(data, 'annotations', 1), id=77)


def _dup_image(data):
    data['images'][3]['id'] = data['images'][1]['id']
    return dict(_record(data, 'images', 3), j=1, id=data['images'][1]['id'])


def _dup_ann(data):
    data['annotations'][5]['id'] = data['annotations'][0]['id']
    return dict(
        _record(data, 'annotations', 5), j=0, id=data['annotations'][0]['id'])


EDITS = {
    'negative':
    _set_bbox([10.0, 10.0, -5.0, 20.0]),
    'zero':
    _set_bbox([10.0, 10.0, 0.5, 20.0]),
    'outside':
    lambda data: dict(
        _set_bbox([500.0, 10.0, 20.0, 20.0])(data), width=160, height=120),
    'polygon':
    _polygon(keep_other=True),
    'polygon_only':
    _polygon(keep_other=False),
    'category':
    _category,
    'dup_image':
    _dup_image,
    'dup_ann':
    _dup_ann,
}


@pytest.mark.parametrize('kind', list(EDITS))
def test_broken_coco_record(kind, coco):
    values = _edit(coco, EDITS[kind])
    expected = ANNOTATION_FAULTS[kind].sees.format(**values)
    error, warned = _check(coco)
    if ANNOTATION_FAULTS[kind].kept == ERROR:
        assert (error, warned) == (expected, [])
    else:
        assert (error, warned) == (None, [expected])


def test_image_size_differs_from_its_record(coco):
    image = coco / 'train2017' / '000000000003.jpg'
    cv2.imwrite(str(image), cv2.resize(cv2.imread(str(image)), (80, 60)))
    values = dict(
        ann=str(coco / 'annotations' / 'instances_train2017.json'),
        image=str(image),
        key='train_dataloader.dataset.dataset',
        width=80,
        height=60,
        rec_width=160,
        rec_height=120,
        i=2)
    error, warned = _check(coco)
    assert error == ANNOTATION_FAULTS['size'].sees.format(**values)


def test_intact_demo_set_warns_nothing(coco):
    assert _check(coco) == (None, [])


def test_skips_beyond_the_first_five_are_counted(coco):

    def edit(data):
        for ann in data['annotations'][:8]:
            ann['bbox'][2] = 0.0

    values = _edit(coco, edit)
    error, warned = _check(coco)
    assert error is None and len(warned) == 6
    assert warned[-1] == (f'annotation file {values["ann"]}: 3 more records '
                          'skipped for these reasons (not listed)')


def test_train_tool_prints_one_line_per_skipped_record(coco, capsys):
    """tools/train.py (``mmgate.apis``' check before the Runner): a
    skipped record is one warning line, a bad one a one-line RunError."""
    from mmgate.apis import RunError
    from mmgate.apis.common import check_data_first, stderr_warner
    warn = stderr_warner('train.py')
    values = _edit(coco, EDITS['zero'])
    check_data_first(_cfg(coco), ('train', ), 'none', warn)
    assert capsys.readouterr().err.strip() == 'train.py: warning: ' + \
        ANNOTATION_FAULTS['zero'].sees.format(**values)
    values = _edit(coco, EDITS['negative'])
    with pytest.raises(RunError) as error:
        check_data_first(_cfg(coco), ('train', ), 'none', warn)
    assert str(error.value) == \
        ANNOTATION_FAULTS['negative'].sees.format(**values)
