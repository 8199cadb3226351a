"""The text of a fine-tuning config, and of its plain twin.

A written config inherits its recipe (``_base_``) and sets only what the
data need, in four blocks: the data (classes, paths, the pipelines written
out, so that the image scale is in the file), the model (every head's
``num_classes``; the backbone of a stock recipe or of the plain CPU twin;
``--weights``; no mask head for a box-only recipe), the schedule scaled to
the dataset (:class:`~mmgate.finetune.recipes.Schedule`) and
``auto_scale_lr``, and ``runner_type = 'mmgate.Runner'``.

Example:
    >>> text = render_config(spec, source, sched, 'skipresnet18')
    ... # doctest: +SKIP
    >>> "runner_type = 'mmgate.Runner'" in text  # doctest: +SKIP
    True
"""
import copy
import os.path as osp
import textwrap
from typing import List, Optional

from mmgate.datasets import DatasetSpec
from .recipes import RecipeSource, Schedule, load_config

__all__ = ['render_config', 'render_twin_config', 'backbone_weights']

# transforms whose ``scale`` is the image scale of a detection pipeline
RESIZES = ('Resize', 'RandomResize', 'RandomChoiceResize')


def _py(value) -> str:
    """A config value as Python source (dicts as ``dict(...)``)."""
    if isinstance(value, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in value):
            return 'dict(' + ', '.join(f'{k}={_py(v)}'
                                       for k, v in value.items()) + ')'
        return '{' + ', '.join(f'{_py(k)}: {_py(v)}'
                               for k, v in value.items()) + '}'
    if isinstance(value, list):
        return '[' + ', '.join(_py(v) for v in value) + ']'
    if isinstance(value, tuple):
        inner = ', '.join(_py(v) for v in value)
        return f'({inner},)' if len(value) == 1 else f'({inner})'
    if isinstance(value, (str, int, float, bool)) or value is None:
        return repr(value)
    raise TypeError(f'cannot write {type(value).__name__} {value!r} into a '
                    'config')


def _format(text: str) -> str:
    """Config source in MMEngine's dump style (yapf, pep8 based)."""
    from yapf.yapflib.yapf_api import FormatCode
    style = dict(
        based_on_style='pep8',
        column_limit=79,
        blank_line_before_nested_class_or_def=True,
        split_before_expression_after_opening_paren=True)
    return FormatCode(text, style_config=style)[0]


def _comment(*paragraphs: str) -> List[str]:
    """Comment lines of at most 79 characters."""
    lines = []
    for text in paragraphs:
        lines += textwrap.wrap(
            text, 77, break_long_words=False, break_on_hyphens=False) or ['']
    return ['# ' + line if line else '#' for line in lines]


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f'{n} {word}'
    return f'{n} {word}es' if word.endswith('s') else f'{n} {word}s'


def _neck_channels(backbone: dict) -> List[int]:
    depth = backbone.get('depth', 50)
    width = backbone.get('base_channels', 64)
    expansion = 1 if depth in (18, 34) else 4
    return [width * expansion * 2**i for i in range(4)]


def _dir(path: str) -> str:
    return path.rstrip('/') + '/' if path else ''


def _leaf(dataset):
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset


def backbone_weights(weights: str, gated: bool) -> dict:
    """``init_cfg`` of ``--weights``: a gated backbone takes a plain ResNet
    file too (its trunk loads strictly, the gates start new:
    ``new_gates``)."""
    cfg = dict(type='Pretrained', checkpoint=weights)
    if gated:
        cfg['new_gates'] = True
    return cfg


# ---- pipelines ----------------------------------------------------------


def _det_pipelines(source: RecipeSource):
    """The recipe's train / test pipelines; a CPU backbone in a stock
    recipe takes the demo's resize steps; a box-only recipe loads no
    masks."""
    base = load_config(source.config)
    pipes = [
        copy.deepcopy(_leaf(base[f'{p}_dataloader'].dataset).pipeline)
        for p in ('train', 'test')
    ]
    if source.schedule_config != source.config:
        demo = load_config(source.schedule_config)
        for i, p in enumerate(('train', 'test')):
            resizes = [
                t for t in _leaf(demo[f'{p}_dataloader'].dataset).pipeline
                if t['type'] in RESIZES
            ]
            first = next(j for j, t in enumerate(pipes[i])
                         if t['type'] in RESIZES)
            pipes[i] = [
                t for t in pipes[i][:first] if t['type'] not in RESIZES
            ] + copy.deepcopy(resizes) + [
                t for t in pipes[i][first:] if t['type'] not in RESIZES
            ]
    if not source.recipe.masks:
        for pipe in pipes:
            for t in pipe:
                if t['type'] == 'LoadAnnotations':
                    t['with_mask'] = False
                    t.pop('poly2mask', None)
    return pipes


