"""Small datasets in the layouts users bring, written by the tests.

Scenes are aerial-style tiles: a noisy ground texture with round "crowns"
(a radial gradient with leaf noise) of one or two classes, as in public
tree-crown datasets; sizes are odd (397x211 by default), images may be
grayscale, objects small and many. The same samples can be written as COCO
(boxes only, with masks, mixed), Pascal VOC (VOCdevkit or a bare folder),
YOLO txt, palette / index PNG segmentation and ImageFolder classification,
and any COCO set (the demo's) can be rewritten in the other detection
layouts (:func:`samples_from_coco`).
"""
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

CLASSES = ('tree', 'shrub')
# shrubs are yellowish and smaller
COLOURS = {'tree': (40, 120, 40), 'shrub': (60, 160, 170)}  # BGR


@dataclass
class Sample:
    """One image and its objects: boxes ``(x1, y1, x2, y2)`` in pixels,
    class indices, and optional polygons (COCO ``segmentation``)."""
    name: str
    image: np.ndarray
    boxes: List[Tuple[float, float, float,
                      float]] = field(default_factory=list)
    labels: List[int] = field(default_factory=list)
    polygons: List[Optional[list]] = field(default_factory=list)


def _ground(rng, h: int, w: int) -> np.ndarray:
    base = np.array([70, 100, 110], np.float32)  # BGR soil / grass
    noise = cv2.GaussianBlur(
        rng.normal(0, 40, (h, w, 3)).astype(np.float32), (0, 0), 3)
    return np.clip(base + noise, 0, 255)


def make_samples(num: int,
                 size=(397, 211),
                 classes=CLASSES[:1],
                 objects=(3, 8),
                 radius=(6, 18),
                 gray=False,
                 seed=0,
                 prefix='tile') -> List[Sample]:
    """``num`` tiles of ``size`` (width, height) with round objects."""
    rng = np.random.default_rng(seed)
    w, h = size
    samples = []
    for i in range(num):
        img = _ground(rng, h, w)
        sample = Sample(f'{prefix}_{i:03d}', img)
        for _ in range(rng.integers(objects[0], objects[1] + 1)):
            label = int(rng.integers(len(classes)))
            r = int(rng.integers(*radius)) * (1 if label == 0 else 0.7)
            r = max(int(r), 3)
            cx, cy = rng.integers(r, w - r), rng.integers(r, h - r)
            yy, xx = np.mgrid[:h, :w]
            d = np.sqrt((xx - cx)**2 + (yy - cy)**2) / r
            inside = d <= 1
            shade = (1.2 - 0.5 * d[inside])[:, None]
            leaf = rng.normal(0, 12, (inside.sum(), 3))
            img[inside] = np.clip(
                np.array(COLOURS[classes[label]]) * shade + leaf, 0, 255)
            angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
            poly = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)],
                            1).round(1)
            sample.boxes.append(
                (float(cx - r), float(cy - r), float(cx + r + 1),
                 float(cy + r + 1)))
            sample.labels.append(label)
            sample.polygons.append(poly.reshape(-1).tolist())
        img = img.astype(np.uint8)
        sample.image = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if gray else img
        samples.append(sample)
    return samples


def samples_from_coco(ann_file: str,
                      img_dir: str,
                      prefix: str = '') -> List[Sample]:
    """The images and boxes of a COCO file, as samples (``prefix``: before
    their names, so that two splits can share a folder)."""
    with open(ann_file) as f:
        data = json.load(f)
    cat = {
        c['id']: i
        for i, c in enumerate(
            sorted(data['categories'], key=lambda c: c['id']))
    }
    by_image = {
        img['id']:
        Sample(prefix + osp.splitext(img['file_name'])[0],
               cv2.imread(osp.join(img_dir, img['file_name'])))
        for img in data['images']
    }
    for a in data['annotations']:
        x, y, w, h = a['bbox']
        s = by_image[a['image_id']]
        s.boxes.append((x, y, x + w, y + h))
        s.labels.append(cat[a['category_id']])
        s.polygons.append(a.get('segmentation'))
    return list(by_image.values())


def _write_image(path: str, image: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, image), path


def write_coco(root: str,
               splits: dict,
               classes: Sequence[str],
               masks: str = 'none') -> dict:
    """``annotations/instances_<split>.json`` + ``images/<split>/``.
    ``masks``: 'none', 'all' or 'mixed' (every other image has them)."""
    files = {}
    for split, samples in splits.items():
        images, annotations = [], []
        for i, s in enumerate(samples):
            name = s.name + '.jpg'
            _write_image(osp.join(root, 'images', split, name), s.image)
            h, w = s.image.shape[:2]
            images.append(dict(id=i + 1, file_name=name, width=w, height=h))
            for box, label, poly in zip(s.boxes, s.labels, s.polygons):
                x1, y1, x2, y2 = box
                ann = dict(
                    id=len(annotations) + 1,
                    image_id=i + 1,
                    category_id=label + 1,
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    area=(x2 - x1) * (y2 - y1),
                    iscrowd=0)
                if masks == 'all' or (masks == 'mixed' and i % 2 == 0):
                    ann['segmentation'] = [poly] if isinstance(
                        poly[0], (int, float)) else poly
                annotations.append(ann)
        path = osp.join(root, 'annotations', f'instances_{split}.json')
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(
                dict(
                    images=images,
                    annotations=annotations,
                    categories=[
                        dict(id=i + 1, name=c) for i, c in enumerate(classes)
                    ]), f)
        files[split] = path
    return files


