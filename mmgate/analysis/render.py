"""The report as Markdown, and the base-vs-gated bar chart.

Markdown: one table per task (config, backbone, method, dataset, schedule,
status, where the numbers come from, the metrics, parameters / FLOPs when
counted, the paper values and the differences), the base-vs-gated pairs,
the seeded groups and their paired t-tests, the runs without a partner and
the notes. The chart: grouped bars (base, gated) per pair and metric, the
gain above, published values as black ticks.
"""
from typing import TYPE_CHECKING, Iterable, Iterator, List, Optional, Sequence

from .pairing import group_comparisons
from .setting import TASK_METRICS, TASK_TITLES
from .stats import PairedTest

if TYPE_CHECKING:
    from .report import Report

__all__ = ['format_markdown', 'verdict', 'plot_pairs', 'PAIRED_TEST']


def _fmt(v: Optional[float], digits: int = 2, sign: bool = False) -> str:
    if v is None:
        return '-'
    return f'{v:+.{digits}f}' if sign else f'{v:.{digits}f}'


def _interval(low: Optional[float], high: Optional[float]) -> str:
    if low is None:
        return '-'
    return f'[{low:.2f}, {high:.2f}]'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> List[str]:
    """A Markdown table and the blank line after it."""
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    lines += ['| ' + ' | '.join(cells) + ' |' for cells in rows]
    return lines + ['']


def _by_task(items: Sequence, heading: str) -> Iterator[tuple]:
    """``(task, heading lines, items of the task)`` in the report's task
    order, for the tasks that have items."""
    for task, title in TASK_TITLES.items():
        of_task = [i for i in items if i.task == task]
        if of_task:
            yield task, [f'{heading} {title}', ''], of_task


def _format_runs(report: 'Report') -> List[str]:
    """One table of runs per task."""
    out = []
    show_params = any(s.params is not None for s in report.summaries)
    show_flops = any(s.flops is not None for s in report.summaries)
    for task, heading, rows in _by_task(report.summaries, '##'):
        metrics = TASK_METRICS.get(task, ())
        head = [
            'config', 'backbone', 'method', 'dataset', 'schedule', 'status',
            'result'
        ]
        head += [m.label for m in metrics]
        head += ['params (M)'] * show_params + ['FLOPs (G)'] * show_flops
        head += [f'paper {m.label}' for m in metrics]
        head += [f'Δ {m.label}' for m in metrics]
        cells = []
        for s in rows:
            row = [
                s.config, s.backbone.label, s.method, s.dataset, s.schedule,
                s.status, s.source
            ]
            row += [_fmt(s.metrics.get(m.name)) for m in metrics]
            row += [_fmt(s.params)] * show_params
            row += [_fmt(s.flops, 3)] * show_flops
            row += [_fmt(s.paper.get(m.name)) for m in metrics]
            row += [_fmt(s.diff.get(m.name), sign=True) for m in metrics]
            cells.append(row)
        out += heading + _table(head, cells)
    return out


def _format_pairs(report: 'Report') -> List[str]:
    """The base-vs-gated pairs, a row per metric with a value."""
    if not report.pairs:
        return []
    rows = []
    for p in report.pairs:
        for m in TASK_METRICS.get(p.skip.task, ()):
            if m.name not in p.base.metrics and \
                    m.name not in p.skip.metrics and \
                    m.name not in p.skip.paper:
                continue
            rows.append([
                p.skip.task, p.label, p.base.config, p.skip.config, m.label,
                _fmt(p.base.metrics.get(m.name)),
                _fmt(p.skip.metrics.get(m.name)),
                _fmt(p.gain(m.name), sign=True),
                _fmt(p.base.paper.get(m.name)),
                _fmt(p.skip.paper.get(m.name)),
                _fmt(p.paper_gain(m.name), sign=True)
            ])
    head = [
        'task', 'pair', 'base run', 'Skip run', 'metric', 'base', 'Skip',
        'gain', 'paper base', 'paper Skip', 'paper gain'
    ]
    return ['## Base vs Skip', ''] + _table(head, rows)


def _group_pair_row(gp, m, test, seeds, gated, base) -> List[str]:
    """The cells of one gated-vs-base group comparison."""
    pair = f'{gp.gated.label} vs {gp.base.label}'
    p = '-' if test.p is None else f'{test.p:.3f}'
    diff = _fmt(test.mean, sign=True)
    cells = [_fmt(gated), _fmt(base), diff, _fmt(test.std)]
    return [gp.gated.task, pair, m.label, ', '.join(map(str, seeds))] + \
        cells + [_interval(test.low, test.high), p, verdict(test)]


