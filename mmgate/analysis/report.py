"""Benchmark report: one row per run, base-vs-Skip pairs, paper comparison.

Reads the runs under a ``work_dirs`` folder (``runs.py``), derives task,
backbone, method, dataset and schedule from each run's dumped config, takes
the final metrics (the latest ``tools/test.py`` result, else the last
validation) and writes a Markdown table, CSV files and a bar chart of the
pairs. A run without (all) metrics, or whose training stopped early, is
listed with that status, never dropped.

The published numbers and the base / Skip pairing come from the model index
(``metafiles.py``: ``model-index.yml`` and the OpenMMLab metafiles of the
config families). A run is a metafile model when its config file name (the
config ``tools/train.py`` dumped into the work dir, else the work dir's
name) is the model's ``Config`` or ``Legacy Config``. It gets the model's
``Results`` as its paper values when it is also the model's setting (task,
dataset, number of classes and, for ResNet / ResNeXt / ConvNeXt families,
the backbone); a gated run is paired with the run of its model's
``Metadata.Baseline``. Runs of no metafile model are listed without paper
values and paired by their configs: the same task, method, dataset,
schedule and backbone family, depth and width.

Metrics are reported in percent: MMDetection's ``coco/*_mAP`` (fractions)
are scaled by 100; MMSegmentation's ``aAcc`` / ``mIoU`` and MMPretrain's
``accuracy/top1`` already are percentages.

Seeded runs (``randomness.seed`` in the dumped config, e.g. from
``tools/finetune.py --seeds K``) whose configs differ in nothing else (the
work directory, checkpoint and launcher aside) form a group: its mean,
sample standard deviation and Student-t 95 % interval per metric. A gated
run is paired with the base run of the same seed, and a gated group with
the plain group whose config differs only in the backbone: the paired
t-test of the per-seed differences gated - base (``stats.py``). A folder
that only holds configs next to the runs below it (``tools/finetune.py``'s
work directory) is not listed as a run.
"""
import csv
import hashlib
import json
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from .metafiles import DATASETS, MetaModel, ModelIndex, load_model_index
from .runs import RunLog, find_runs
from .stats import GroupStats, PairedTest, paired_t_test, summarize

__all__ = [
    'TASK_METRICS', 'BackboneInfo', 'RunSummary', 'Pair', 'Group',
    'GroupPair', 'describe_backbone', 'match_model', 'summarize_run',
    'pair_runs', 'group_runs', 'pair_groups', 'build_report',
    'format_markdown', 'write_csv', 'write_pairs_csv', 'write_groups_csv',
    'plot_pairs', 'write_report'
]


class Metric(NamedTuple):
    name: str  # report name
    key: str  # key in MMEngine's logs
    scale: float  # to percent
    label: str


TASK_METRICS: Dict[str, tuple] = {
    'det': (Metric('box_mAP', 'coco/bbox_mAP', 100., 'box mAP'),
            Metric('mask_mAP', 'coco/segm_mAP', 100., 'mask mAP')),
    'seg': (Metric('aAcc', 'aAcc', 1., 'aAcc'),
            Metric('mIoU', 'mIoU', 1., 'mIoU')),
    'cls': (Metric('top1', 'accuracy/top1', 1., 'top-1'), ),
}
TASK_TITLES = {
    'det': 'Detection / instance segmentation',
    'seg': 'Semantic segmentation',
    'cls': 'Classification',
    'unknown': 'Runs of unknown task',
}
EVALUATOR_TASKS = {
    'CocoMetric': 'det', 'IoUMetric': 'seg', 'Accuracy': 'cls',
    'SingleLabelMetric': 'cls'
}
SCOPE_TASKS = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls'}
CONVNEXT_ARCHS = {'tiny': 'T', 'small': 'S', 'base': 'B', 'large': 'L',
                  'xlarge': 'XL'}


def _type_name(cfg: dict) -> str:
    """``'mmgate.SkipResNet'`` -> ``'SkipResNet'``."""
    t = cfg.get('type', '') if isinstance(cfg, dict) else ''
    t = t if isinstance(t, str) else getattr(t, '__name__', str(t))
    return t.split('.')[-1]


class BackboneInfo(NamedTuple):
    """What a report needs to know about a backbone config.

    Attributes:
        label (str): Name shown, e.g. ``SkipResNetV1c-50`` or
            ``SkipResNet-18 (w16)`` for a narrowed one.
        canonical (str, optional): Paper name (``SkipResNet-50``) when the
            backbone is full size, else None.
        skip (bool): Gated (Skip / Dense) backbone.
        family_key (tuple): Identity without the gating, for pairing.
        known (bool): A ResNet / ResNeXt / ConvNeXt family (plain, V1c /
            V1d or Skip), whose paper name ``canonical`` is derived; False
            for other types (named by their type and arguments).
    """
    label: str
    canonical: Optional[str]
    skip: bool
    family_key: tuple
    known: bool = True


