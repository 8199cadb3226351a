"""Bad data per reader: one line naming the file and the record, raised
before anything is written; or a warning naming them where MMDetection
itself would drop the record (``voc.py``, ``yolo.py``, ``seg.py``,
``cls.py`` say which, case by case; COCO records:
``test_annotation_faults.py``)."""
import os
import re

import cv2
import numpy as np
import pytest

from mmgate.datasets import DataError, DataWarning, read_dataset
from mmgate.finetune import run
from tests.test_datasets import layouts as L

TREE = L.CLASSES[:1]


@pytest.fixture(scope='module')
def tiles():
    return dict(
        train=L.make_samples(4, seed=0),
        val=L.make_samples(2, seed=1, prefix='val'))


def _voc(tmp_path, tiles):
    xml_dir = L.write_voc(str(tmp_path / 'voc'), tiles, TREE)
    return tmp_path / 'voc', xml_dir + '/tile_001.xml'


def _edit(path, old, new, count=1):
    text = open(path).read()
    assert old in text, (old, path)
    open(path, 'w').write(text.replace(old, new, count))


def _box(xml, xmin, ymin, xmax, ymax):
    text = open(xml).read()
    text = re.sub(
        r'<bndbox>.*?</bndbox>',
        f'<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>'
        f'{xmax}</xmax><ymax>{ymax}</ymax></bndbox>',
        text,
        count=1)
    open(xml, 'w').write(text)


def _read(root, tmp_path):
    return read_dataset(root, 'det', work_dir=tmp_path / 'w')