def _format_groups(report: 'Report') -> List[str]:
    """The seeded groups and their paired comparisons."""
    if not report.groups:
        return []
    out = [
        '## Seeded runs', '',
        'Runs of one config that differ only in `randomness.seed`: mean '
        '+- sample standard deviation over the seeds, and the Student-t '
        '95 % interval of the mean.', ''
    ]
    for task, heading, groups in _by_task(report.groups, '###'):
        metrics = TASK_METRICS.get(task, ())
        head = ['config', 'backbone', 'seeds']
        for m in metrics:
            head += [f'{m.label} mean +- std', f'{m.label} 95 % interval']
        rows = []
        for g in groups:
            row = [
                g.label, g.backbone.label,
                ', '.join(str(seed) for seed in g.seeds)
            ]
            for m in metrics:
                st = g.stats(m.name)
                if st is None:
                    row += ['-', '-']
                    continue
                std = f' +- {st.std:.2f}' if st.std is not None else ''
                row += [
                    f'{st.mean:.2f}{std} (n={st.n})',
                    _interval(st.low, st.high)
                ]
            rows.append(row)
        out += heading + _table(head, rows)
    notes = [f'- `{g.label}`: {n}' for g in report.groups for n in g.notes]
    if notes:
        out += notes + ['']
    if report.group_pairs:
        head = [
            'task', 'pair', 'metric', 'seeds', 'gated', 'base', 'gated - base',
            'std', '95 % interval', 'p', 'verdict'
        ]
        rows = [
            _group_pair_row(*row)
            for row in group_comparisons(report.group_pairs)
        ]
        out += ['## Gated vs base, paired by seed', '']
        out += [f'Test: {PAIRED_TEST}.', ''] + _table(head, rows)
    return out


def _format_notes(report: 'Report') -> List[str]:
    """The runs without a partner, the notes, where the numbers are
    from."""
    out = []
    paired = {id(p.base) for p in report.pairs} | \
        {id(p.skip) for p in report.pairs}
    unpaired = [s.config for s in report.summaries if id(s) not in paired]
    if unpaired:
        out += ['Runs without a partner: ' + ', '.join(unpaired) + '.', '']
    noted = [s for s in report.summaries if not s.complete or s.notes]
    if noted:
        out += ['## Incomplete runs and notes', '']
        out += [
            f'- `{s.config}`: {s.status}' + ''.join(f'; {n}' for n in s.notes)
            for s in noted
        ]
        out.append('')
    note = ('Metrics in percent (COCO mAP x100). "result" says where the '
            'numbers come from: the latest `tools/test.py` run, or the last '
            'validation (step = epoch or iteration). Paper values come from '
            'the metafiles, for runs of a metafile model (by config name) in '
            'its setting (task, dataset, classes, and a backbone with the '
            'parameters of the model config\'s).')
    if report.model_index:
        note += f' Model index: `{report.model_index}`.'
    else:
        note += ' No model index was read.'
    return out + [note, '']


def format_markdown(report: 'Report', title: str = 'Benchmark report') -> str:
    """The report as Markdown: one table per task, the pairs, the seeded
    groups, the runs that are not complete and the notes."""
    out = [f'# {title}', '']
    out += _format_runs(report) + _format_pairs(report)
    out += _format_groups(report) + _format_notes(report)
    return '\n'.join(out)


PAIRED_TEST = ('paired t-test (two-sided) on the per-seed differences '
               'gated - base; 95 % interval: mean difference +- '
               't(0.975, n - 1) x std / sqrt(n)')


def verdict(test: Optional[PairedTest]) -> str:
    """What a paired test says, in words."""
    if test is None:
        return 'no common seed'
    if test.low is None:
        return 'one pair: no interval (train with --seeds 2 or more)'
    if test.includes_zero:
        return (f'the interval includes 0: no difference shown with '
                f'{test.n} seeds')
    better = 'better' if test.mean > 0 else 'worse'
    return f'gated {better}: the interval excludes 0'


def plot_pairs(report: 'Report', path: str) -> Optional[str]:
    """Grouped bars (base, Skip) of every pair and metric, the gain written
    above; published values as black ticks. Returns ``path``, or None when
    there is no pair with a metric."""
    from .plotting import pyplot, save_figure
    plt = pyplot()
    panels = []  # (title, [(label, base, skip, paper_base, paper_skip)])
    for task, metrics in TASK_METRICS.items():
        for m in metrics:
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
    fig, axes = plt.subplots(
        1, len(panels), figsize=(width * len(panels), 4.2), squeeze=False)
    for ax, (title, bars) in zip(axes[0], panels):
        xs = range(len(bars))
        w = 0.38
        base = [b[1] if b[1] is not None else 0 for b in bars]
        skip = [b[2] if b[2] is not None else 0 for b in bars]
        ax.bar([x - w / 2 for x in xs], base, w, label='base', color='#9e9e9e')
        ax.bar([x + w / 2 for x in xs], skip, w, label='Skip', color='#1f77b4')
        for x, b in zip(xs, bars):
            for off, v in ((-w / 2, b[3]), (w / 2, b[4])):
                if v is not None:
                    ax.hlines(
                        v,
                        x + off - w / 2,
                        x + off + w / 2,
                        colors='k',
                        linewidth=2,
                        label='paper' if x == 0 and off < 0 else None)
            if b[1] is not None and b[2] is not None:
                top = max(b[1], b[2])
                ax.annotate(
                    f'{b[2] - b[1]:+.2f}', (x, top),
                    textcoords='offset points',
                    xytext=(0, 3),
                    ha='center',
                    fontsize=9)
            for off, v in ((-w / 2, b[1]), (w / 2, b[2])):
                if v is None:
                    ax.annotate(
                        'missing', (x + off, 0),
                        ha='center',
                        va='bottom',
                        rotation=90,
                        fontsize=8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([b[0] for b in bars], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel('%')
        ax.legend(fontsize=8, loc='lower right')
    return save_figure(fig, path)
