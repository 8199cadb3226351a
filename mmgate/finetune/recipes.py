"""Recipes a fine-tuning config inherits, the plain twins, and the schedule
scaled to a dataset.

A recipe (:data:`RECIPES`) is an mmgate config per backbone
(``configs/skipresnet/...``, ``{}`` the backbone's name) or one of
MMDetection's stock configs, which then gets the backbone of the mmgate
Cascade recipe of the same backbone. The backbones are the ones the
metafiles list with such a config; a gated backbone's plain twin is the
backbone of its model's ``Metadata.Baseline`` (``configs/*/metafile.yml``,
read by :mod:`mmgate.analysis.metafiles`). The CPU backbones
(:data:`CPU_BACKBONES`: half-width SkipResNet-18 and its plain twin, from
scratch; no published weights, so no metafile model) take the recipe's
demo config (``configs/demo/``): its image scale, batch and schedule in
every recipe.

Example:
    >>> src = resolve_recipe('det', 'retinanet', 'skipresnet18')
    ... # doctest: +SKIP
    >>> src.config, src.schedule_config  # doctest: +SKIP
    ('mmdet::retinanet/retinanet_r50_fpn_ms-640-800-3x_coco.py',
     '.../configs/demo/cascade_rcnn_skipresnet18_demo.py')
"""
import functools
import math
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

__all__ = [
    'Recipe', 'RECIPES', 'CPU_BACKBONES', 'RecipeSource', 'Schedule',
    'resource_dir', 'load_config', 'task_recipes', 'backbone_choices',
    'plain_twin', 'choose_recipe', 'resolve_recipe', 'recipe_epochs',
    'scale_schedule', 'schedule_of'
]

PKG_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


@dataclass(frozen=True)
class Recipe:
    """A training recipe of a task.

    Attributes:
        name (str): ``--recipe``.
        task (str): ``'det'``, ``'seg'`` or ``'cls'``.
        config (str): mmgate's config (``{}``: the backbone's name,
            relative to ``configs/``) or an ``mmdet::`` stock config.
        demo (str): The CPU demo config of its method (``configs/demo/``):
            the base for the CPU backbones, or for a stock recipe the
            source of their image scale, batch and schedule.
        batch (int): Images per iteration its lr and schedule are set for
            (``auto_scale_lr.base_batch_size``).
        masks (bool): It trains masks (every instance needs one).
        drop_masks (bool): ``config`` with its mask head and mask loading
            removed (the box-only twin of a mask recipe).
        backbone_from (str, optional): A stock recipe takes the backbone
            of this recipe's config.
        train_size (int, optional): Train images of an iteration-based
            recipe's own data (ADE20k: 20,210).
        demo_train_size (int, optional): The same for its demo config.
    """
    name: str
    task: str
    config: str
    demo: str
    batch: int
    masks: bool = False
    drop_masks: bool = False
    backbone_from: Optional[str] = None
    train_size: Optional[int] = None
    demo_train_size: Optional[int] = None

    @property
    def stock(self) -> bool:
        return '::' in self.config


CASCADE = dict(
    config='skipresnet/cascade-mask-rcnn_{}_fpn_ms-3x_coco.py',
    demo='demo/cascade_rcnn_skipresnet18_demo.py',
    batch=16)
# MMDetection's stock recipes take the backbone of mmgate's Cascade recipe
STOCK = dict(demo=CASCADE['demo'], batch=16, backbone_from='cascade-mask-rcnn')
#: Recipes by name; a task's first box and first mask recipe are its
#: defaults for box-only and mask data.
RECIPES = {
    r.name: r
    for r in (
        Recipe('cascade-rcnn', 'det', drop_masks=True, **CASCADE),
        Recipe('cascade-mask-rcnn', 'det', masks=True, **CASCADE),
        Recipe(
            'faster-rcnn',
            'det',
            **STOCK,
            config='mmdet::faster_rcnn/faster-rcnn_r50_fpn_ms-3x_coco.py'),
        Recipe(
            'retinanet',
            'det',
            **STOCK,
            config='mmdet::retinanet/retinanet_r50_fpn_ms-640-800-3x_coco.py'),
        Recipe(
            'mask-rcnn',
            'det',
            masks=True,
            **STOCK,
            config='mmdet::mask_rcnn/mask-rcnn_r50_fpn_ms-poly-3x_coco.py'),
        Recipe(
            'upernet',
            'seg',
            'skipresnet/upernet_{}_8xb2-160k_ade20k-512x512.py',
            'demo/upernet_skipresnet18_demo.py',
            16,
            train_size=20210,
            demo_train_size=160),
        Recipe('linear', 'cls',
               'skipresnet/{}_in1k-pre_8xb16-cos50e_cifar100-224px.py',
               'demo/cls_skipresnet18_demo.py', 128),
    )
}
#: The CPU demo backbone and its plain twin (half width, from scratch).
CPU_BACKBONES = ('skipresnet18', 'resnet18')