def describe_backbone(cfg: Optional[dict]) -> BackboneInfo:
    """Name a backbone from its config dict (type, depth, widths, arch).

    Example:
        >>> describe_backbone(dict(type='mmgate.SkipResNet', depth=50)).label
        'SkipResNet-50'
        >>> describe_backbone(dict(type='ResNeXt', depth=101, groups=32,
        ...                        base_width=4)).canonical
        'ResNeXt-101-32x4d'
    """
    if not cfg:
        return BackboneInfo('?', None, False, ('?', ), known=False)
    tname = _type_name(cfg)
    skip = tname.startswith(('Skip', 'Dense'))
    base = tname[4:] if tname.startswith('Skip') else tname
    m = re.match(r'^(ResNeXt|ResNet|ConvNeXt)(V1[a-z])?$', base)
    if m is None:
        # an unknown backbone: name it by type, pair it by its arguments
        args = tuple(sorted((k, repr(v)) for k, v in cfg.items()
                            if k in ('depth', 'arch', 'widen_factor')))
        family = tname[5:] if tname.startswith('Dense') else base
        return BackboneInfo(tname, None, skip, (family, args), known=False)
    family, variant = m[1], m[2] or ''
    prefix = 'Skip' if tname.startswith('Skip') else ''
    if family == 'ConvNeXt':
        arch = cfg.get('arch', 'tiny')
        if isinstance(arch, str):
            short = CONVNEXT_ARCHS.get(arch, arch)
            name = f'{family}-{short}'
            return BackboneInfo(prefix + name, prefix + name, skip,
                                (family, short))
        depths = tuple(arch.get('depths', ()))
        channels = tuple(arch.get('channels', ()))
        label = f'{prefix}{family} (d{"-".join(map(str, depths))}, ' \
                f'c{channels[0] if channels else "?"})'
        return BackboneInfo(label, None, skip, (family, depths, channels))
    depth = cfg.get('depth', '?')
    width = cfg.get('base_channels', 64)
    stem = cfg.get('stem_channels') or width
    name = f'{family}-{depth}'
    if family == 'ResNeXt':
        groups = cfg.get('groups', 32 if prefix else None)
        per_group = cfg.get('width_per_group',
                            cfg.get('base_width', 4 if prefix else None))
        if groups is not None and per_group is not None:
            name += f'-{groups}x{per_group}d'
    full = width == 64 and stem == 64 and cfg.get('num_stages', 4) == 4
    label = f'{prefix}{family}{variant}-{name.split("-", 1)[1]}'
    if not full:
        label += f' (w{width})'
    key = (family + variant, name, width, stem, cfg.get('num_stages', 4))
    return BackboneInfo(label, prefix + name if full else None, skip, key)


def _dataset_type(cfg) -> str:
    for split in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        loader = cfg.get(split) if cfg else None
        ds = loader.get('dataset') if isinstance(loader, dict) else None
        # unwrap RepeatDataset / ClassBalancedDataset / MultiImageMix...
        while isinstance(ds, dict) and isinstance(ds.get('dataset'), dict):
            ds = ds['dataset']
        if isinstance(ds, dict) and ds.get('type'):
            return _type_name(ds)
    return '?'


def _evaluator_cfgs(cfg) -> List[dict]:
    out = []
    for key in ('test_evaluator', 'val_evaluator'):
        ev = cfg.get(key) if cfg else None
        if isinstance(ev, dict):
            ev = ev.get('metrics', ev) if _type_name(ev) == 'Evaluator' \
                else ev
        for e in (ev if isinstance(ev, (list, tuple)) else [ev]):
            if isinstance(e, dict):
                out.append(e)
    return out


def _schedule(cfg) -> str:
    tc = cfg.get('train_cfg') if cfg else None
    if not isinstance(tc, dict):
        return '?'
    tname = _type_name(tc)
    if 'max_epochs' in tc and tname != 'IterBasedTrainLoop':
        return f'{tc["max_epochs"]} ep'
    if 'max_iters' in tc:
        n = tc['max_iters']
        return f'{n // 1000}k it' if n % 1000 == 0 else f'{n} it'
    return '?'


def _planned(cfg) -> Optional[tuple]:
    """``('epoch', 12)`` or ``('iter', 80000)``."""
    tc = cfg.get('train_cfg') if cfg else None
    if not isinstance(tc, dict):
        return None
    if 'max_epochs' in tc and _type_name(tc) != 'IterBasedTrainLoop':
        return 'epoch', int(tc['max_epochs'])
    if 'max_iters' in tc:
        return 'iter', int(tc['max_iters'])
    return None


def _find(metrics: dict, key: str) -> Optional[float]:
    if key in metrics:
        return metrics[key]
    hits = [v for k, v in metrics.items() if k.endswith('/' + key)]
    return hits[0] if hits else None


def _infer_task(run: RunLog) -> str:
    logged = dict(run.val.get(max(run.val), {})) if run.val else {}
    for _, m, _ in run.tests:
        logged.update(m)
    for task, metrics in TASK_METRICS.items():
        if any(_find(logged, m.key) is not None for m in metrics):
            return task
    for ev in _evaluator_cfgs(run.config):
        if _type_name(ev) in EVALUATOR_TASKS:
            return EVALUATOR_TASKS[_type_name(ev)]
    scope = run.config.get('default_scope') if run.config else None
    return SCOPE_TASKS.get(scope, 'unknown')


def _expected_metrics(task: str, run: RunLog) -> List[str]:
    if task == 'det':
        wanted = ['box_mAP']
        for ev in _evaluator_cfgs(run.config):
            metric = ev.get('metric', 'bbox')
            metric = [metric] if isinstance(metric, str) else list(metric)
            if 'segm' in metric:
                wanted.append('mask_mAP')
                break
        return wanted
    return [m.name for m in TASK_METRICS.get(task, ())]


def _method(model_cfg: Optional[dict]) -> str:
    if not isinstance(model_cfg, dict):
        return '?'
    name = _type_name(model_cfg)
    for head_key in ('decode_head', 'roi_head', 'head'):
        head = model_cfg.get(head_key)
        if isinstance(head, dict) and head.get('type'):
            name += f'+{_type_name(head)}'
            if isinstance(head.get('mask_head'), (dict, list)):
                name += '+mask'
            break
    return name