def voc_xml(s: Sample, classes: Sequence[str], filename: str) -> str:
    h, w = s.image.shape[:2]
    depth = 1 if s.image.ndim == 2 else 3
    objects = ''.join(
        f'<object><name>{classes[lab]}</name><difficult>0</difficult>'
        f'<bndbox><xmin>{int(x1) + 1}</xmin><ymin>{int(y1) + 1}</ymin>'
        f'<xmax>{int(round(x2))}</xmax><ymax>{int(round(y2))}</ymax>'
        '</bndbox></object>'
        for (x1, y1, x2, y2), lab in zip(s.boxes, s.labels))
    return (f'<annotation><filename>{filename}</filename><size><width>{w}'
            f'</width><height>{h}</height><depth>{depth}</depth></size>'
            f'{objects}</annotation>\n')


def write_voc(root: str,
              splits: dict,
              classes: Sequence[str],
              devkit: bool = True) -> str:
    """VOCdevkit/VOC2007 (``ImageSets/Main/<split>.txt``), or a bare
    folder of images and XML files (all splits together). Returns the
    folder of the XML files."""
    year = osp.join(root, 'VOCdevkit', 'VOC2007') if devkit else root
    ann_dir = osp.join(year, 'Annotations') if devkit else root
    img_dir = osp.join(year, 'JPEGImages') if devkit else root
    os.makedirs(ann_dir, exist_ok=True)
    for split, samples in splits.items():
        for s in samples:
            _write_image(osp.join(img_dir, s.name + '.jpg'), s.image)
            with open(osp.join(ann_dir, s.name + '.xml'), 'w') as f:
                f.write(voc_xml(s, classes, s.name + '.jpg'))
        if devkit:
            main = osp.join(year, 'ImageSets', 'Main')
            os.makedirs(main, exist_ok=True)
            with open(osp.join(main, f'{split}.txt'), 'w') as f:
                f.write(''.join(s.name + '\n' for s in samples))
    return ann_dir


def write_yolo(root: str,
               splits: dict,
               classes: Sequence[str],
               names: str = 'yaml') -> None:
    """``images/<split>/``, ``labels/<split>/*.txt`` and ``data.yaml``
    (``names='yaml'``) or ``classes.txt``."""
    for split, samples in splits.items():
        for s in samples:
            _write_image(
                osp.join(root, 'images', split, s.name + '.jpg'), s.image)
            h, w = s.image.shape[:2]
            lines = [
                f'{lab} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} '
                f'{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}'
                for (x1, y1, x2, y2), lab in zip(s.boxes, s.labels)
            ]
            path = osp.join(root, 'labels', split, s.name + '.txt')
            os.makedirs(osp.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                f.write('\n'.join(lines) + '\n')
    if names == 'yaml':
        with open(osp.join(root, 'data.yaml'), 'w') as f:
            f.write('path: ../datasets/x\ntrain: images/train\n' +
                    ('val: images/val\n' if 'val' in splits else '') +
                    f'nc: {len(classes)}\nnames: {list(classes)}\n')
    else:
        with open(osp.join(root, 'classes.txt'), 'w') as f:
            f.write('\n'.join(classes) + '\n')


def write_seg(root: str,
              splits: dict,
              classes: Sequence[str],
              palette: Optional[list] = None) -> None:
    """``classes.txt``, ``img_dir/<split>/*.jpg`` and ``ann_dir/<split>/
    *.png``: palette PNGs (mode P) when ``palette`` is given, else grey
    index maps. Class 0 is the background, object ``label`` is ``label +
    1``."""
    from PIL import Image
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, 'classes.txt'), 'w') as f:
        f.write('\n'.join(classes) + '\n')
    for split, samples in splits.items():
        for s in samples:
            _write_image(
                osp.join(root, 'img_dir', split, s.name + '.jpg'), s.image)
            h, w = s.image.shape[:2]
            label = np.zeros((h, w), np.uint8)
            for poly, lab in zip(s.polygons, s.labels):
                pts = np.array(poly).reshape(-1, 2).round().astype(np.int32)
                cv2.fillPoly(label, [pts], lab + 1)
            path = osp.join(root, 'ann_dir', split, s.name + '.png')
            os.makedirs(osp.dirname(path), exist_ok=True)
            if palette is None:
                img = Image.fromarray(label)
            else:
                img = Image.frombytes('P', (w, h), label.tobytes())
                # 256 colours, as VOC's: a shorter palette lets PIL store
                # fewer bits per pixel
                flat = [v for c in palette for v in c]
                img.putpalette(flat + [0] * (768 - len(flat)))
            img.save(path)


def write_imagefolder(root: str, splits: dict) -> None:
    """``<split>/<class>/*.jpg`` from ``{split: {class: [images]}}``."""
    for split, by_class in splits.items():
        for cls, images in by_class.items():
            for i, img in enumerate(images):
                _write_image(
                    osp.join(root, split, cls, f'{cls}_{i:03d}.jpg'), img)


def crops(samples: List[Sample], classes: Sequence[str], size: int = 48):
    """One crop per object, by class: a classification set from tiles."""
    out = {c: [] for c in classes}
    for s in samples:
        for (x1, y1, x2, y2), lab in zip(s.boxes, s.labels):
            crop = s.image[int(y1):int(y2), int(x1):int(x2)]
            if crop.size:
                out[classes[lab]].append(cv2.resize(crop, (size, size)))
    return out


def run_fails(argv, capsys) -> str:
    """``mmgate.finetune.run(argv)`` ends with exit code 1 and one error
    line; that line without its ``finetune.py: error:`` prefix."""
    import pytest

    from mmgate.finetune import run
    with pytest.raises(SystemExit) as exc:
        run(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('finetune.py: error: ')
    return err[-1][len('finetune.py: error: '):]
