"""Pascal VOC detection data (XML per image), converted to COCO JSON.

Two layouts:

- ``voc``: the VOCdevkit layout, ``VOCdevkit/VOC2007/`` (or the year folder
  itself): ``Annotations/*.xml``, ``JPEGImages/``, and the splits in
  ``ImageSets/Main/``: ``train.txt`` + ``val.txt``, else ``trainval.txt``
  + ``test.txt`` (train on trainval, validate on test, as MMDetection's VOC
  recipes do), else one list (or none: every XML) and a val split made;
- ``voc-folder``: a bare folder of images and their XML files (as LabelImg
  writes them), all train, a val split made. An image without an XML file
  is an image without objects.

The classes are the lines of ``classes.txt`` when the folder has one (an
object of another name is an error), else the object names found, sorted
(VOC's 20 classes are in alphabetical order already).

Why COCO and not MMDetection's ``VOCDataset`` / ``VOCMetric``: one dataset
class and one metric for every detection layout, so that runs on VOC, YOLO
and COCO data report the same numbers (COCO mAP@[.5:.95], AP50) and the
benchmark report compares them; ``VOCDataset`` also needs the devkit's
``VOC2007`` / ``VOC2012`` folder names, which a bare folder lacks. The
conversion follows ``VOCDataset``'s reading of an XML file: box
``[xmin - 1, ymin - 1, xmax, ymax]`` (VOC pixels count from 1), and a
``difficult`` object is ignored in training and evaluation (COCO
``iscrowd=1``, as ``VOCDataset`` sets its ``ignore_flag`` and ``VOCMetric``
skips it).

Records, decided per case (a :class:`~mmgate.datasets.checks.DataError`
names the XML file and the object; a
:class:`~mmgate.datasets.checks.DataWarning` names what is dropped or
changed):

- an XML file that does not parse (truncated), an object without a name or
  a complete ``bndbox``, a ``<size>`` that is not the image's: error;
- ``xmax < xmin`` or ``ymax < ymin`` (negative size): error;
- an object name that ``classes.txt`` does not list: error;
- an image that does not exist or whose header does not read: error;
- a box wholly outside its image: dropped with a warning (MMDetection's
  ``CocoDataset`` drops it);
- a box that reaches beyond its image: clipped to it, one warning per
  split.

Example:
    >>> spec = read_voc('data/VOCdevkit', work_dir='work')  # doctest: +SKIP
    >>> spec.paths['train_ann']  # doctest: +SKIP
    'work/data/instances_train.json'
"""
import glob
import os
import os.path as osp
import warnings
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Tuple

from .checks import DataError, DataWarning
from .class_list import read_class_file
from .coco import CocoSplit, coco_categories, det_spec
from .spec import DatasetSpec
from .split_checks import image_size
from .splits import VAL_FRACTION

__all__ = [
    'IMAGE_EXTENSIONS', 'find_voc_root', 'read_voc', 'clip_boxes_warning'
]

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# ImageSets/Main lists, in the order they are taken: (train, val)
SPLIT_LISTS = (('train', 'val'), ('trainval', 'test'), ('trainval', None),
               ('train', None))


def find_voc_root(root: str) -> Optional[str]:
    """The year folder (``Annotations/`` + ``JPEGImages/``) of a VOCdevkit
    layout under ``root`` (``root`` itself, ``root/VOC*``,
    ``root/VOCdevkit/VOC*``), or None.

    Raises:
        DataError: Several year folders.
    """

    def is_year(path):
        return all(
            osp.isdir(osp.join(path, d))
            for d in ('Annotations', 'JPEGImages'))

    if is_year(root):
        return root
    found = [
        d for pattern in ('VOC*', osp.join('VOCdevkit', 'VOC*'))
        for d in sorted(glob.glob(osp.join(root, pattern))) if is_year(d)
    ]
    if len(found) > 1:
        raise DataError(f'{root} holds several VOC folders '
                        f'({", ".join(found)}): pass one of them')
    return found[0] if found else None


def clip_boxes_warning(source: str, clipped: List[str]) -> None:
    """One warning for the boxes of a split clipped to their images."""
    if clipped:
        shown = ', '.join(clipped[:3]) + (f' (+{len(clipped) - 3} more)'
                                          if len(clipped) > 3 else '')
        warnings.warn(
            f'{source}: {len(clipped)} boxes reach beyond their image and '
            f'are clipped to it: {shown}',
            DataWarning,
            stacklevel=3)


