"""One run summarised: final metrics, status, backbone, paper values.

The final metrics are the latest ``tools/test.py`` result not older than
the training (else the last validation). A run without (all) metrics, or
whose training stopped before its schedule's end, gets a status that says
so; it is never dropped.

A run is a metafile model when its config file name (the config
``tools/train.py`` dumped into the work dir, else the work dir's name) is
the model's ``Config`` or ``Legacy Config`` (``metafiles.ModelIndex``). It
gets the model's ``Results`` as its paper values when it is also the
model's setting: the same task, dataset and number of classes, and a
backbone with the structure (parameter names and shapes, ``naming.py``) of
the backbone of the model's config. Otherwise a note says why not.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

from mmengine.config import Config

from .metafiles import DATASETS, MetaModel, ModelIndex
from .naming import (BackboneError, BackboneInfo, config_scope,
                     describe_backbone, error_line, unbuilt_backbone)
from .runs import RunLog
from .setting import (TASK_METRICS, config_fingerprint, dataset_type,
                      expected_metrics, find_metric, infer_task, method,
                      num_classes, planned, schedule)

__all__ = ['RunSummary', 'summarize_run', 'match_model', 'config_names']


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
        return {
            k: self.metrics[k] - v
            for k, v in self.paper.items() if k in self.metrics
        }


def config_names(run: RunLog) -> List[str]:
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
    for name in config_names(run):
        model = index.match_config(name)
        if model is not None:
            return model
    return None


# (config path, its modification time) -> its backbone, or why none
_MODEL_BACKBONES: Dict[tuple, Union[BackboneInfo, str]] = {}


def _model_backbone(model: MetaModel) -> Union[BackboneInfo, str]:
    """The backbone of a metafile model's config, or why there is none."""
    path = model.config_path
    if path is None:
        return f'{model.name} has no Config'
    if not osp.isfile(path):
        return f'no file {model.config}'
    key = (path, os.stat(path).st_mtime_ns)
    if key not in _MODEL_BACKBONES:
        try:
            cfg = Config.fromfile(path, import_custom_modules=False)
            backbone = (cfg.get('model') or {}).get('backbone')
            _MODEL_BACKBONES[key] = describe_backbone(backbone,
                                                      config_scope(cfg))
        except BackboneError as e:
            _MODEL_BACKBONES[key] = f'{model.config}: {e}'
        except Exception as e:  # a config that does not load
            _MODEL_BACKBONES[key] = (f'{model.config} does not load '
                                     f'({error_line(e)})')
    return _MODEL_BACKBONES[key]


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
    n = num_classes(task, model_cfg) if isinstance(model_cfg, dict) \
        else None
    if n is not None and classes is not None and n != classes:
        return f'{n} classes, not the {classes} of {model.dataset}'
    published = _model_backbone(model)
    if isinstance(published, str):
        return f'its backbone is unknown ({published})'
    if not backbone.built:
        return f'backbone {backbone.label} was not built'
    if backbone.structure == published.structure:
        return None
    name = model.backbone or published.label
    if backbone.label == name:
        return (f'backbone {name} with other parameters than '
                f'{osp.basename(model.config)}\'s')
    return f'backbone {backbone.label}, not {name}'


def _progress(run: RunLog) -> Optional[tuple]:
    """``(unit, done, planned)`` of the training, when known."""
    plan = planned(run.config)
    if plan is None:
        return None
    unit, total = plan
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
            done = max(
                done,
                int(run.train[-1].get('iter', run.train[-1].get('step', 0))))
        if run.val:
            done = max(done, max(run.val))
    return unit, min(done, total), total


def _where(ts: str, folder: str, run: RunLog) -> str:
    """``test <timestamp>`` and the sub-folder of a test launch."""
    sub = osp.relpath(folder, run.work_dir)
    return f'test {ts}' + ('' if sub == '.' else f' ({sub})')


def _final_metrics(run: RunLog, task: str, summary: RunSummary) -> None:
    """The metrics of the final test (else the last validation) and where
    they come from; the tests older than the training are noted."""
    if run.final_test is not None:
        ts, logged, where = run.final_test
        summary.source = _where(ts, where, run)
    elif run.last_val is not None:
        step, logged = run.last_val
        summary.source = f'val @{step}'
    else:
        logged = {}
        summary.source = '-'
    for m in TASK_METRICS.get(task, ()):
        value = find_metric(logged, m.key)
        if value is not None:
            summary.metrics[m.name] = float(value) * m.scale
    last_train = max(run.train_timestamps, default='')
    for ts, _, where in run.tests:
        if ts < last_train:
            summary.notes.append(
                _where(ts, where, run) + ' predates the training: not used')


def _status(run: RunLog, task: str, summary: RunSummary) -> None:
    """``complete``, or what is missing: logs, metrics, epochs."""
    progress = _progress(run)
    missing = [
        m for m in expected_metrics(task, run) if m not in summary.metrics
    ]
    status = []
    if not run.timestamps:
        status.append('no logs')
    elif not summary.metrics:
        status.append('no metrics')
    elif missing:
        status.append('partial: no ' + ', '.join(missing))
    if progress is not None and progress[1] < progress[2]:
        unit, done, total = progress
        status.append(f'trained {done}/{total} {unit}s')
    if not status and progress is None and run.train:
        status.append('schedule unknown')
    summary.complete = not status
    summary.status = 'complete' if not status else '; '.join(status)


def summarize_run(run: RunLog,
                  index: Optional[ModelIndex] = None) -> RunSummary:
    """Final metrics, status and identity of one run; its paper values
    from ``index`` (a ``metafiles.ModelIndex``) when it is a metafile
    model in that model's setting."""
    cfg = run.config
    model_cfg = cfg.get('model') if cfg else None
    backbone_cfg = model_cfg.get('backbone') \
        if isinstance(model_cfg, dict) else None
    notes = []
    if cfg is None:
        notes.append('no dumped config')
    try:
        backbone = describe_backbone(backbone_cfg, config_scope(cfg))
    except BackboneError as e:
        backbone = unbuilt_backbone(backbone_cfg)
        notes.append(f'{e}; named by its type')
    task = infer_task(run)
    summary = RunSummary(
        config=run.name,
        work_dir=run.work_dir,
        task=task,
        method=method(model_cfg),
        dataset=dataset_type(cfg),
        backbone=backbone,
        schedule=schedule(cfg),
        status='',
        complete=False,
        source='',
        notes=notes)
    _final_metrics(run, task, summary)
    _status(run, task, summary)
    notes.extend(run.problems)

    meta = match_model(run, index)
    if meta is not None:
        summary.model = meta.name
        paper = meta.paper_metrics()
        if paper:
            why = _setting_mismatch(meta, task, model_cfg, summary.dataset,
                                    backbone)
            if why is None:
                summary.paper = paper
            else:
                notes.append(f'config of {meta.name}, but {why}: no paper '
                             'values')
    summary.pair_key = (task, summary.method, summary.dataset,
                        summary.schedule, backbone.family_key)
    summary.config_name = config_names(run)[0]
    seed = (cfg.get('randomness') or {}).get('seed') if cfg else None
    if isinstance(seed, int) and not isinstance(seed, bool):
        summary.seed = seed
        summary.group_key = config_fingerprint(cfg)
        summary.setting_key = config_fingerprint(cfg, backbone=False)
    return summary