def resource_dir(name: str) -> str:
    """``configs`` or ``tools`` of the installed package (``mmgate/.mim/``,
    as setup.py places them), else of the checkout."""
    for path in (osp.join(PKG_DIR, '.mim',
                          name), osp.join(osp.dirname(PKG_DIR), name)):
        if osp.isdir(path):
            return osp.realpath(path)
    raise FileNotFoundError(f'mmgate\'s {name}/ folder is neither in '
                            f'{PKG_DIR}/.mim nor next to the package')


@functools.lru_cache(maxsize=None)
def load_config(path: str):
    """An mmgate config file or an ``mmdet::`` recipe (read once; do not
    change the returned config)."""
    if '::' in path:
        from mmengine.hub import get_config
        return get_config(path)
    from mmengine.config import Config
    return Config.fromfile(path)


def task_recipes(task: str) -> List[str]:
    return [r.name for r in RECIPES.values() if r.task == task]


def _recipe(task: str, name: str) -> Recipe:
    if name not in RECIPES or RECIPES[name].task != task:
        raise ValueError(f'{task} has no recipe {name}; choose from '
                         f'{", ".join(task_recipes(task))}')
    return RECIPES[name]


@functools.lru_cache(maxsize=None)
def _family(pattern: str) -> Tuple[Tuple[str, str, str], ...]:
    """``(backbone, config path, twin backbone or '')`` of every metafile
    model whose config is ``pattern`` (relative to ``configs/``) for some
    backbone; the twin is the backbone of its ``Metadata.Baseline``."""
    from mmgate.analysis.metafiles import load_model_index
    index = load_model_index()
    regex = re.compile('^' + re.escape(pattern).replace(r'\{\}', '([^_/]+)') +
                       '$')
    configs = resource_dir('configs')

    def backbone_of(model):
        if not model or not model.config_path:
            return None, None
        rel = osp.relpath(osp.realpath(model.config_path), configs)
        m = regex.match(rel.replace(osp.sep, '/'))
        return (m[1], model.config_path) if m else (None, None)

    out = []
    for model in index:
        name, path = backbone_of(model)
        if name is not None:
            twin = backbone_of(index.baseline_of(model))[0]
            out.append((name, path, twin or ''))
    return tuple(out)


def _pattern(recipe: Recipe) -> str:
    return RECIPES[recipe.backbone_from].config if recipe.backbone_from \
        else recipe.config


def backbone_choices(task: Optional[str] = None) -> List[str]:
    """``--backbone`` choices: the CPU backbones, then those the metafiles
    have a recipe config of (of ``task``, or of any task)."""
    names = list(CPU_BACKBONES)
    for r in RECIPES.values():
        if task in (None, r.task):
            for name, _, twin in _family(_pattern(r)):
                names += [n for n in (name, twin) if n and n not in names]
    return names


def plain_twin(task: str, recipe: str, backbone: str) -> str:
    """The plain twin of a gated backbone: the backbone of the metafile
    model's ``Metadata.Baseline`` (for the CPU backbone, its plain twin).

    Raises:
        ValueError: ``backbone`` is plain, or its model has no baseline.
    """
    if backbone in CPU_BACKBONES:
        if backbone != CPU_BACKBONES[0]:
            raise ValueError(f'--compare base needs a gated backbone; '
                             f'{backbone} is a plain one')
        return CPU_BACKBONES[1]
    for name, path, twin in _family(_pattern(_recipe(task, recipe))):
        if name == backbone:
            if not twin:
                raise ValueError(
                    f'--compare base needs a gated backbone with a plain '
                    f'twin; {backbone} ({path}) has no Metadata.Baseline in '
                    'its metafile (a plain backbone?)')
            return twin
    raise ValueError(f'no {recipe} recipe for {backbone}')