def _seg_pipelines(spec: DatasetSpec, source: RecipeSource):
    base = load_config(source.config)
    pipes = [
        copy.deepcopy(_leaf(base[f'{p}_dataloader'].dataset).pipeline)
        for p in ('train', 'test')
    ]
    if spec.layout != 'ade20k':
        for pipe in pipes:
            for t in pipe:
                if t['type'] == 'LoadAnnotations':
                    t['reduce_zero_label'] = False
    return pipes


# MMPretrain's ImageNet fine-tuning pipeline, for a recipe that reads
# decoded arrays (CIFAR) when the data are image files
CLS_FILE_PIPELINES = ([
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs')
], [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs')
])


def _cls_pipelines(source: RecipeSource):
    base = load_config(source.config)
    pipes = [
        copy.deepcopy(_leaf(base[f'{p}_dataloader'].dataset).pipeline)
        for p in ('train', 'test')
    ]
    if pipes[0][0].get('type') != 'LoadImageFromFile':
        return copy.deepcopy(list(CLS_FILE_PIPELINES)), True
    return pipes, False


def _scale_note(pipes) -> str:
    """What sets the image scale in the train and test pipelines."""
    parts = []
    for name, pipe in zip(('train', 'test'), pipes):
        steps = [
            f'{t["type"]} {k}={v!r}' for t in pipe for k, v in t.items()
            if k in ('scale', 'crop_size')
        ]
        parts.append(f'{name} {", ".join(steps) or "as loaded"}')
    return '; '.join(parts)


# ---- blocks of the config -----------------------------------------------


def _header(spec: DatasetSpec, source: RecipeSource, title: str,
            recipe_note: str, scale: str) -> List[str]:
    n_val = len(spec.val.images)
    lines = _comment(
        title, '',
        f'Written by mmgate-finetune (tools/finetune.py) for {spec.root} '
        f'({spec.layout} layout: {_plural(len(spec.classes), "class")}, '
        f'{spec.num_train} train / {n_val} val images). It inherits the '
        f'recipe {source.config} and changes only what the data need: the '
        'classes and every head\'s num_classes, the data paths and '
        'pipelines, a schedule scaled to the dataset size and '
        'auto_scale_lr.', '', recipe_note + '.', '', f'Image scale: {scale}' +
        (f' (the CPU demo recipe\'s, {source.schedule_config}).' if source.cpu
         else '.'), '', 'The file is yours to edit. Train and test it with')
    lines += [
        '#   python tools/train.py THIS_FILE --work-dir DIR '
        '[--resume]',
        '#   python tools/test.py THIS_FILE DIR/<checkpoint>.pth '
        '--work-dir DIR'
    ]
    if source.cpu:
        lines += ['#'] + _comment(
            'The backbone is the CPU demo\'s SkipResNet-18 (or its plain '
            'twin): half width, from scratch, with the demo recipes\' image '
            'scale, batch and schedule. For real data use skipresnet50 '
            '(published ImageNet weights).')
    return lines


def _ann(path: str) -> str:
    """An annotation path as config source: relative to ``data_root``,
    or absolute (a file in the work directory)."""
    return repr(path) if osp.isabs(path) else f'data_root + {path!r}'


def _loader_opts(source: RecipeSource, phase: str) -> str:
    loader = load_config(source.schedule_config)[f'{phase}_dataloader']
    return (f'batch_size={loader.batch_size}, '
            f'num_workers={loader.num_workers}, ')