def _num_classes(task: str, model_cfg: dict) -> Optional[int]:
    """Classes of the model's (first) prediction head, when stated."""
    head = dict(det=(model_cfg.get('roi_head') or {}).get('bbox_head'),
                seg=model_cfg.get('decode_head'),
                cls=model_cfg.get('head')).get(task)
    if isinstance(head, (list, tuple)) and head:
        head = head[0]
    n = head.get('num_classes') if isinstance(head, dict) else None
    return int(n) if isinstance(n, int) else None


def _config_names(run: RunLog) -> List[str]:
    """The config file names a run may have been launched with: the dumped
    config's (``Runner.dump_config`` keeps the file name), then the work
    directory's (``work_dirs/<config name>`` by default)."""
    names = []
    if run.config_path and osp.basename(run.config_path) != 'config.py':
        names.append(osp.splitext(osp.basename(run.config_path))[0])
    if run.name not in names:
        names.append(run.name)
    return names


def match_model(run: RunLog,
                index: Optional[ModelIndex]) -> Optional[MetaModel]:
    """The metafile model a run was launched from (by config file name)."""
    if index is None:
        return None
    for name in _config_names(run):
        model = index.match_config(name)
        if model is not None:
            return model
    return None


def _setting_mismatch(model: MetaModel, task: str, model_cfg, dataset: str,
                      backbone: BackboneInfo) -> Optional[str]:
    """Why a run is not the published setting of its metafile model (None
    when it is): another task, dataset, number of classes (e.g. a demo
    subset in COCO format) or backbone (e.g. a narrowed one)."""
    if model.task is not None and task != model.task:
        return f'task {task}, not {model.task}'
    types, classes = DATASETS.get(model.dataset, ((), None))
    if types and dataset not in types:
        return f'dataset {dataset}, not {model.dataset}'
    n = _num_classes(task, model_cfg) if isinstance(model_cfg, dict) \
        else None
    if n is not None and classes is not None and n != classes:
        return f'{n} classes, not the {classes} of {model.dataset}'
    if backbone.known and model.backbone and \
            backbone.canonical != model.backbone:
        return f'backbone {backbone.label}, not {model.backbone}'
    return None


@dataclass
class RunSummary:
    """One row of the report."""
    config: str
    work_dir: str
    task: str
    method: str
    dataset: str
    backbone: BackboneInfo
    schedule: str
    status: str
    complete: bool
    source: str
    metrics: Dict[str, float] = field(default_factory=dict)
    paper: Dict[str, float] = field(default_factory=dict)
    params: Optional[float] = None  # millions
    flops: Optional[float] = None  # G
    notes: List[str] = field(default_factory=list)
    pair_key: tuple = ()
    model: Optional[str] = None  # metafile model name
    seed: Optional[int] = None  # randomness.seed of the run
    config_name: str = ''  # the config file the run was launched with
    group_key: Optional[str] = None  # the config without seed, work_dir
    setting_key: Optional[str] = None  # ... and without the backbone

    @property
    def diff(self) -> Dict[str, float]:
        return {k: self.metrics[k] - v for k, v in self.paper.items()
                if k in self.metrics}


def _progress(run: RunLog) -> Optional[tuple]:
    """``(unit, done, planned)`` of the training, when known."""
    planned = _planned(run.config)
    if planned is None:
        return None
    unit, total = planned
    done = 0
    if unit == 'epoch':
        done = max(run.checkpoints.get('epoch', [0]))
        if run.val:
            by_epoch = run.config.get('default_hooks', {}).get(
                'logger', {}).get('log_metric_by_epoch', True) \
                if run.config else True
            if by_epoch:
                done = max(done, max(run.val))
        if run.train and 'epoch' in run.train[-1]:
            # the last logged epoch has at least started
            done = max(done, int(run.train[-1]['epoch']) - 1)
    else:
        done = max(run.checkpoints.get('iter', [0]))
        if run.train:
            done = max(done, int(run.train[-1].get(
                'iter', run.train[-1].get('step', 0))))
        if run.val:
            done = max(done, max(run.val))
    return unit, min(done, total), total


def summarize_run(run: RunLog,
                  index: Optional[ModelIndex] = None) -> RunSummary:
    """Final metrics, status and identity of one run; its paper values
    from ``index`` (a ``metafiles.ModelIndex``) when it is a metafile
    model in that model's setting."""
    cfg = run.config
    model_cfg = cfg.get('model') if cfg else None
    task = _infer_task(run)
    backbone = describe_backbone(
        model_cfg.get('backbone') if isinstance(model_cfg, dict) else None)
    dataset = _dataset_type(cfg)
    summary = RunSummary(
        config=run.name, work_dir=run.work_dir, task=task,
        method=_method(model_cfg), dataset=dataset, backbone=backbone,
        schedule=_schedule(cfg), status='', complete=False, source='')
    notes = summary.notes
    if cfg is None:
        notes.append('no dumped config')

    if run.final_test is not None:
        ts, logged, where = run.final_test
        sub = osp.relpath(where, run.work_dir)
        summary.source = f'test {ts}' + ('' if sub == '.' else f' ({sub})')
    elif run.last_val is not None:
        step, logged = run.last_val
        summary.source = f'val @{step}'
    else:
        logged = {}
        summary.source = '-'
    for m in TASK_METRICS.get(task, ()):
        value = _find(logged, m.key)
        if value is not None:
            summary.metrics[m.name] = float(value) * m.scale

    last_train = max(run.train_timestamps, default='')
    stale = [t for t in run.tests if t[0] < last_train]
    for ts, _, where in stale:
        sub = osp.relpath(where, run.work_dir)
        notes.append(f'test {ts}' + ('' if sub == '.' else f' ({sub})') +
                     ' predates the training: not used')
    progress = _progress(run)
    trained = progress is None or progress[1] >= progress[2]
    expected = _expected_metrics(task, run)
    missing = [m for m in expected if m not in summary.metrics]
    status = []
    if not run.timestamps:
        status.append('no logs')
    elif not summary.metrics:
        status.append('no metrics')
    elif missing:
        status.append('partial: no ' + ', '.join(missing))
    if progress is not None and not trained:
        unit, done, total = progress
        status.append(f'trained {done}/{total} {unit}s')
    if not status and progress is None and run.train:
        status.append('schedule unknown')
    summary.complete = not status
    summary.status = 'complete' if not status else '; '.join(status)
    notes.extend(run.problems)

    meta = match_model(run, index)
    if meta is not None:
        summary.model = meta.name
        paper = meta.paper_metrics()
        if paper:
            why = _setting_mismatch(meta, task, model_cfg, dataset, backbone)
            if why is None:
                summary.paper = paper
            else:
                notes.append(f'config of {meta.name}, but {why}: no paper '
                             'values')
    summary.pair_key = (task, summary.method, dataset, summary.schedule,
                        backbone.family_key)
    summary.config_name = _config_names(run)[0]
    seed = (cfg.get('randomness') or {}).get('seed') if cfg else None
    if isinstance(seed, int) and not isinstance(seed, bool):
        summary.seed = seed
        summary.group_key = _config_fingerprint(cfg)
        summary.setting_key = _config_fingerprint(cfg, backbone=False)
    return summary