def _truncate(xml):
    text = open(xml).read()
    open(xml, 'w').write(text[:len(text) // 2])


def _drop_xmax(xml):
    _edit(xml, '<xmax>', '<xmaxx>')
    _edit(xml, '</xmax>', '</xmaxx>')


def _image_of(xml):
    return xml.replace('Annotations', 'JPEGImages').replace('.xml', '.jpg')


VOC_ERRORS = {
    'truncated': (_truncate, r'{xml} is not valid XML \(.*line 1.*\): is '
                  r'the file cut off\?'),
    'negative': (lambda xml: _box(xml, 50, 20, 40, 30),
                 r'{xml}: object\[0\] \(tree\) has xmax < xmin or ymax < '
                 r'ymin \(a box of negative size\): \[50\.0, 20\.0, 40\.0, '
                 r'30\.0\]'),
    'no_box':
    (_drop_xmax, r'{xml}: object\[0\] \(tree\) bndbox has no <xmax>'),
    'size':
    (lambda xml: _edit(xml, '<width>397</width>', '<width>400</width>'),
     r'{xml}: <size> says 400x211, but its image .*tile_001\.jpg is '
     r'397x211 \(width x height\)'),
    'missing_image': (lambda xml: os.remove(_image_of(xml)),
                      r'{xml}: its image does not exist \(tried .*JPEGImages/'
                      r'tile_001\.jpg and tile_001\.<jpg\|png\|\.\.\.> in '
                      r'.*JPEGImages\)'),
    'undecodable':
    (lambda xml: open(_image_of(xml), 'wb').write(b'\xff\xd8 not a jpeg'),
     r'.*JPEGImages/tile_001\.jpg is not a readable image: the file is '
     r'corrupt or not an image .*'),
}


@pytest.mark.parametrize('fault', list(VOC_ERRORS))
def test_voc_errors(tmp_path, tiles, fault):
    root, xml = _voc(tmp_path, tiles)
    damage, message = VOC_ERRORS[fault]
    damage(xml)
    with pytest.raises(DataError) as exc:
        _read(root, tmp_path)
    assert re.fullmatch(message.format(xml=re.escape(xml)),
                        str(exc.value)), str(exc.value)
    assert '\n' not in str(exc.value)


def test_voc_unknown_class_and_dropped_boxes(tmp_path, tiles):
    root, xml = _voc(tmp_path, tiles)
    (root / 'classes.txt').write_text('tree\n')
    _edit(xml, '<name>tree</name>', '<name>bush</name>')
    with pytest.raises(
            DataError,
            match=re.escape(f'{xml}: object[0] (bush) is not a class of '
                            f'{root}/classes.txt '
                            '(tree)')):
        _read(root, tmp_path)
    _edit(xml, '<name>bush</name>', '<name>tree</name>')
    _box(xml, 400, 10, 420, 30)  # wholly right of the 397 px image
    with pytest.warns(DataWarning) as caught:
        spec = _read(root, tmp_path)
    (w, ) = [str(c.message) for c in caught]
    assert w == (f'{xml}: object[0] (tree) has a box outside its 397x211 '
                 'image: [400.0, 10.0, 420.0, 30.0]: the record is skipped, '
                 'as MMDetection does')
    n = sum(len(s.boxes) for s in tiles['train'])
    assert sum(spec.train.instances.values()) == n - 1


YOLO_ERRORS = {
    'columns': ('0 0.5 0.5 0.1\n', r'{label}:1: "0 0\.5 0\.5 0\.1" has 4 '
                r'numbers: a YOLO detection label is "class cx cy w h"'),
    'polygon': ('0 0.1 0.1 0.2 0.1 0.2 0.2\n', r'{label}:1: ".*" has 7 '
                r'numbers \(a segmentation polygon\?\): a YOLO detection '
                r'label is "class cx cy w h"'),
    'class': ('3 0.5 0.5 0.1 0.1\n', r'{label}:1: class 3 is not one of the '
              r'1 classes of {yaml} \(0-0\)'),
    'pixels': ('0 120 80 30 30\n', r'{label}:1: "0 120 80 30 30" has '
               r'coordinates outside 0-1 or a negative size: YOLO labels are '
               r'the box centre and size as fractions of the image \(not '
               r'pixels\)'),
    'negative': ('0 0.5 0.5 -0.1 0.1\n', r'{label}:1: ".*" has coordinates '
                 r'outside 0-1 or a negative size: .*'),
}


@pytest.mark.parametrize('fault', list(YOLO_ERRORS))
def test_yolo_errors(tmp_path, tiles, fault):
    L.write_yolo(str(tmp_path), tiles, TREE)
    label = str(tmp_path / 'labels' / 'val' / 'val_001.txt')
    line, message = YOLO_ERRORS[fault]
    open(label, 'w').write(line)
    with pytest.raises(DataError) as exc:
        _read(tmp_path, tmp_path)
    assert re.fullmatch(
        message.format(
            label=re.escape(label),
            yaml=re.escape(str(tmp_path / 'data.yaml'))),
        str(exc.value)), str(exc.value)


def test_yolo_yaml_and_warnings(tmp_path, tiles):
    L.write_yolo(str(tmp_path), tiles, TREE)
    yaml = tmp_path / 'data.yaml'
    text = yaml.read_text()
    yaml.write_text('names: [tree\nnc: 1\n')  # cut off
    with pytest.raises(
            DataError,
            match=re.escape(f'{yaml} is not valid YAML (line 2): ')):
        _read(tmp_path, tmp_path)
    yaml.write_text('nc: 2\nnames: [tree]\n')
    with pytest.raises(
            DataError,
            match=re.escape(f'{yaml}: nc is 2, but names lists 1 classes')):
        _read(tmp_path, tmp_path)
    yaml.write_text(text)
    label = tmp_path / 'labels' / 'train' / 'tile_000.txt'
    label.write_text('0 0.5 0.5 0.001 0.2\n')  # 0.4 px wide
    (tmp_path / 'labels' / 'train' / 'orphan.txt').write_text('0 .5 .5 .1 .1')
    with pytest.warns(DataWarning) as caught:
        _read(tmp_path, tmp_path)
    assert [str(c.message) for c in caught] == [
        f'{tmp_path}/labels/train/orphan.txt has no image in '
        f'{tmp_path}/images/train: it is not used',
        f'{label}:1: "0 0.5 0.5 0.001 0.2" is a box under 1 pixel wide or '
        'high in its 397x211 image: the record is skipped, as MMDetection '
        'does'
    ]


def test_segmentation_and_classification_errors(tmp_path, tiles):
    from PIL import Image
    root = tmp_path / 'seg'
    L.write_seg(
        str(root),
        dict(train=tiles['train']), ('ground', 'tree'),
        palette=[[0, 0, 0], [0, 160, 60]])
    label = root / 'ann_dir' / 'train' / 'tile_002.png'
    img = Image.open(label)
    arr = np.array(img)
    arr[0, 0] = 7
    bad = Image.frombytes('P', img.size, arr.tobytes())
    bad.putpalette(img.getpalette())
    bad.save(label)
    with pytest.raises(
            DataError,
            match=re.escape(
                f'{label} holds the value 7, but {root}/classes.txt lists 2 '
                'classes (0-1; 255 = ignore)')):
        read_dataset(root, 'seg', work_dir=tmp_path / 'w')
    Image.new('RGB', img.size).save(label)
    with pytest.raises(
            DataError,
            match=re.escape(
                f'{label} is a RGB image with 3 channels: a label map holds '
                'one '
                'class index per pixel (grey or palette PNG)')):
        read_dataset(root, 'seg', work_dir=tmp_path / 'w')
    label.unlink()
    with pytest.raises(
            DataError,
            match=re.escape(f'{label}, the label map of '
                            f'{root}/img_dir/train/tile_002.jpg, '
                            'does not exist')):
        read_dataset(root, 'seg', work_dir=tmp_path / 'w')

    # one image: no split leaves both sides non-empty
    L.write_imagefolder(
        str(tmp_path / 'cls'),
        dict(train=dict(oak=[np.zeros((8, 8, 3), np.uint8)])))
    with pytest.raises(
            DataError,
            match=re.escape(
                f'{tmp_path}/cls/train has 1 sample(s): too few to split off '
                'a '
                'val set; give a val split')):
        read_dataset(tmp_path / 'cls', 'cls', work_dir=tmp_path / 'w')


def test_errors_come_before_anything_is_written(tmp_path, tiles, capsys):
    """A made split that is empty, an image whose header reads but whose
    data do not decode (found by the checks of tools/train.py on the staged
    COCO file), a bad label: one line, and no work directory."""
    L.write_yolo(str(tmp_path / 'y'), dict(train=tiles['train']), TREE)
    work = tmp_path / 'w'
    argv = [
        str(tmp_path / 'y'), '--task', 'det', '--backbone', 'skipresnet18',
        '--no-train', '--work-dir',
        str(work)
    ]
    for f in (tmp_path / 'y' / 'labels' / 'train').iterdir():
        if f.name != 'tile_002.txt':
            f.write_text('')
    # --val-fraction 0.5, seed 0: tiles 0 and 2 go to val, and tile_002 is
    # the only one with boxes: train is left without any
    msg = L.run_fails(argv + ['--val-fraction', '0.5'], capsys)
    assert msg == (f'the train split ({work}/splits/train.json) is empty: '
                   'its 2 images have no annotated instance')
    assert not work.exists()

    L.write_yolo(str(tmp_path / 'y'), dict(train=tiles['train']), TREE)
    jpg = tmp_path / 'y' / 'images' / 'train' / 'tile_001.jpg'
    img = jpg.with_suffix('.png')
    cv2.imwrite(str(img), cv2.imread(str(jpg)))
    jpg.unlink()
    img.write_bytes(img.read_bytes()[:200])  # header intact, data cut
    msg = L.run_fails(argv, capsys)
    assert re.fullmatch(re.escape(str(img)) + r' \(CocoDataset, train_'
                        r'dataloader\.dataset\.dataset\) is not a readable '
                        r'image: the file is corrupt or not an image', msg), \
        msg
    assert not work.exists()

    # a label file without an image: a warning line, and the run goes on
    img.unlink()
    out = run(argv)
    assert out['configs'] and work.exists()
    assert (f'finetune.py: warning: {tmp_path}/y/labels/train/tile_001.txt '
            f'has no image in {tmp_path}/y/images/train: it is not used'
            ) in capsys.readouterr().err