def _det_data(spec: DatasetSpec, source: RecipeSource) -> List[str]:
    p = spec.paths

    def dataset(split, pipeline):
        return (f"data_root=data_root, metainfo=metainfo, "
                f"ann_file={_ann(p[split + '_ann'])}, "
                f"data_prefix=dict(img='{_dir(p[split + '_img'])}'), "
                f'pipeline={pipeline}')

    wrapper = load_config(source.config).train_dataloader.dataset
    lines = []
    if wrapper.get('type') == 'RepeatDataset':
        lines += _comment(
            f'The recipe repeats its data {wrapper.times}x per epoch '
            '(RepeatDataset); here an epoch is one pass over the train set.')
        train = (f'dataset=dict(times=1, dataset=dict('
                 f'{dataset("train", "train_pipeline")}))')
    else:
        train = f'dataset=dict({dataset("train", "train_pipeline")})'
    metric = "['bbox', 'segm']" if source.recipe.masks else "'bbox'"
    return lines + [
        f'train_dataloader = dict({_loader_opts(source, "train")}{train})',
        f'val_dataloader = dict({_loader_opts(source, "val")}'
        f'dataset=dict({dataset("val", "test_pipeline")}))',
        'test_dataloader = val_dataloader',
        f"val_evaluator = dict(ann_file={_ann(p['val_ann'])}, "
        f'metric={metric})', 'test_evaluator = val_evaluator'
    ]


def _seg_data(spec: DatasetSpec) -> List[str]:
    p = spec.paths
    extra = ''
    if spec.layout != 'ade20k':
        extra = (f", type='BaseSegDataset', img_suffix='{spec.img_suffix}', "
                 "seg_map_suffix='.png', reduce_zero_label=False")

    def dataset(split, pipeline):
        ann = f', ann_file={_ann(p[split + "_ann"])}' \
            if split + '_ann' in p else ''
        return (f"dataset=dict(data_root=data_root, metainfo=metainfo, "
                f"data_prefix=dict(img_path='{p[split + '_img']}', "
                f"seg_map_path='{p[split + '_seg']}'){ann}{extra}, "
                f'pipeline={pipeline})')

    lines = []
    if spec.layout != 'ade20k':
        lines += _comment('the label maps hold class indices (255 = '
                          'ignore): no reduce_zero_label as for ADE20k')
    return lines + [
        f'train_dataloader = dict({dataset("train", "train_pipeline")})',
        f'val_dataloader = dict({dataset("val", "test_pipeline")})',
        'test_dataloader = val_dataloader'
    ]


def _cls_data(spec: DatasetSpec) -> List[str]:
    p = spec.paths

    def dataset(split, pipeline):
        ann = _ann(p[split + '_ann']) if split + '_ann' in p else "''"
        return (f"dataset=dict(_delete_=True, type='CustomDataset', "
                f"data_root=data_root, data_prefix='{p[split + '_img']}', "
                f'ann_file={ann}, with_label=True, metainfo=metainfo, '
                f'pipeline={pipeline})')

    lines = [
        f'train_dataloader = dict({dataset("train", "train_pipeline")})',
        f'val_dataloader = dict({dataset("val", "test_pipeline")})',
        'test_dataloader = val_dataloader'
    ]
    if len(spec.classes) < 5:
        lines += [
            '# fewer than 5 classes: no top-5 accuracy',
            'val_evaluator = dict(topk=(1, ))',
            'test_evaluator = val_evaluator'
        ]
    return lines


def _det_heads(model_cfg, drop_masks: bool) -> List[str]:
    """``model = dict(...)`` parts that set every detection head's
    ``num_classes`` (and remove the mask head of a box-only recipe)."""
    parts = []
    roi = model_cfg.get('roi_head')
    if roi is not None:
        inner = []
        if isinstance(roi.get('bbox_head'), (list, tuple)):
            inner.append('bbox_head=[dict(head, num_classes=num_classes) '
                         'for head in _base_.model.roi_head.bbox_head]')
        elif roi.get('bbox_head') is not None:
            inner.append('bbox_head=dict(num_classes=num_classes)')
        if roi.get('mask_head') is not None:
            inner.append(
                'mask_roi_extractor=None, mask_head=None'
                if drop_masks else 'mask_head=dict(num_classes=num_classes)')
        parts.append(f'roi_head=dict({", ".join(inner)})')
    if model_cfg.get('bbox_head') is not None:
        parts.append('bbox_head=dict(num_classes=num_classes)')
    if not parts:
        raise ValueError('the recipe\'s model has no head with num_classes')
    return parts