def choose_recipe(task: str,
                  recipe: Optional[str],
                  masks=None,
                  ann_source: str = '') -> Tuple[str, str]:
    """The recipe for the data, and the line that says why.

    Args:
        task (str): The task.
        recipe (str, optional): ``--recipe`` (None: the default for the
            data).
        masks (MaskCoverage, optional): Detection: what the annotations
            hold.
        ann_source (str): The annotations, as the error names them.

    Raises:
        ValueError: A mask recipe on data without a mask on every
            instance; the message names the annotations and the recipes
            that fit.
    """
    if task != 'det' or masks is None:
        name = recipe or task_recipes(task)[0]
        _recipe(task, name)
        return name, f'recipe: {name}'
    box = [r for r in task_recipes('det') if not RECIPES[r].masks]
    if recipe is None:
        if masks.kind == 'all':
            name = next(r for r in task_recipes('det') if RECIPES[r].masks)
            return name, (f'recipe: {name} (the annotations have masks: '
                          f'{masks.describe()})')
        why = masks.describe()
        if masks.kind == 'mixed':
            why += (': a mask head needs a mask on every instance '
                    "(MMDetection's LoadAnnotations fails on one without), "
                    'so the masks are not used; give the other '
                    f'{masks.instances - masks.with_masks} instances masks '
                    'to train them')
        return box[0], (f'recipe: {box[0]}, the box-only twin of '
                        f'cascade-mask-rcnn (no mask head): {why}')
    if _recipe('det', recipe).masks and masks.kind != 'all':
        raise ValueError(
            f'--recipe {recipe} trains masks, but {ann_source} '
            f'{"hold" if ann_source.startswith("the ") else "holds"} '
            f'{masks.describe()}; recipes that fit: {", ".join(box)}')
    if not RECIPES[recipe].masks and masks.kind != 'none':
        return recipe, (f'recipe: {recipe} (boxes only: the masks are not '
                        f'used; {masks.describe()})')
    return recipe, f'recipe: {recipe} ({masks.describe()})'


@dataclass
class RecipeSource:
    """The config a written config inherits, and what it must know of it.

    Attributes:
        recipe (Recipe): The recipe.
        config (str): The ``_base_`` (an absolute path or ``mmdet::...``).
        batch (int): Images per iteration its lr and schedule are set for.
        train_size (int, optional): Train images its iteration-based
            schedule was set for.
        schedule_config (str): The config whose schedule, batch and image
            scale the written config takes (``config``, or for a CPU
            backbone in a stock recipe the demo config).
        backbone (dict, optional): A backbone to write in place of the
            recipe's (stock recipes; the plain CPU backbone).
        backbone_note (str): Where ``backbone`` comes from.
        cpu (bool): A CPU backbone (the demo recipes' scale).
    """
    recipe: Recipe
    config: str
    batch: int
    train_size: Optional[int] = None
    schedule_config: str = ''
    backbone: Optional[dict] = None
    backbone_note: str = ''
    cpu: bool = False


def _plain_backbone(backbone: dict, task: str) -> Tuple[dict, List[str]]:
    """The plain ResNet / ResNeXt of a Skip backbone config: the same
    arguments, less those the plain class does not take (the gates')."""
    import inspect
    tname = backbone['type'].split('.')[-1]
    if not tname.startswith('Skip'):
        raise ValueError(f'{backbone["type"]} is not a Skip backbone')
    plain = tname[len('Skip'):]
    if task == 'det':
        from mmdet.models import backbones
    elif task == 'seg':
        from mmseg.models import backbones
    else:
        from mmpretrain.models import backbones
    params = inspect.signature(getattr(backbones, plain).__init__).parameters
    out, dropped = dict(type=plain), []
    for k, v in backbone.items():
        if k == 'type':
            continue
        if k in params:
            out[k] = v
        else:
            dropped.append(k)
    return out, dropped


def _config_of(recipe: Recipe, backbone: str) -> str:
    """mmgate's config of ``recipe`` for ``backbone`` (CPU backbones: the
    demo config)."""
    configs = resource_dir('configs')
    if backbone in CPU_BACKBONES:
        return osp.join(configs, recipe.demo)
    for name, path, _ in _family(recipe.config):
        if name == backbone:
            return path
    have = [n for n, _, _ in _family(recipe.config)]
    raise ValueError(
        f'no {recipe.name} recipe for {backbone} (no metafile model with '
        f'the config configs/{recipe.config.format(backbone)}); '
        f'{recipe.name} has recipes for '
        f'{", ".join(list(CPU_BACKBONES) + have)}')


def resolve_recipe(task: str, recipe: str, backbone: str) -> RecipeSource:
    """The recipe config a fine-tuning config of ``backbone`` inherits.

    Raises:
        ValueError: The task has no such recipe, or the recipe no config
            for the backbone.
    """
    r = _recipe(task, recipe)
    cpu = backbone in CPU_BACKBONES
    if r.stock:
        src = resolve_recipe(task, r.backbone_from, backbone)
        bb = src.backbone or load_config(src.config).model.backbone.to_dict()
        note = src.backbone_note or 'the backbone'
        return RecipeSource(
            r,
            r.config,
            src.batch if cpu else r.batch,
            schedule_config=src.config if cpu else r.config,
            backbone=bb,
            backbone_note=f'{note} of {src.config}',
            cpu=cpu)
    path = _config_of(r, backbone)
    src = RecipeSource(r, path, r.batch, r.train_size, path, cpu=cpu)
    if cpu:
        demo = load_config(path)
        src.batch = demo.train_dataloader.batch_size
        src.train_size = r.demo_train_size
        if backbone != CPU_BACKBONES[0]:
            gated = demo.model.backbone.to_dict()
            src.backbone, dropped = _plain_backbone(gated, task)
            src.backbone_note = (
                f'the {gated["type"]} as a plain {src.backbone["type"]}' +
                (f' (less {", ".join(dropped)})' if dropped else ''))
    return src