# keys of a dumped config that say where and how a run was launched, not
# what it trains
LAUNCH_KEYS = ('work_dir', 'load_from', 'resume', 'launcher',
               'experiment_name')


def _config_fingerprint(cfg, backbone: bool = True) -> str:
    """A digest of a config less its seed and launch keys (and with
    ``backbone=False`` less ``model.backbone``): two runs with the same
    digest differ only in ``randomness.seed`` (and the backbone)."""
    d = cfg.to_dict()
    if not backbone and isinstance(d.get('model'), dict):
        d['model'] = {k: v for k, v in d['model'].items() if k != 'backbone'}
    for key in LAUNCH_KEYS:
        d.pop(key, None)
    randomness = dict(d.get('randomness') or {})
    randomness.pop('seed', None)
    d['randomness'] = randomness
    text = json.dumps(d, sort_keys=True, default=repr)
    return hashlib.sha1(text.encode('utf-8')).hexdigest()


@dataclass
class Pair:
    """A Skip run and the base run of the same setting.

    ``paired_by`` is ``'metafile'`` (the base run is of the Skip model's
    ``Metadata.Baseline``) or ``'config'`` (same task, method, dataset,
    schedule and backbone family, read from the configs)."""
    base: RunSummary
    skip: RunSummary
    paired_by: str = 'config'

    def gain(self, metric: str) -> Optional[float]:
        if metric in self.base.metrics and metric in self.skip.metrics:
            return self.skip.metrics[metric] - self.base.metrics[metric]
        return None

    def paper_gain(self, metric: str) -> Optional[float]:
        if metric in self.base.paper and metric in self.skip.paper:
            return self.skip.paper[metric] - self.base.paper[metric]
        return None

    @property
    def label(self) -> str:
        return f'{self.skip.backbone.label} vs {self.base.backbone.label}'


def _choose(s: RunSummary, candidates: List[RunSummary],
            what: str) -> RunSummary:
    """The first of ``candidates`` (complete runs first), noted on ``s``
    when there are several."""
    ranked = sorted(candidates, key=lambda b: not b.complete)
    if len(ranked) > 1:
        s.notes.append(f'{len(ranked)} runs of {what}; paired with '
                       f'{ranked[0].config}')
    return ranked[0]


def pair_runs(summaries: Sequence[RunSummary],
              index: Optional[ModelIndex] = None) -> List[Pair]:
    """Match each gated run with a base run.

    A run of a metafile model with a ``Metadata.Baseline`` is paired with a
    run of that baseline model (same task). Other gated runs, and those
    whose baseline has no run, are paired with a base run of the same task,
    method, dataset, schedule and backbone family / depth / width (read
    from the configs). Several candidates: complete runs first, noted."""
    pairs = []
    bases = [s for s in summaries if not s.backbone.skip]

    def same_seed(s, candidates):
        # a seeded run pairs with the base run of its seed, when there is one
        if s.seed is None:
            return candidates
        return [b for b in candidates if b.seed == s.seed] or candidates

    for s in summaries:
        if not s.backbone.skip:
            continue
        meta = index.get(s.model) if index is not None else None
        baseline = meta.baseline if meta is not None else None
        if baseline:
            runs = same_seed(s, [b for b in bases
                                 if b.model == baseline and b.task == s.task])
            if runs:
                pairs.append(Pair(_choose(s, runs, baseline), s,
                                  'metafile'))
                continue
        candidates = same_seed(
            s, [b for b in bases if b.pair_key == s.pair_key])
        if not candidates:
            continue  # listed among the runs without a partner
        chosen = _choose(s, candidates, 'the same setting')
        if baseline:
            s.notes.append(f'no run of its baseline {baseline}; paired by '
                           f'config with {chosen.config}')
        pairs.append(Pair(chosen, s, 'config'))
    return pairs


