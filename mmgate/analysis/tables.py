"""The report as CSV files: runs, pairs, seeded groups, group tests.

Metrics in percent with 4 decimals; an empty cell where a value does not
apply or is missing. Every writer creates the file's folder.
"""
import csv
import os
import os.path as osp
from typing import TYPE_CHECKING, Iterable, Iterator, Optional, Sequence

from .pairing import group_comparisons
from .setting import ALL_METRICS, TASK_METRICS

if TYPE_CHECKING:
    from .report import Report

__all__ = ['write_csv', 'write_pairs_csv', 'write_groups_csv']


def _write_rows(path: str, fields: Sequence[str],
                rows: Iterable[dict]) -> None:
    """A CSV file with a header; the rows are made before it is opened,
    so an error leaves no half-written file."""
    rows = list(rows)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def _csv(v: Optional[float]) -> str:
    return '' if v is None else f'{v:.4f}'


RUN_FIELDS = ('config', 'model', 'work_dir', 'task', 'method', 'dataset',
              'backbone', 'gated', 'schedule', 'status', 'complete', 'result',
              *[m.name for m in ALL_METRICS], 'params_M', 'flops_G',
              *[f'paper_{m.name}' for m in ALL_METRICS],
              *[f'diff_{m.name}' for m in ALL_METRICS], 'notes')
PAIR_FIELDS = ('task', 'pair', 'base_config', 'skip_config', 'paired_by',
               'metric', 'base', 'skip', 'gain', 'paper_base', 'paper_skip',
               'paper_gain')
GROUP_FIELDS = ('task', 'config', 'backbone', 'gated', 'seeds', 'metric', 'n',
                'mean', 'std', 'ci_low', 'ci_high')
GROUP_PAIR_FIELDS = ('task', 'gated_config', 'base_config', 'metric', 'n',
                     'seeds', 'gated_mean', 'base_mean', 'diff_mean',
                     'diff_std', 'ci_low', 'ci_high', 't', 'p',
                     'includes_zero', 'test')


def _run_row(s) -> dict:
    row = dict(
        config=s.config,
        model=s.model or '',
        work_dir=s.work_dir,
        task=s.task,
        method=s.method,
        dataset=s.dataset,
        backbone=s.backbone.label,
        gated=s.backbone.skip,
        schedule=s.schedule,
        status=s.status,
        complete=s.complete,
        result=s.source,
        params_M=_csv(s.params),
        flops_G=_csv(s.flops),
        notes=' | '.join(s.notes))
    for m in ALL_METRICS:
        row[m.name] = _csv(s.metrics.get(m.name))
        row[f'paper_{m.name}'] = _csv(s.paper.get(m.name))
        row[f'diff_{m.name}'] = _csv(s.diff.get(m.name))
    return row


def write_csv(report: 'Report', path: str) -> None:
    """One row per run; metric, paper and difference columns of every
    task (empty where they do not apply)."""
    _write_rows(path, RUN_FIELDS, map(_run_row, report.summaries))


def _pair_rows(report: 'Report') -> Iterator[dict]:
    for p in report.pairs:
        for m in TASK_METRICS.get(p.skip.task, ()):
            yield dict(
                task=p.skip.task,
                pair=p.label,
                base_config=p.base.config,
                skip_config=p.skip.config,
                paired_by=p.paired_by,
                metric=m.name,
                base=_csv(p.base.metrics.get(m.name)),
                skip=_csv(p.skip.metrics.get(m.name)),
                gain=_csv(p.gain(m.name)),
                paper_base=_csv(p.base.paper.get(m.name)),
                paper_skip=_csv(p.skip.paper.get(m.name)),
                paper_gain=_csv(p.paper_gain(m.name)))


def write_pairs_csv(report: 'Report', path: str) -> None:
    """One row per pair and metric."""
    _write_rows(path, PAIR_FIELDS, _pair_rows(report))


def _group_rows(report: 'Report') -> Iterator[dict]:
    for g in report.groups:
        for m in TASK_METRICS.get(g.task, ()):
            st = g.stats(m.name)
            if st is None:
                continue
            yield dict(
                task=g.task,
                config=g.label,
                backbone=g.backbone.label,
                gated=g.backbone.skip,
                seeds=' '.join(map(str, g.values(m.name))),
                metric=m.name,
                n=st.n,
                mean=_csv(st.mean),
                std=_csv(st.std),
                ci_low=_csv(st.low),
                ci_high=_csv(st.high))


def _group_pair_rows(report: 'Report') -> Iterator[dict]:
    for gp, m, test, seeds, gated, base in group_comparisons(
            report.group_pairs):
        yield dict(
            task=gp.gated.task,
            gated_config=gp.gated.label,
            base_config=gp.base.label,
            metric=m.name,
            n=test.n,
            seeds=' '.join(map(str, seeds)),
            gated_mean=_csv(gated),
            base_mean=_csv(base),
            diff_mean=_csv(test.mean),
            diff_std=_csv(test.std),
            ci_low=_csv(test.low),
            ci_high=_csv(test.high),
            t=_csv(test.t),
            p=_csv(test.p),
            includes_zero=''
            if test.includes_zero is None else test.includes_zero,
            test='paired t-test, two-sided, 95 % t interval')


def write_groups_csv(report: 'Report',
                     path: str,
                     pairs_path: Optional[str] = None) -> None:
    """The seeded groups (one row per group and metric) to ``path``, and
    their paired comparisons to ``pairs_path``."""
    _write_rows(path, GROUP_FIELDS, _group_rows(report))
    if pairs_path is not None:
        _write_rows(pairs_path, GROUP_PAIR_FIELDS, _group_pair_rows(report))
