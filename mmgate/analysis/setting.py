"""What a run's dumped config says: task, metrics, dataset, schedule, method.

Everything here reads the config MMEngine dumped into the work directory
(``runs.RunLog.config``) and the metric keys it logged; nothing reads a file
name. The report's metrics and their scale to percent are data
(``TASK_METRICS``): MMDetection's ``coco/*_mAP`` are fractions (x100),
MMSegmentation's ``aAcc`` / ``mIoU`` and MMPretrain's ``accuracy/top1``
already percentages.
"""
import hashlib
import json
from typing import Dict, List, NamedTuple, Optional

from .naming import type_name
from .runs import RunLog

__all__ = [
    'Metric', 'TASK_METRICS', 'TASK_TITLES', 'TASK_ORDER', 'ALL_METRICS',
    'find_metric', 'infer_task', 'expected_metrics', 'dataset_type',
    'schedule', 'planned', 'method', 'num_classes', 'config_fingerprint'
]


class Metric(NamedTuple):
    name: str  # report name
    key: str  # key in MMEngine's logs
    scale: float  # to percent
    label: str


BOX_MAP = Metric('box_mAP', 'coco/bbox_mAP', 100., 'box mAP')
MASK_MAP = Metric('mask_mAP', 'coco/segm_mAP', 100., 'mask mAP')
A_ACC = Metric('aAcc', 'aAcc', 1., 'aAcc')
MIOU = Metric('mIoU', 'mIoU', 1., 'mIoU')
TOP1 = Metric('top1', 'accuracy/top1', 1., 'top-1')
TASK_METRICS: Dict[str, tuple] = {
    'det': (BOX_MAP, MASK_MAP),
    'seg': (A_ACC, MIOU),
    'cls': (TOP1, ),
}
ALL_METRICS = [m for ms in TASK_METRICS.values() for m in ms]
TASK_TITLES = {
    'det': 'Detection / instance segmentation',
    'seg': 'Semantic segmentation',
    'cls': 'Classification',
    'unknown': 'Runs of unknown task',
}
TASK_ORDER = {task: i for i, task in enumerate(TASK_TITLES)}
EVALUATOR_TASKS = {
    'CocoMetric': 'det',
    'IoUMetric': 'seg',
    'Accuracy': 'cls',
    'SingleLabelMetric': 'cls'
}
SCOPE_TASKS = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls'}
# keys of a dumped config that say where and how a run was launched, not
# what it trains
LAUNCH_KEYS = ('work_dir', 'load_from', 'resume', 'launcher',
               'experiment_name')


def find_metric(metrics: dict, key: str) -> Optional[float]:
    """``metrics[key]``, else the value of a ``<prefix>/<key>`` entry."""
    if key in metrics:
        return metrics[key]
    hits = [v for k, v in metrics.items() if k.endswith('/' + key)]
    return hits[0] if hits else None


def _evaluator_cfgs(cfg) -> List[dict]:
    out = []
    for key in ('test_evaluator', 'val_evaluator'):
        ev = cfg.get(key) if cfg else None
        if isinstance(ev, dict):
            ev = ev.get('metrics', ev) if type_name(ev) == 'Evaluator' \
                else ev
        for e in (ev if isinstance(ev, (list, tuple)) else [ev]):
            if isinstance(e, dict):
                out.append(e)
    return out


def infer_task(run: RunLog) -> str:
    """``'det'``, ``'seg'``, ``'cls'`` or ``'unknown'``: from the metrics
    logged, else the evaluator's type, else the default scope."""
    logged = dict(run.val.get(max(run.val), {})) if run.val else {}
    for _, m, _ in run.tests:
        logged.update(m)
    for task, metrics in TASK_METRICS.items():
        if any(find_metric(logged, m.key) is not None for m in metrics):
            return task
    for ev in _evaluator_cfgs(run.config):
        if type_name(ev) in EVALUATOR_TASKS:
            return EVALUATOR_TASKS[type_name(ev)]
    scope = run.config.get('default_scope') if run.config else None
    return SCOPE_TASKS.get(scope, 'unknown')


def expected_metrics(task: str, run: RunLog) -> List[str]:
    """The report metrics a complete run of ``task`` has (mask mAP only
    when the evaluator asks for ``segm``)."""
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


def dataset_type(cfg) -> str:
    """The dataset type of the test (else val, else train) dataloader,
    wrappers (RepeatDataset, ClassBalancedDataset ...) unwrapped."""
    for split in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        loader = cfg.get(split) if cfg else None
        ds = loader.get('dataset') if isinstance(loader, dict) else None
        while isinstance(ds, dict) and isinstance(ds.get('dataset'), dict):
            ds = ds['dataset']
        if isinstance(ds, dict) and ds.get('type'):
            return type_name(ds)
    return '?'


def planned(cfg) -> Optional[tuple]:
    """``('epoch', 12)`` or ``('iter', 80000)``: the planned schedule."""
    tc = cfg.get('train_cfg') if cfg else None
    if not isinstance(tc, dict):
        return None
    if 'max_epochs' in tc and type_name(tc) != 'IterBasedTrainLoop':
        return 'epoch', int(tc['max_epochs'])
    if 'max_iters' in tc:
        return 'iter', int(tc['max_iters'])
    return None


def schedule(cfg) -> str:
    """``'12 ep'``, ``'160k it'``, ``'300 it'`` or ``'?'``."""
    plan = planned(cfg)
    if plan is None:
        return '?'
    unit, n = plan
    if unit == 'epoch':
        return f'{n} ep'
    return f'{n // 1000}k it' if n % 1000 == 0 else f'{n} it'


def method(model_cfg: Optional[dict]) -> str:
    """The model type and its head: ``CascadeRCNN+CascadeRoIHead+mask``."""
    if not isinstance(model_cfg, dict):
        return '?'
    name = type_name(model_cfg)
    for head_key in ('decode_head', 'roi_head', 'head'):
        head = model_cfg.get(head_key)
        if isinstance(head, dict) and head.get('type'):
            name += f'+{type_name(head)}'
            if isinstance(head.get('mask_head'), (dict, list)):
                name += '+mask'
            break
    return name


def num_classes(task: str, model_cfg: dict) -> Optional[int]:
    """Classes of the model's (first) prediction head, when stated."""
    head = dict(
        det=(model_cfg.get('roi_head') or {}).get('bbox_head'),
        seg=model_cfg.get('decode_head'),
        cls=model_cfg.get('head')).get(task)
    if isinstance(head, (list, tuple)) and head:
        head = head[0]
    n = head.get('num_classes') if isinstance(head, dict) else None
    return int(n) if isinstance(n, int) else None


def config_fingerprint(cfg, backbone: bool = True) -> str:
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
