"""The dataset readers (``mmgate.datasets.readers``): each layout read as
the stock dataset classes read it, conversions to COCO, made splits, and
the user's files left as they are.

The data are small tiles made by ``tests/test_datasets/layouts.py``: odd
sizes (397x211), grayscale images, many small objects, one or two classes.
"""
import hashlib
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from PIL import Image

from mmgate.datasets import (DataError, check_splits, read_dataset,
                             split_indices)
from tests.test_datasets import layouts as L

TREE = L.CLASSES[:1]


def _tree_hash(root):
    """Every file under ``root`` and its content hash."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = osp.join(dirpath, f)
            with open(path, 'rb') as fh:
                out[osp.relpath(path,
                                root)] = hashlib.sha1(fh.read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def tiles():
    """12 train / 4 val grayscale 397x211 tiles, one class, 3-8 small
    crowns each."""
    return dict(
        train=L.make_samples(12, gray=True, seed=0),
        val=L.make_samples(4, gray=True, seed=1, prefix='val'))


@pytest.mark.parametrize('masks,kind', [('none', 'none'), ('all', 'all'),
                                        ('mixed', 'mixed')])
def test_coco_masks_are_counted(tmp_path, tiles, masks, kind):
    L.write_coco(str(tmp_path), tiles, TREE, masks=masks)
    spec = read_dataset(tmp_path, 'det')
    assert (spec.layout, spec.classes, spec.derived) == ('coco', TREE, {})
    assert spec.paths['train_img'] == 'images/train'
    n = sum(len(s.boxes) for s in tiles['train'] + tiles['val'])
    assert (spec.masks.kind, spec.masks.instances) == (kind, n)
    if kind == 'mixed':  # every other image has masks
        assert spec.masks.images_with_masks == 6 + 2
        assert spec.masks.describe().startswith(
            '8 of 16 images have masks for all their instances')


def test_voc_devkit_converts_as_vocdataset_reads(tmp_path, tiles):
    """VOC's 1-based pixels: COCO box [xmin - 1, ymin - 1, w, h], as
    MMDetection's VOCDataset reads them; difficult -> iscrowd."""
    xml_dir = L.write_voc(str(tmp_path / 'data'), tiles, TREE)
    first = osp.join(xml_dir, tiles['train'][0].name + '.xml')
    text = open(first).read().replace('<difficult>0</difficult>',
                                      '<difficult>1</difficult>', 1)
    open(first, 'w').write(text)
    before = _tree_hash(tmp_path / 'data')
    spec = read_dataset(tmp_path / 'data', 'det', work_dir=tmp_path / 'w')
    assert spec.layout == 'voc' and spec.classes == TREE
    assert spec.paths['train_ann'] == str(tmp_path / 'w' / 'data' /
                                          'instances_train.json')
    assert spec.paths['train_img'] == 'VOCdevkit/VOC2007/JPEGImages'
    train = json.loads(spec.derived[spec.paths['train_ann']])
    s = tiles['train'][0]
    x1, y1, x2, y2 = s.boxes[0]
    assert train['annotations'][0]['bbox'] == [
        int(x1), int(y1),
        round(x2) - int(x1),
        round(y2) - int(y1)
    ]
    assert [a['iscrowd'] for a in train['annotations'][:2]] == [1, 0]
    assert train['images'][0]['width'] == 397
    assert len(
        train['images']) == 12 and spec.val.images[0].endswith('val_000.jpg')
    assert _tree_hash(tmp_path / 'data') == before  # nothing written there