@dataclass
class Group:
    """Runs of one config that differ only in their seed.

    Attributes:
        label (str): The config's name.
        runs (list[RunSummary]): The runs, by seed.
        notes (list[str]): Runs left out of the statistics, and why.
    """
    label: str
    runs: List[RunSummary]
    notes: List[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.runs[0].task

    @property
    def backbone(self) -> BackboneInfo:
        return self.runs[0].backbone

    @property
    def seeds(self) -> List[int]:
        return [s.seed for s in self.runs]

    def values(self, metric: str) -> Dict[int, float]:
        """``{seed: value}`` of the complete runs that have ``metric``."""
        return {s.seed: s.metrics[metric] for s in self.runs
                if s.complete and metric in s.metrics}

    def stats(self, metric: str) -> Optional[GroupStats]:
        values = self.values(metric)
        return summarize(list(values.values())) if values else None


@dataclass
class GroupPair:
    """A gated group and the base group of the same setting, compared
    seed by seed."""
    base: Group
    gated: Group

    @property
    def label(self) -> str:
        return f'{self.gated.backbone.label} vs {self.base.backbone.label}'

    def seeds(self, metric: str) -> List[int]:
        """The seeds both groups have ``metric`` for."""
        gated, base = self.gated.values(metric), self.base.values(metric)
        return sorted(set(gated) & set(base))

    def test(self, metric: str) -> Optional[PairedTest]:
        """Paired t-test of gated - base over the common seeds."""
        seeds = self.seeds(metric)
        if not seeds:
            return None
        gated, base = self.gated.values(metric), self.base.values(metric)
        return paired_t_test([gated[s] for s in seeds],
                             [base[s] for s in seeds])


def group_runs(summaries: Sequence[RunSummary]) -> List[Group]:
    """Group the seeded runs whose configs differ only in the seed.

    A seed run twice in one group counts once (the complete run, else the
    first); the other is noted."""
    by_key: Dict[str, List[RunSummary]] = {}
    for s in summaries:
        if s.seed is not None and s.group_key is not None:
            by_key.setdefault(s.group_key, []).append(s)
    groups = []
    for runs in by_key.values():
        runs = sorted(runs, key=lambda s: (s.seed, not s.complete, s.config))
        kept, notes = [], []
        for s in runs:
            if kept and kept[-1].seed == s.seed:
                notes.append(f'seed {s.seed} also in {s.config}: '
                             f'{kept[-1].config} used')
                continue
            kept.append(s)
        for s in kept:
            if not s.complete:
                notes.append(f'seed {s.seed} ({s.config}): {s.status}, left '
                             'out')
        groups.append(Group(runs[0].config_name, kept, notes))
    labels = [g.label for g in groups]
    for g in groups:
        if labels.count(g.label) > 1:
            # one config file name, different contents (an edited config)
            g.label += f' ({g.runs[0].group_key[:7]})'
    order = {'det': 0, 'seg': 1, 'cls': 2}
    groups.sort(key=lambda g: (order.get(g.task, 3), g.label))
    return groups


def pair_groups(groups: Sequence[Group]) -> List[GroupPair]:
    """Pair each gated group with the plain group whose config differs
    from its own only in the backbone (``tools/finetune.py --compare
    base`` writes such twins; mmgate's Skip configs and their baselines
    are such pairs too). Several: the same backbone family first, then the
    most shared seeds. A gated group without one is noted."""
    out = []
    for g in groups:
        if not g.backbone.skip:
            continue
        key = g.runs[0].setting_key
        candidates = [b for b in groups if not b.backbone.skip
                      and b.runs[0].setting_key == key]
        if not candidates:
            g.notes.append('no group of plain runs with the same config but '
                           'the backbone: not compared seed by seed')
            continue
        best = max(candidates, key=lambda b: (
            b.backbone.family_key == g.backbone.family_key,
            len(set(b.seeds) & set(g.seeds))))
        out.append(GroupPair(best, g))
    return out


@dataclass
class Report:
    summaries: List[RunSummary]
    pairs: List[Pair]
    model_index: Optional[str] = None  # the model-index.yml read
    groups: List[Group] = field(default_factory=list)
    group_pairs: List[GroupPair] = field(default_factory=list)


def _index(model_index) -> Optional[ModelIndex]:
    """``build_report``'s ``model_index`` argument, loaded."""
    if model_index is False:
        return None
    if isinstance(model_index, ModelIndex):
        return model_index
    return load_model_index(model_index)  # None: mmgate's own


def build_report(root: str,
                 params: bool = False,
                 flops: bool = False,
                 flops_shapes: Optional[Dict[str, tuple]] = None,
                 model_index: Union[None, str, ModelIndex, bool] = None
                 ) -> Report:
    """Read every run under ``root`` and pair them.

    Args:
        root (str): ``work_dirs`` (or one run's directory).
        params (bool): Build each config's model and count its parameters.
        flops (bool): Also count FLOPs (``complexity.config_complexity``) at
            ``flops_shapes[task]`` (defaults: det 3x800x1333, seg 3x512x512,
            cls 3x224x224).
        model_index (str | ModelIndex | bool, optional): The model index
            with the paper values and baselines: a ``model-index.yml``
            path, a loaded index, None for mmgate's own
            (``metafiles.model_index_path``) or False for none (no paper
            values; pairs from the configs only).
    """
    index = _index(model_index)
    summaries = []
    runs = find_runs(root)
    # a folder of configs next to the runs below it (tools/finetune.py's
    # work directory) is not a run
    runs = [r for r in runs if r.timestamps or r.checkpoints or not any(
        o.work_dir.startswith(r.work_dir + os.sep) for o in runs)]
    for run in runs:
        summaries.append(summarize_run(run, index))
    if params or flops:
        from .complexity import DEFAULT_TASK_SHAPES, config_complexity
        shapes = dict(DEFAULT_TASK_SHAPES, **(flops_shapes or {}))
        cache = {}
        for run, s in zip(runs, summaries):
            if run.config is None:
                continue
            key = (run.config.pretty_text, s.task)
            if key not in cache:
                try:
                    cache[key] = config_complexity(
                        run.config, shapes.get(s.task) if flops else None)
                except Exception as e:  # keep the report going
                    cache[key] = dict(error=f'{type(e).__name__}: {e}')
            res = cache[key]
            if 'error' in res:
                s.notes.append(f'complexity failed: {res["error"]}')
                continue
            s.params = res['params'] / 1e6
            if res.get('flops') is not None:
                s.flops = res['flops'] / 1e9
    order = {'det': 0, 'seg': 1, 'cls': 2}
    summaries.sort(key=lambda s: (order.get(s.task, 3), repr(s.pair_key),
                                  s.backbone.skip, s.config))
    pairs = pair_runs(summaries, index)
    groups = group_runs(summaries)
    return Report(summaries, pairs, index.path if index is not None else None,
                  groups, pair_groups(groups))


# ---- output -----------------------------------------------------------


def _fmt(v: Optional[float], digits: int = 2, sign: bool = False) -> str:
    if v is None:
        return '-'
    return f'{v:+.{digits}f}' if sign else f'{v:.{digits}f}'


def format_markdown(report: Report, title: str = 'Benchmark report') -> str:
    """The report as Markdown: one table per task, the pairs, the runs
    that are not complete."""
    out = [f'# {title}', '']
    show_params = any(s.params is not None for s in report.summaries)
    show_flops = any(s.flops is not None for s in report.summaries)
    for task in ('det', 'seg', 'cls', 'unknown'):
        rows = [s for s in report.summaries if s.task == task]
        if not rows:
            continue
        metrics = TASK_METRICS.get(task, ())
        head = ['config', 'backbone', 'method', 'dataset', 'schedule',
                'status', 'result']
        head += [m.label for m in metrics]
        head += ['params (M)'] * show_params + ['FLOPs (G)'] * show_flops
        head += [f'paper {m.label}' for m in metrics]
        head += [f'Δ {m.label}' for m in metrics]
        out += [f'## {TASK_TITLES[task]}', '',
                '| ' + ' | '.join(head) + ' |',
                '|' + '---|' * len(head)]
        for s in rows:
            cells = [s.config, s.backbone.label, s.method, s.dataset,
                     s.schedule, s.status, s.source]
            cells += [_fmt(s.metrics.get(m.name)) for m in metrics]
            cells += [_fmt(s.params)] * show_params
            cells += [_fmt(s.flops, 3)] * show_flops
            cells += [_fmt(s.paper.get(m.name)) for m in metrics]
            cells += [_fmt(s.diff.get(m.name), sign=True) for m in metrics]
            out.append('| ' + ' | '.join(cells) + ' |')
        out.append('')
    if report.pairs:
        out += ['## Base vs Skip', '',
                '| task | pair | base run | Skip run | metric | base | Skip '
                '| gain | paper base | paper Skip | paper gain |',
                '|' + '---|' * 11]
        for p in report.pairs:
            for m in TASK_METRICS.get(p.skip.task, ()):
                if m.name not in p.base.metrics and \
                        m.name not in p.skip.metrics and \
                        m.name not in p.skip.paper:
                    continue
                out.append('| ' + ' | '.join([
                    p.skip.task, p.label, p.base.config, p.skip.config,
                    m.label, _fmt(p.base.metrics.get(m.name)),
                    _fmt(p.skip.metrics.get(m.name)),
                    _fmt(p.gain(m.name), sign=True),
                    _fmt(p.base.paper.get(m.name)),
                    _fmt(p.skip.paper.get(m.name)),
                    _fmt(p.paper_gain(m.name), sign=True)
                ]) + ' |')
        out.append('')
    out += _format_groups(report)
    paired = {id(p.base) for p in report.pairs} | \
        {id(p.skip) for p in report.pairs}
    unpaired = [s.config for s in report.summaries if id(s) not in paired]
    if unpaired:
        out += ['Runs without a partner: ' + ', '.join(unpaired) + '.', '']
    incomplete = [s for s in report.summaries if not s.complete or s.notes]
    if incomplete:
        out += ['## Incomplete runs and notes', '']
        for s in incomplete:
            out.append(f'- `{s.config}`: {s.status}' +
                       ''.join(f'; {n}' for n in s.notes))
        out.append('')
    metrics_note = ('Metrics in percent (COCO mAP x100). "result" says where '
                    'the numbers come from: the latest `tools/test.py` run, '
                    'or the last validation (step = epoch or iteration). '
                    'Paper values come from the metafiles, for runs of a '
                    'metafile model (by config name) in its setting (task, '
                    'dataset, classes, backbone).')
    if report.model_index:
        metrics_note += f' Model index: `{report.model_index}`.'
    else:
        metrics_note += ' No model index was read.'
    out += [metrics_note, '']
    return '\n'.join(out)


PAIRED_TEST = ('paired t-test (two-sided) on the per-seed differences '
               'gated - base; 95 % interval: mean difference +- '
               't(0.975, n - 1) x std / sqrt(n)')


def _interval(low: Optional[float], high: Optional[float]) -> str:
    if low is None:
        return '-'
    return f'[{low:.2f}, {high:.2f}]'


def verdict(test: Optional[PairedTest]) -> str:
    """What a paired test says, in words."""
    if test is None:
        return 'no common seed'
    if test.low is None:
        return ('one pair: no interval (train with --seeds 2 or more)')
    if test.includes_zero:
        return (f'the interval includes 0: no difference shown with '
                f'{test.n} seeds')
    better = 'better' if test.mean > 0 else 'worse'
    return f'gated {better}: the interval excludes 0'


def _format_groups(report: 'Report') -> List[str]:
    """Markdown of the seeded groups and their paired comparisons."""
    if not report.groups:
        return []
    out = ['## Seeded runs', '',
           'Runs of one config that differ only in `randomness.seed`: mean '
           '+- sample standard deviation over the seeds, and the Student-t '
           '95 % interval of the mean.', '']
    for task in ('det', 'seg', 'cls', 'unknown'):
        groups = [g for g in report.groups if g.task == task]
        if not groups:
            continue
        metrics = TASK_METRICS.get(task, ())
        head = ['config', 'backbone', 'seeds']
        for m in metrics:
            head += [f'{m.label} mean +- std', f'{m.label} 95 % interval']
        out += [f'### {TASK_TITLES[task]}', '',
                '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        for g in groups:
            cells = [g.label, g.backbone.label,
                     ', '.join(str(seed) for seed in g.seeds)]
            for m in metrics:
                st = g.stats(m.name)
                if st is None:
                    cells += ['-', '-']
                    continue
                std = f' +- {st.std:.2f}' if st.std is not None else ''
                cells += [f'{st.mean:.2f}{std} (n={st.n})',
                          _interval(st.low, st.high)]
            out.append('| ' + ' | '.join(cells) + ' |')
        out.append('')
    notes = [f'- `{g.label}`: {n}' for g in report.groups for n in g.notes]
    if notes:
        out += notes + ['']
    if report.group_pairs:
        out += ['## Gated vs base, paired by seed', '',
                f'Test: {PAIRED_TEST}.', '',
                '| task | pair | metric | seeds | gated | base | gated - '
                'base | std | 95 % interval | p | verdict |',
                '|' + '---|' * 11]
        for gp, m, test, seeds, gated, base in _group_comparisons(report):
            out.append('| ' + ' | '.join([
                gp.gated.task, f'{gp.gated.label} vs {gp.base.label}',
                m.label, ', '.join(map(str, seeds)), _fmt(gated), _fmt(base),
                _fmt(test.mean, sign=True), _fmt(test.std),
                _interval(test.low, test.high),
                '-' if test.p is None else f'{test.p:.3f}', verdict(test)
            ]) + ' |')
        out.append('')
    return out


def _group_comparisons(report: Report):
    """``(pair, metric, test, seeds, gated mean, base mean)`` of every
    gated-vs-base group comparison that has a paired test, over the seeds
    both groups ran."""
    for gp in report.group_pairs:
        for m in TASK_METRICS.get(gp.gated.task, ()):
            test = gp.test(m.name)
            if test is None:
                continue
            seeds = gp.seeds(m.name)
            gated, base = gp.gated.values(m.name), gp.base.values(m.name)
            yield (gp, m, test, seeds,
                   sum(gated[s] for s in seeds) / len(seeds),
                   sum(base[s] for s in seeds) / len(seeds))


ALL_METRICS = [m for ms in TASK_METRICS.values() for m in ms]


def write_csv(report: Report, path: str) -> None:
    """One row per run; metric, paper and difference columns of every
    task (empty where they do not apply)."""
    fields = ['config', 'model', 'work_dir', 'task', 'method', 'dataset',
              'backbone', 'gated', 'schedule', 'status', 'complete',
              'result']
    fields += [m.name for m in ALL_METRICS]
    fields += ['params_M', 'flops_G']
    fields += [f'paper_{m.name}' for m in ALL_METRICS]
    fields += [f'diff_{m.name}' for m in ALL_METRICS]
    fields += ['notes']
    _mkdir_for(path)
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for s in report.summaries:
            row = dict(config=s.config, model=s.model or '',
                       work_dir=s.work_dir, task=s.task,
                       method=s.method, dataset=s.dataset,
                       backbone=s.backbone.label, gated=s.backbone.skip,
                       schedule=s.schedule, status=s.status,
                       complete=s.complete, result=s.source,
                       params_M=_csv(s.params), flops_G=_csv(s.flops),
                       notes=' | '.join(s.notes))
            for m in ALL_METRICS:
                row[m.name] = _csv(s.metrics.get(m.name))
                row[f'paper_{m.name}'] = _csv(s.paper.get(m.name))
                row[f'diff_{m.name}'] = _csv(s.diff.get(m.name))
            writer.writerow(row)


def write_pairs_csv(report: Report, path: str) -> None:
    """One row per pair and metric."""
    fields = ['task', 'pair', 'base_config', 'skip_config', 'paired_by',
              'metric', 'base', 'skip', 'gain', 'paper_base', 'paper_skip',
              'paper_gain']
    _mkdir_for(path)
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for p in report.pairs:
            for m in TASK_METRICS.get(p.skip.task, ()):
                writer.writerow(dict(
                    task=p.skip.task, pair=p.label,
                    base_config=p.base.config, skip_config=p.skip.config,
                    paired_by=p.paired_by, metric=m.name,
                    base=_csv(p.base.metrics.get(m.name)),
                    skip=_csv(p.skip.metrics.get(m.name)),
                    gain=_csv(p.gain(m.name)),
                    paper_base=_csv(p.base.paper.get(m.name)),
                    paper_skip=_csv(p.skip.paper.get(m.name)),
                    paper_gain=_csv(p.paper_gain(m.name))))


def write_groups_csv(report: Report, path: str,
                     pairs_path: Optional[str] = None) -> None:
    """The seeded groups (one row per group and metric) to ``path``, and
    their paired comparisons to ``pairs_path``."""
    fields = ['task', 'config', 'backbone', 'gated', 'seeds', 'metric', 'n',
              'mean', 'std', 'ci_low', 'ci_high']
    _mkdir_for(path)
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for g in report.groups:
            for m in TASK_METRICS.get(g.task, ()):
                st = g.stats(m.name)
                if st is None:
                    continue
                writer.writerow(dict(
                    task=g.task, config=g.label, backbone=g.backbone.label,
                    gated=g.backbone.skip,
                    seeds=' '.join(map(str, g.values(m.name))),
                    metric=m.name, n=st.n, mean=_csv(st.mean),
                    std=_csv(st.std), ci_low=_csv(st.low),
                    ci_high=_csv(st.high)))
    if pairs_path is None:
        return
    fields = ['task', 'gated_config', 'base_config', 'metric', 'n', 'seeds',
              'gated_mean', 'base_mean', 'diff_mean', 'diff_std', 'ci_low',
              'ci_high', 't', 'p', 'includes_zero', 'test']
    _mkdir_for(pairs_path)
    with open(pairs_path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for gp, m, test, seeds, gated, base in _group_comparisons(report):
            writer.writerow(dict(
                task=gp.gated.task, gated_config=gp.gated.label,
                base_config=gp.base.label, metric=m.name, n=test.n,
                seeds=' '.join(map(str, seeds)), gated_mean=_csv(gated),
                base_mean=_csv(base), diff_mean=_csv(test.mean),
                diff_std=_csv(test.std), ci_low=_csv(test.low),
                ci_high=_csv(test.high), t=_csv(test.t), p=_csv(test.p),
                includes_zero='' if test.includes_zero is None
                else test.includes_zero,
                test='paired t-test, two-sided, 95 % t interval'))


def _csv(v: Optional[float]) -> str:
    return '' if v is None else f'{v:.4f}'


def _mkdir_for(path: str) -> None:
    d = osp.dirname(osp.abspath(path))
    os.makedirs(d, exist_ok=True)


def plot_pairs(report: Report, path: str) -> Optional[str]:
    """Grouped bars (base, Skip) of every pair and metric, the gain written
    above; published values as black ticks. Returns ``path``, or None when
    there is no pair with a metric."""
    from .plotting import pyplot
    plt = pyplot()
    panels = []  # (title, [(label, base, skip, paper_base, paper_skip)])
    for task in ('det', 'seg', 'cls'):
        for m in TASK_METRICS[task]:
            bars = [(p.label.replace(' vs ', '\nvs '),
                     p.base.metrics.get(m.name), p.skip.metrics.get(m.name),
                     p.base.paper.get(m.name), p.skip.paper.get(m.name))
                    for p in report.pairs if p.skip.task == task]
            bars = [b for b in bars if b[1] is not None or b[2] is not None]
            if bars:
                panels.append((f'{TASK_TITLES[task]}: {m.label}', bars))
    if not panels:
        return None
    width = max(4.5, 2.2 * max(len(b) for _, b in panels))
    fig, axes = plt.subplots(1, len(panels),
                             figsize=(width * len(panels), 4.2),
                             squeeze=False)
    for ax, (title, bars) in zip(axes[0], panels):
        xs = range(len(bars))
        w = 0.38
        base = [b[1] if b[1] is not None else 0 for b in bars]
        skip = [b[2] if b[2] is not None else 0 for b in bars]
        ax.bar([x - w / 2 for x in xs], base, w, label='base',
               color='#9e9e9e')
        ax.bar([x + w / 2 for x in xs], skip, w, label='Skip',
               color='#1f77b4')
        for x, b in zip(xs, bars):
            for off, v in ((-w / 2, b[3]), (w / 2, b[4])):
                if v is not None:
                    ax.hlines(v, x + off - w / 2, x + off + w / 2,
                              colors='k', linewidth=2,
                              label='paper' if x == 0 and off < 0 else None)
            if b[1] is not None and b[2] is not None:
                top = max(b[1], b[2])
                ax.annotate(f'{b[2] - b[1]:+.2f}', (x, top),
                            textcoords='offset points', xytext=(0, 3),
                            ha='center', fontsize=9)
            for off, v in ((-w / 2, b[1]), (w / 2, b[2])):
                if v is None:
                    ax.annotate('missing', (x + off, 0), ha='center',
                                va='bottom', rotation=90, fontsize=8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([b[0] for b in bars], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel('%')
        ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    _mkdir_for(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(root: str, out_dir: str, params: bool = False,
                 flops: bool = False, title: str = 'Benchmark report',
                 flops_shapes: Optional[Dict[str, tuple]] = None,
                 model_index: Union[None, str, ModelIndex, bool] = None
                 ) -> Tuple['Report', Dict[str, str]]:
    """Build the report of ``root`` and write ``report.md``,
    ``report.csv``, ``pairs.csv``, ``pairs.png`` (when there are pairs) and
    ``groups.csv`` / ``group_pairs.csv`` (when there are seeded runs) into
    ``out_dir``. Returns the report and the written paths by kind.
    ``model_index``: as in ``build_report``."""
    report = build_report(root, params=params, flops=flops,
                          flops_shapes=flops_shapes, model_index=model_index)
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(markdown=osp.join(out_dir, 'report.md'),
                 csv=osp.join(out_dir, 'report.csv'),
                 pairs_csv=osp.join(out_dir, 'pairs.csv'))
    with open(paths['markdown'], 'w', encoding='utf-8') as f:
        f.write(format_markdown(report, title))
    write_csv(report, paths['csv'])
    write_pairs_csv(report, paths['pairs_csv'])
    if report.groups:
        paths['groups_csv'] = osp.join(out_dir, 'groups.csv')
        paths['group_pairs_csv'] = osp.join(out_dir, 'group_pairs.csv')
        write_groups_csv(report, paths['groups_csv'],
                         paths['group_pairs_csv'])
    png = plot_pairs(report, osp.join(out_dir, 'pairs.png'))
    if png:
        paths['png'] = png
    return report, paths