def _schedule_lines(task: str, sched: Schedule, source: RecipeSource,
                    gpus: int, num_train: int) -> List[str]:
    passes = f'{sched.recipe_epochs:.4g}'
    lines = ['', '# ---- schedule ' + '-' * 63] + _comment(
        f'{_plural(sched.epochs, "pass")} over the {num_train} train images '
        f'(the recipe makes {passes} over its own train set), '
        f'{_plural(sched.iters_per_epoch, "iteration")} each at '
        f'{sched.batch} images per iteration ({_plural(gpus, "GPU")} x '
        f'{sched.batch // gpus}): {_plural(sched.iters, "iteration")}.')
    if task == 'det':
        steps = ', '.join(f'max_iters * {m} // {end}'
                          for m, end in sched.milestones)
        lines += [
            f'max_epochs = {sched.length}',
            f'iters_per_epoch = {sched.iters_per_epoch}',
            'max_iters = max_epochs * iters_per_epoch',
            'train_cfg = dict(max_epochs=max_epochs, '
            f'val_interval={sched.val_interval})',
            *_comment('lr steps at the recipe\'s fractions of the schedule, '
                      'in iterations; warm-up of the recipe\'s length, at '
                      'most a quarter of the schedule'), 'param_scheduler = ['
        ]
        if sched.warmup:
            lines.append(f"    dict(type='LinearLR', start_factor=0.001, "
                         f'by_epoch=False, begin=0, end={sched.warmup}),')
        lines += [
            "    dict(type='MultiStepLR', by_epoch=False, begin=0, "
            f'end=max_iters, milestones=[{steps}], gamma=0.1)', ']'
        ]
    elif task == 'seg':
        lines += [
            f'max_iters = {sched.length}',
            'train_cfg = dict(max_iters=max_iters, '
            f'val_interval={sched.val_interval})',
            "param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9,"
            ' begin=0, end=max_iters, by_epoch=False)]'
        ]
    else:
        lines += [
            f'max_epochs = {sched.length}',
            'train_cfg = dict(max_epochs=max_epochs, '
            f'val_interval={sched.val_interval})',
            *_comment('warm-up of the recipe\'s length (at most a quarter '
                      'of the schedule), then cosine to 0'),
            'param_scheduler = ['
        ]
        if sched.warmup:
            lines.append(
                "    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, "
                f'begin=0, end={sched.warmup}, convert_to_iter_based=True),')
        lines += [
            "    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, "
            f'begin={sched.warmup}, end=max_epochs, '
            'convert_to_iter_based=True)', ']'
        ]
    lines += [
        f'default_hooks = dict(checkpoint=dict(interval={sched.val_interval},'
        ' max_keep_ckpts=2))', '',
        *_comment(f'The recipe\'s lr is set for {source.batch} images per '
                  'iteration: MMEngine scales it linearly to the batch of '
                  'the run, GPUs x images per GPU (the linear scaling rule, '
                  'Goyal et al., 2017, arXiv:1706.02677).'),
        f'auto_scale_lr = dict(enable=True, base_batch_size={source.batch})',
        '', *_comment('mmgate\'s Runner: safe checkpoint reading, atomic '
                      'checkpoints, a stop at the first non-finite loss '
                      '(mmgate.engine.Runner).'),
        "runner_type = 'mmgate.Runner'"
    ]
    return lines


def _model_lines(spec: DatasetSpec, source: RecipeSource,
                 weights: Optional[str], gated: bool) -> List[str]:
    task = spec.task
    lines, model = ['', '# ---- model ' + '-' * 66], []
    if source.backbone is not None:
        bb = dict(source.backbone)
        if weights:
            bb['init_cfg'] = backbone_weights(weights, gated)
        lines += _comment(f'backbone: {source.backbone_note}')
        model.append(f'backbone=dict(_delete_=True, {_py(bb)[5:-1]})')
        if source.recipe.stock:
            model.append(f'neck=dict(in_channels={_neck_channels(bb)})')
    elif weights:
        lines += _comment('backbone weights given to tools/finetune.py' + (
            ': a plain ResNet file gives the trunk (loaded strictly), the '
            'gates start new (new_gates)' if gated else ''))
        # the recipe's init_cfg may be None (a CPU backbone from scratch)
        init = dict(_delete_=True, **backbone_weights(weights, gated))
        model.append(f'backbone=dict(init_cfg={_py(init)})')
    cfg = load_config(source.config)
    if task == 'det':
        model += _det_heads(cfg.model, source.recipe.drop_masks)
    elif task == 'seg':
        model.append('decode_head=dict(num_classes=num_classes)')
        if cfg.model.get('auxiliary_head') is not None:
            model.append('auxiliary_head=dict(num_classes=num_classes)')
    else:
        head = 'head=dict(num_classes=num_classes'
        head += ', topk=(1, ))' if len(spec.classes) < 5 else ')'
        model.append(head)
    return lines + [f'model = dict({", ".join(model)})']