def test_voc_folder_and_yolo_make_a_seeded_split(tmp_path, tiles):
    samples = tiles['train'] + tiles['val']
    L.write_voc(str(tmp_path / 'voc'), dict(train=samples), TREE, devkit=False)
    work = tmp_path / 'w'
    spec = read_dataset(
        tmp_path / 'voc', 'det', work_dir=work, val_fraction=0.2, seed=3)
    assert spec.layout == 'voc-folder'
    val_path = str(work / 'splits' / 'val.json')
    assert f'no val split in {tmp_path / "voc"}: 20 % of the train images ' \
        f'(seed 3) -> {val_path}' in spec.notes
    val = json.loads(spec.derived[val_path])
    train = json.loads(spec.derived[str(work / 'splits' / 'train.json')])
    chosen = split_indices(16, 0.2, seed=3)
    assert [i['file_name'] for i in val['images']
            ] == [samples[i].name + '.jpg' for i in chosen]
    assert len(train['images']) == 16 - len(chosen) == spec.num_train
    assert {a['image_id']
            for a in val['annotations']} <= {i['id']
                                             for i in val['images']}

    # YOLO, classes.txt, no val folder: the same rule, the same split
    L.write_yolo(
        str(tmp_path / 'yolo'), dict(train=samples), TREE, names='classes.txt')
    yolo = read_dataset(
        tmp_path / 'yolo', 'det', work_dir=work, val_fraction=0.2, seed=3)
    yval = json.loads(yolo.derived[val_path])
    assert [i['file_name'] for i in yval['images']
            ] == [i['file_name'] for i in val['images']]
    assert yolo.paths['val_img'] == 'images/train'


def test_yolo_boxes_in_pixels(tmp_path, tiles):
    """cls cx cy w h (fractions) -> COCO pixels of the image's size; a box
    that reaches beyond the image is clipped, with a warning."""
    L.write_yolo(str(tmp_path), tiles, TREE)
    label = tmp_path / 'labels' / 'train' / (tiles['train'][0].name + '.txt')
    label.write_text(label.read_text() + '0 0.99 0.5 0.1 0.2\n')
    with pytest.warns(
            UserWarning,
            match=r'labels/train \(train\): 1 boxes '
            r'reach beyond their image and are clipped to it: '
            r'tile_000\.txt:\d+'):
        spec = read_dataset(tmp_path, 'det', work_dir=tmp_path / 'w')
    assert spec.layout == 'yolo'
    train = json.loads(spec.derived[spec.paths['train_ann']])
    s = tiles['train'][0]
    x1, y1, x2, y2 = s.boxes[0]
    assert train['annotations'][0]['bbox'] == pytest.approx(
        [x1, y1, x2 - x1, y2 - y1], abs=2e-3)
    last = [a for a in train['annotations'] if a['image_id'] == 1][-1]
    # cx 0.99, w 0.1 of 397 px: from 353.3 to the border
    assert last['bbox'] == pytest.approx(
        [0.94 * 397, 0.4 * 211, 397 - 0.94 * 397, 0.2 * 211], abs=2e-3)


def test_segmentation_palette_and_index_maps(tmp_path, tiles):
    samples = tiles['train']
    palette = [[0, 0, 0], [0, 160, 60]]
    L.write_seg(
        str(tmp_path / 'p'),
        dict(train=samples[:8], val=samples[8:]), ('ground', 'tree'),
        palette=palette)
    label = next((tmp_path / 'p' / 'ann_dir' / 'train').iterdir())
    assert Image.open(label).mode == 'P'
    spec = read_dataset(tmp_path / 'p', 'seg')
    assert (spec.layout, spec.classes,
            spec.palette) == ('seg-palette', ('ground', 'tree'), palette)
    assert spec.train.instances == {'ground': 8, 'tree': 8}

    L.write_seg(str(tmp_path / 'i'), dict(train=samples), ('ground', 'tree'))
    spec = read_dataset(tmp_path / 'i', 'seg', work_dir=tmp_path / 'w')
    assert (spec.layout, spec.palette) == ('seg-index', None)
    names = spec.derived[str(tmp_path / 'w' / 'splits' / 'val.txt')]
    assert names == ''.join(samples[i].name + '\n'
                            for i in split_indices(12, 0.1, 0))
    assert spec.paths['val_img'] == 'img_dir/train'