def _text(node, tag: str, xml: str, what: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DataError(f'{xml}: {what} has no <{tag}>')
    return child.text.strip()


def _number(node, tag: str, xml: str, what: str) -> float:
    text = _text(node, tag, xml, what)
    try:
        return float(text)
    except ValueError:
        raise DataError(f'{xml}: {what} <{tag}> is "{text}", not a '
                        'number') from None


def _parse(xml: str) -> ET.Element:
    try:
        return ET.parse(xml).getroot()
    except ET.ParseError as e:
        raise DataError(f'{xml} is not valid XML ({e}): is the file cut '
                        'off?') from None


def _find_image(xml: str, tree: ET.Element, img_dir: str) -> str:
    """The image of an XML file: its ``<filename>`` in ``img_dir``, else
    the XML's name with an image extension."""
    stem = osp.splitext(osp.basename(xml))[0]
    name = tree.findtext('filename')
    tried = []
    if name and name.strip():
        tried.append(osp.join(img_dir, name.strip()))
    tried += [osp.join(img_dir, stem + ext) for ext in IMAGE_EXTENSIONS]
    for path in tried:
        if osp.isfile(path):
            return path
    raise DataError(f'{xml}: its image does not exist (tried {tried[0]} '
                    f'and {stem}.<jpg|png|...> in {img_dir})')


def _objects(xml: str, tree: ET.Element) -> List[dict]:
    objects = []
    for i, obj in enumerate(tree.findall('object')):
        what = f'object[{i}]'
        name = _text(obj, 'name', xml, what)
        box = obj.find('bndbox')
        if box is None:
            raise DataError(f'{xml}: {what} ({name}) has no <bndbox>')
        coords = [
            _number(box, t, xml, f'{what} ({name}) bndbox')
            for t in ('xmin', 'ymin', 'xmax', 'ymax')
        ]
        difficult = obj.findtext('difficult')
        objects.append(
            dict(
                index=i,
                name=name,
                box=coords,
                difficult=bool(difficult and int(float(difficult)))))
    return objects


def _convert(xmls: List[str], img_dir: str, classes: Optional[tuple],
             class_file: Optional[str]):
    """Parse ``xmls`` (and find their images, read their sizes): COCO
    ``images`` and per-image objects (class names not yet ids)."""
    images, records, clipped = [], [], []
    for xml in xmls:
        tree = _parse(xml)
        path = _find_image(xml, tree, img_dir)
        w, h = image_size(path)
        size = tree.find('size')
        if size is not None and size.findtext('width'):
            sw = int(_number(size, 'width', xml, '<size>'))
            sh = int(_number(size, 'height', xml, '<size>'))
            if (sw, sh) != (w, h) and (sw, sh) != (0, 0):
                raise DataError(f'{xml}: <size> says {sw}x{sh}, but its '
                                f'image {path} is {w}x{h} (width x height)')
        image_id = len(images) + 1
        images.append(
            dict(
                id=image_id,
                file_name=osp.relpath(path, img_dir),
                width=w,
                height=h))
        for obj in _objects(xml, tree):
            where = f'{xml}: object[{obj["index"]}] ({obj["name"]})'
            if classes is not None and obj['name'] not in classes:
                raise DataError(f'{where} is not a class of {class_file} '
                                f'({", ".join(classes)})')
            xmin, ymin, xmax, ymax = obj['box']
            if xmax < xmin or ymax < ymin:
                raise DataError(f'{where} has xmax < xmin or ymax < ymin '
                                f'(a box of negative size): {obj["box"]}')
            x1, y1, x2, y2 = xmin - 1, ymin - 1, xmax, ymax
            if x1 >= w or y1 >= h or x2 <= 0 or y2 <= 0:
                warnings.warn(
                    f'{where} has a box outside its {w}x{h} '
                    f'image: {obj["box"]}: the record is skipped, '
                    'as MMDetection does',
                    DataWarning,
                    stacklevel=2)
                continue
            box = [max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)]
            if box != [x1, y1, x2, y2]:
                clipped.append(f'{osp.basename(xml)} object[{obj["index"]}]')
            records.append((image_id, obj['name'], box, obj['difficult']))
    return images, records, clipped


def _coco(images, records, classes) -> dict:
    cat_id = {c: i + 1 for i, c in enumerate(classes)}
    annotations = []
    for image_id, name, (x1, y1, x2, y2), difficult in records:
        annotations.append(
            dict(
                id=len(annotations) + 1,
                image_id=image_id,
                category_id=cat_id[name],
                bbox=[x1, y1, x2 - x1, y2 - y1],
                area=(x2 - x1) * (y2 - y1),
                iscrowd=int(difficult)))
    return dict(
        images=images,
        annotations=annotations,
        categories=coco_categories(classes))


