"""Benchmark report: one row per run, base-vs-gated pairs, paper comparison.

Reads the runs under a ``work_dirs`` folder (``runs.py``), summarises each
(``summary.py``: task, method, dataset and schedule from its dumped config,
``setting.py``; the backbone's name from its class, ``naming.py``; the
final metrics and a status; the paper values of its metafile model), pairs
them and groups the seeded ones (``pairing.py``), and writes Markdown and a
bar chart (``render.py``) and CSV files (``tables.py``). A run without
(all) metrics, or whose training stopped early, is listed with that
status, never dropped. A folder that only holds configs next to the runs
below it (``tools/finetune.py``'s work directory) is not listed as a run.

The published numbers and the baselines come from the model index
(``metafiles.py``: ``model-index.yml`` and the OpenMMLab metafiles of the
config families).

Example:
    >>> from mmgate.analysis.report import write_report
    >>> report, paths = write_report('work_dirs', 'work_dirs/report')
    ... # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['csv', 'markdown', 'pairs_csv', 'png']
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

from .metafiles import ModelIndex, load_model_index
from .naming import BackboneInfo, describe_backbone
from .pairing import Group, GroupPair, Pair, group_runs, pair_groups, pair_runs
from .render import format_markdown, plot_pairs, verdict
from .runs import RunLog, find_runs
from .setting import TASK_METRICS, TASK_ORDER
from .summary import RunSummary, match_model, summarize_run
from .tables import write_csv, write_groups_csv, write_pairs_csv

__all__ = [
    'TASK_METRICS', 'BackboneInfo', 'RunSummary', 'Pair', 'Group', 'GroupPair',
    'Report', 'describe_backbone', 'match_model', 'summarize_run', 'pair_runs',
    'group_runs', 'pair_groups', 'build_report', 'format_markdown', 'verdict',
    'write_csv', 'write_pairs_csv', 'write_groups_csv', 'plot_pairs',
    'write_report'
]


@dataclass
class Report:
    """The runs of a folder, summarised, paired and grouped.

    Attributes:
        summaries (list[RunSummary]): A row per run, by task, backbone
            trunk, base before gated.
        pairs (list[Pair]): Gated runs and their base runs.
        model_index (str, optional): The ``model-index.yml`` read.
        groups (list[Group]): Seeded runs of one config.
        group_pairs (list[GroupPair]): Gated groups and their base groups.
    """
    summaries: List[RunSummary]
    pairs: List[Pair]
    model_index: Optional[str] = None
    groups: List[Group] = field(default_factory=list)
    group_pairs: List[GroupPair] = field(default_factory=list)


def _index(model_index) -> Optional[ModelIndex]:
    """``build_report``'s ``model_index`` argument, loaded."""
    if model_index is False:
        return None
    if isinstance(model_index, ModelIndex):
        return model_index
    return load_model_index(model_index)  # None: mmgate's own


def _add_complexity(runs: List[RunLog], summaries: List[RunSummary],
                    flops: bool, flops_shapes: Optional[Dict[str, tuple]]):
    """Parameters (and FLOPs) of each run's model; a failure is noted."""
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
                    run.config,
                    shapes.get(s.task) if flops else None)
            except Exception as e:  # keep the report going
                cache[key] = dict(error=f'{type(e).__name__}: {e}')
        res = cache[key]
        if 'error' in res:
            s.notes.append(f'complexity failed: {res["error"]}')
            continue
        s.params = res['params'] / 1e6
        if res.get('flops') is not None:
            s.flops = res['flops'] / 1e9


def _row_order(s: RunSummary) -> tuple:
    """Task, then method, dataset, schedule and backbone trunk (smaller
    first), base before gated."""
    task = TASK_ORDER.get(s.task, len(TASK_ORDER))
    return task, s.pair_key[1:], s.backbone.skip, s.config


def build_report(
        root: str,
        params: bool = False,
        flops: bool = False,
        flops_shapes: Optional[Dict[str, tuple]] = None,
        model_index: Union[None, str, ModelIndex, bool] = None) -> Report:
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
    runs = find_runs(root)
    # a folder of configs next to the runs below it (tools/finetune.py's
    # work directory) is not a run
    runs = [
        r for r in runs if r.timestamps or r.checkpoints or not any(
            o.work_dir.startswith(r.work_dir + os.sep) for o in runs)
    ]
    summaries = [summarize_run(run, index) for run in runs]
    if params or flops:
        _add_complexity(runs, summaries, flops, flops_shapes)
    summaries.sort(key=_row_order)
    pairs = pair_runs(summaries, index)
    groups = group_runs(summaries)
    return Report(summaries, pairs, index.path if index is not None else None,
                  groups, pair_groups(groups))


def write_report(
    root: str,
    out_dir: str,
    params: bool = False,
    flops: bool = False,
    title: str = 'Benchmark report',
    flops_shapes: Optional[Dict[str, tuple]] = None,
    model_index: Union[None, str, ModelIndex, bool] = None
) -> Tuple[Report, Dict[str, str]]:
    """Build the report of ``root`` and write ``report.md``,
    ``report.csv``, ``pairs.csv``, ``pairs.png`` (when there are pairs) and
    ``groups.csv`` / ``group_pairs.csv`` (when there are seeded runs) into
    ``out_dir``. Returns the report and the written paths by kind.
    ``model_index``: as in ``build_report``."""
    report = build_report(
        root,
        params=params,
        flops=flops,
        flops_shapes=flops_shapes,
        model_index=model_index)
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(
        markdown=osp.join(out_dir, 'report.md'),
        csv=osp.join(out_dir, 'report.csv'),
        pairs_csv=osp.join(out_dir, 'pairs.csv'))
    markdown = format_markdown(report, title)
    with open(paths['markdown'], 'w', encoding='utf-8') as f:
        f.write(markdown)
    write_csv(report, paths['csv'])
    write_pairs_csv(report, paths['pairs_csv'])
    if report.groups:
        paths['groups_csv'] = osp.join(out_dir, 'groups.csv')
        paths['group_pairs_csv'] = osp.join(out_dir, 'group_pairs.csv')
        write_groups_csv(report, paths['groups_csv'], paths['group_pairs_csv'])
    png = plot_pairs(report, osp.join(out_dir, 'pairs.png'))
    if png:
        paths['png'] = png
    return report, paths