def render_config(spec: DatasetSpec,
                  source: RecipeSource,
                  sched: Schedule,
                  backbone: str,
                  gpus: int = 1,
                  weights: Optional[str] = None,
                  gated: bool = False,
                  recipe_note: str = '') -> str:
    """The text of the fine-tuning config of ``backbone`` on ``spec``.

    Args:
        spec (DatasetSpec): The dataset.
        source (RecipeSource): The recipe it inherits.
        sched (Schedule): The scaled schedule.
        backbone (str): Backbone name (for the title).
        gpus (int): GPUs the schedule was computed for.
        weights (str, optional): Backbone weights (path or URL) in place of
            the recipe's.
        gated (bool): A gated backbone (``weights`` may be a plain ResNet
            file).
        recipe_note (str): The line that says which recipe and why.
    """
    task = spec.task
    files = True
    if task == 'det':
        pipes = _det_pipelines(source)
    elif task == 'seg':
        pipes = _seg_pipelines(spec, source)
    else:
        pipes, arrays = _cls_pipelines(source)
        files = not arrays
    title = (f'{source.recipe.name} + {backbone} fine-tuned on {spec.name} '
             f'({len(spec.classes)} classes)')
    lines = _header(spec, source, title, recipe_note
                    or f'recipe: {source.recipe.name}', _scale_note(pipes))
    lines += [
        '', f"_base_ = '{source.config}'", '', '# ---- data ' + '-' * 67,
        f"data_root = '{_dir(spec.root)}'"
    ]
    meta = f'classes={_py(tuple(spec.classes))}'
    if spec.palette:
        meta += f', palette={_py(spec.palette)}'
    lines += [f'metainfo = dict({meta})', f'num_classes = {len(spec.classes)}']
    if not files:
        lines += _comment('The recipe reads decoded arrays (CIFAR); images '
                          "from files get MMPretrain's ImageNet fine-tuning "
                          'pipeline and load as BGR (to_rgb below).')
    lines += [
        f'train_pipeline = {_py(pipes[0])}', f'test_pipeline = {_py(pipes[1])}'
    ]
    if task == 'det':
        lines += _det_data(spec, source)
    elif task == 'seg':
        lines += _seg_data(spec)
    else:
        lines += _cls_data(spec)
    lines += _model_lines(spec, source, weights, gated)
    if task == 'cls':
        lines.append('data_preprocessor = dict(num_classes=num_classes' +
                     (')' if files else ', to_rgb=True)'))
    lines += _schedule_lines(task, sched, source, gpus, spec.num_train)
    return _format('\n'.join(lines) + '\n')


def render_twin_config(gated_name: str,
                       backbone: dict,
                       note: str,
                       weights: Optional[str] = None,
                       neck: bool = False) -> str:
    """The plain twin of a written gated config: it inherits it and
    swaps only the backbone (``note`` says where that comes from), so that
    the two differ in nothing else."""
    bb = dict(backbone)
    if weights:
        bb['init_cfg'] = backbone_weights(weights, gated=False)
    lines = _comment(
        f'Plain twin of {gated_name}.py for base-vs-gated comparisons '
        '(tools/finetune.py --compare base): the same config with '
        f'{note}. Written by mmgate-finetune; yours to edit.') + [
            f"_base_ = './{gated_name}.py'", '',
            f'model = dict(backbone=dict(_delete_=True, {_py(bb)[5:-1]})' +
            (f', neck=dict(in_channels={_neck_channels(bb)}))'
             if neck else ')')
        ]
    return _format('\n'.join(lines) + '\n')