# ---- schedule ---------------------------------------------------------------


@dataclass
class Schedule:
    """A recipe's schedule scaled to a dataset.

    The written schedule makes as many passes over the user's train set as
    the recipe makes over its own (its epochs; for an iteration-based
    recipe, iterations x images per iteration / train images), unless
    ``--epochs`` says otherwise. Learning-rate steps stay at the recipe's
    fractions of the schedule; warm-up keeps the recipe's length but takes
    at most a quarter of the schedule.

    Attributes:
        epochs (int): Passes over the train set.
        recipe_epochs (float): The recipe's passes over its own train set.
        batch (int): Images per iteration (GPUs x images per GPU).
        iters_per_epoch (int): Iterations of one pass.
        by_epoch (bool): Epoch-based loop (else iteration-based).
        length (int): ``max_epochs`` or ``max_iters``.
        warmup (int): Warm-up length (iterations for detection, epochs for
            classification, none for segmentation); 0 for none.
        milestones (list[tuple[int, int]]): The lr steps as fractions
            ``(numerator, denominator)`` of the schedule (detection), as
            the recipe has them (``9 / 12``, ``11 / 12``).
        val_interval (int): Validate and save a checkpoint every this many
            epochs / iterations (and at the end).
    """
    epochs: int
    recipe_epochs: float
    batch: int
    iters_per_epoch: int
    by_epoch: bool
    length: int
    warmup: int = 0
    milestones: List[Tuple[int, int]] = field(default_factory=list)
    val_interval: int = 1

    @property
    def iters(self) -> int:
        return self.length * self.iters_per_epoch if self.by_epoch \
            else self.length


def _scheduler(cfg, type_name: str) -> Optional[dict]:
    for s in cfg.get('param_scheduler') or []:
        if s.get('type') == type_name:
            return s
    return None


def recipe_epochs(task: str, cfg, source: RecipeSource) -> float:
    """Passes the recipe ``cfg`` (its schedule config) makes over its own
    train set."""
    tc = cfg.train_cfg
    if 'max_epochs' in tc and tc.get('type') != 'IterBasedTrainLoop':
        ds = cfg.train_dataloader.dataset
        times = ds.get('times', 1) if ds.get('type') == 'RepeatDataset' \
            else 1
        return float(tc.max_epochs * times)
    if source.train_size is None:
        raise ValueError(f'{source.schedule_config}: an iteration-based '
                         'recipe needs the size of its train set')
    return tc.max_iters * source.batch / source.train_size


def scale_schedule(task: str,
                   cfg,
                   source: RecipeSource,
                   num_train: int,
                   gpus: int = 1,
                   epochs: Optional[int] = None) -> Schedule:
    """Scale the schedule of ``cfg`` (the source's schedule config) to
    ``num_train`` train images trained on ``gpus`` processes (see
    :class:`Schedule`)."""
    if num_train < 1:
        raise ValueError('num_train must be positive')
    if epochs is not None and epochs < 1:
        raise ValueError(f'epochs must be positive, got {epochs}')
    passes = recipe_epochs(task, cfg, source)
    n_epochs = epochs or max(1, round(passes))
    batch = gpus * cfg.train_dataloader.batch_size
    per_epoch = math.ceil(num_train / batch)
    total = n_epochs * per_epoch
    if task == 'seg':
        return Schedule(
            n_epochs,
            passes,
            batch,
            per_epoch,
            False,
            total,
            val_interval=max(1, math.ceil(total / 4)))
    val_interval = max(1, math.ceil(n_epochs / 4))
    warm = _scheduler(cfg, 'LinearLR')
    if task == 'det':
        warmup = min(int(warm['end']), total // 4) if warm else 0
        steps = _scheduler(cfg, 'MultiStepLR')
        milestones = [(int(m), int(steps['end']))
                      for m in steps['milestones']] if steps else []
        return Schedule(n_epochs, passes, batch, per_epoch, True, n_epochs,
                        warmup, milestones, val_interval)
    warmup = min(int(warm['end']), n_epochs // 4) if warm else 0
    return Schedule(
        n_epochs,
        passes,
        batch,
        per_epoch,
        True,
        n_epochs,
        warmup,
        val_interval=val_interval)


def schedule_of(task: str,
                source: RecipeSource,
                num_train: int,
                gpus: int = 1,
                epochs: Optional[int] = None) -> Schedule:
    """:func:`scale_schedule` of the source's schedule config."""
    return scale_schedule(task, load_config(source.schedule_config), source,
                          num_train, gpus, epochs)