def _read_list(path: str) -> List[str]:
    with open(path, encoding='utf-8') as f:
        return [line.split()[0] for line in f if line.strip()]


def _devkit_splits(year: str) -> Tuple[Dict[str, List[str]], str]:
    """XML files per split from ``ImageSets/Main`` (else every XML as
    train), and what was taken."""
    main = osp.join(year, 'ImageSets', 'Main')
    ann_dir = osp.join(year, 'Annotations')
    for train, val in SPLIT_LISTS:
        lists = [train] + ([val] if val else [])
        if not all(osp.isfile(osp.join(main, f'{n}.txt')) for n in lists):
            continue
        out = {}
        for split, name in zip(('train', 'val'), lists):
            listed = osp.join(main, f'{name}.txt')
            xmls = []
            for image_id in _read_list(listed):
                xml = osp.join(ann_dir, image_id + '.xml')
                if not osp.isfile(xml):
                    raise DataError(f'{listed} lists {image_id}, but '
                                    f'{xml} does not exist')
                xmls.append(xml)
            out[split] = xmls
        return out, ' + '.join(f'ImageSets/Main/{n}.txt' for n in lists)
    xmls = sorted(glob.glob(osp.join(ann_dir, '*.xml')))
    return {'train': xmls}, 'every XML in Annotations/ (no ImageSets/Main)'


def _folder_splits(root: str) -> Tuple[Dict[str, List[str]], List[str]]:
    """A bare folder: every XML file as train; images without one."""
    xmls = sorted(glob.glob(osp.join(root, '*.xml')))
    stems = {osp.splitext(osp.basename(x))[0] for x in xmls}
    bare = sorted(
        f for f in os.listdir(root) if f.lower().endswith(IMAGE_EXTENSIONS)
        and osp.splitext(f)[0] not in stems)
    return {'train': xmls}, bare


def read_voc(root: str,
             work_dir: Optional[str] = None,
             val_fraction: float = VAL_FRACTION,
             seed: int = 0) -> DatasetSpec:
    """Read a Pascal VOC folder (VOCdevkit layout or a bare folder of
    images and XML files) as COCO data; see the module docstring.

    Raises:
        DataError: A broken XML file or record, a missing image, a class
            that ``classes.txt`` does not list, no XML file at all.
    """
    year = find_voc_root(root)
    if year is not None:
        layout, img_dir = 'voc', osp.join(year, 'JPEGImages')
        xml_splits, taken = _devkit_splits(year)
        bare = []
        source = osp.join(year, 'Annotations')
        class_files = [
            osp.join(year, 'classes.txt'),
            osp.join(root, 'classes.txt')
        ]
    else:
        layout, img_dir, source = 'voc-folder', root, root
        xml_splits, bare = _folder_splits(root)
        taken = 'every XML file'
        class_files = [osp.join(root, 'classes.txt')]
    if not xml_splits['train']:
        raise DataError(f'no XML annotation file in {source}')
    class_file = next((f for f in class_files if osp.isfile(f)), None)
    classes = read_class_file(class_file)[0] if class_file else None
    parsed = {}
    for split, xmls in xml_splits.items():
        images, records, clipped = _convert(xmls, img_dir, classes, class_file)
        clip_boxes_warning(f'{source} ({split})', clipped)
        parsed[split] = (images, records)
    for name in bare:  # images of a bare folder without an XML file
        w, h = image_size(osp.join(root, name))
        images = parsed['train'][0]
        images.append(
            dict(id=len(images) + 1, file_name=name, width=w, height=h))
    if classes is None:
        classes = tuple(
            sorted({r[1]
                    for _, recs in parsed.values()
                    for r in recs}))
        if not classes:
            raise DataError(f'the XML files in {source} hold no object')
    splits = {
        split:
        CocoSplit(
            _coco(images, records, classes), source,
            osp.relpath(img_dir, root))
        for split, (images, records) in parsed.items()
    }
    spec = det_spec(
        root,
        layout,
        splits,
        work_dir,
        val_fraction,
        seed,
        ann_source=f'the XML files in {source}')
    where = (f'classes from {class_file}'
             if class_file else 'classes: the object names found')
    spec.notes.insert(
        0, f'{layout} layout: {taken}, {where}; converted to COCO JSON: ' +
        ', '.join(sorted(spec.derived)))
    if bare:
        spec.notes.append(f'{len(bare)} images of {root} have no XML file: '
                          'they train as images without objects')
    return spec