def test_imagefolder_without_val_is_split_by_class(tmp_path):
    rng = np.random.default_rng(0)
    counts = dict(oak=10, pine=5, rare=1)
    L.write_imagefolder(
        str(tmp_path),
        dict(
            train={
                c: [
                    rng.integers(0, 255, (23, 31, 3), np.uint8)
                    for _ in range(n)
                ]
                for c, n in counts.items()
            }))
    spec = read_dataset(
        tmp_path, 'cls', work_dir=tmp_path / 'w', val_fraction=0.2)
    assert (spec.layout, spec.classes) == ('imagefolder', tuple(counts))
    # 20 % of each class, at least one of a class with two or more
    assert spec.val.instances == dict(oak=2, pine=1, rare=0)
    assert spec.train.instances == dict(oak=8, pine=4, rare=1)
    val = spec.derived[str(tmp_path / 'w' / 'splits' / 'val.txt')]
    assert all(line.split()[0].startswith(('oak/', 'pine/'))
               for line in val.splitlines())
    assert spec.notes == [
        f'no val split in {tmp_path}: 20 % of the train images, stratified '
        f'by class (seed 0) -> {tmp_path / "w" / "splits" / "val.txt"}'
    ]
    # the same seed, the same split; another seed, another
    again = read_dataset(
        tmp_path, 'cls', work_dir=tmp_path / 'w', val_fraction=0.2)
    assert again.derived == spec.derived
    other = read_dataset(
        tmp_path, 'cls', work_dir=tmp_path / 'w', val_fraction=0.2, seed=1)
    assert other.derived != spec.derived


def test_derived_files_need_a_work_dir_and_unknown_layouts_are_named(
        tmp_path, tiles):
    L.write_yolo(str(tmp_path / 'y'), tiles, TREE)
    with pytest.raises(ValueError, match='a work_dir is needed'):
        read_dataset(tmp_path / 'y', 'det')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(
            DataError,
            match=r'empty has no det layout mmgate '
            r'reads \(coco: annotations/\*train\*\.json .*; '
            r'voc: VOCdevkit/VOC2007/.*; yolo: .*; voc-folder: '):
        read_dataset(tmp_path / 'empty', 'det')


def test_voc_trainval_test_lists_and_exif_rotated_yolo_images(tmp_path, tiles):
    """VOC's trainval + test lists (as VOC2007 ships them) are train and
    val; a YOLO image with an EXIF rotation has the size OpenCV loads."""
    L.write_voc(str(tmp_path / 'voc'), tiles, TREE)
    main = tmp_path / 'voc' / 'VOCdevkit' / 'VOC2007' / 'ImageSets' / 'Main'
    (main / 'train.txt').rename(main / 'trainval.txt')
    (main / 'val.txt').rename(main / 'test.txt')
    spec = read_dataset(tmp_path / 'voc', 'det', work_dir=tmp_path / 'w')
    assert (len(spec.train.images), len(spec.val.images)) == (12, 4)
    assert spec.notes[0].startswith(
        'voc layout: ImageSets/Main/trainval.txt + ImageSets/Main/test.txt')

    L.write_yolo(str(tmp_path / 'y'), tiles, TREE)
    path = tmp_path / 'y' / 'images' / 'train' / 'tile_000.jpg'
    img = Image.open(path)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(path, exif=exif)
    spec = read_dataset(tmp_path / 'y', 'det', work_dir=tmp_path / 'w')
    train = json.loads(spec.derived[spec.paths['train_ann']])
    h, w = cv2.imread(str(path)).shape[:2]
    assert (w, h) == (211, 397)
    assert (train['images'][0]['width'], train['images'][0]['height']) == (w,
                                                                           h)


def test_an_image_in_both_splits_is_a_warning(tmp_path, tiles):
    """VOC lists that share an image: the val metric would be measured on
    a training image."""
    L.write_voc(str(tmp_path), tiles, TREE)
    main = tmp_path / 'VOCdevkit' / 'VOC2007' / 'ImageSets' / 'Main'
    with open(main / 'val.txt', 'a') as f:
        f.write('tile_003\n')
    spec = read_dataset(tmp_path, 'det', work_dir=tmp_path / 'w')
    img = tmp_path / 'VOCdevkit' / 'VOC2007' / 'JPEGImages' / 'tile_003.jpg'
    (warning, ) = check_splits(spec.train, spec.val)
    assert warning == (
        f'1 images are in both train ({spec.train.source}) and val '
        f'({spec.val.source}), e.g. {img}: the val metric is then measured '
        'on training images')
