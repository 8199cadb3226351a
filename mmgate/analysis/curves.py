"""Training curves of one or several runs: losses and validation metrics.

Reads the scalar logs of MMEngine work directories (``runs.load_run``) and
draws, side by side, the training losses against the iteration and the
validation metrics against their step (the epoch, or the iteration for
iteration-based schedules).
"""
from typing import Dict, List, Optional, Sequence, Union

from .runs import RunLog, load_run

__all__ = [
    'loss_series', 'metric_series', 'default_metric_keys', 'plot_curves'
]

PREFERRED_METRICS = ('coco/bbox_mAP', 'coco/segm_mAP', 'mIoU', 'aAcc',
                     'accuracy/top1')


def loss_series(run: RunLog, key: str = 'loss') -> tuple:
    """``(iterations, values)`` of a train scalar (``loss`` by default)."""
    xs, ys = [], []
    for line in run.train:
        if key in line:
            xs.append(int(line.get('iter', line.get('step', len(xs)))))
            ys.append(float(line[key]))
    return xs, ys


def metric_series(run: RunLog, key: str) -> tuple:
    """``(steps, values)`` of a validation metric."""
    steps = sorted(s for s, m in run.val.items() if key in m)
    return steps, [float(run.val[s][key]) for s in steps]


def default_metric_keys(runs: Sequence[RunLog]) -> List[str]:
    """The task metrics the runs logged (box / mask mAP, mIoU / aAcc,
    top-1), else every validation metric they share."""
    logged = set()
    for run in runs:
        for m in run.val.values():
            logged.update(m)
    keys = [k for k in PREFERRED_METRICS if k in logged]
    if keys:
        return keys
    return sorted(logged)


def plot_curves(runs: Sequence[Union[str, RunLog]],
                path: str,
                loss_keys: Sequence[str] = ('loss', ),
                metric_keys: Optional[Sequence[str]] = None,
                labels: Optional[Sequence[str]] = None,
                smooth: int = 1,
                title: Optional[str] = None) -> Dict[str, List[str]]:
    """One PNG: a panel per loss key and per metric key, a line per run.

    Args:
        runs: Work directories or loaded runs.
        path (str): Output PNG.
        loss_keys: Train scalars to draw against the iteration.
        metric_keys: Validation metrics; default ``default_metric_keys``.
        labels: Legend names (default: the run names).
        smooth (int): Moving-average window of the loss curves.

    Returns:
        dict: ``{'drawn': [...], 'empty': [...]}``: which
        ``run: key`` series had data and which had none (reported, not
        dropped silently).
    """
    from .plotting import pyplot, save_figure
    plt = pyplot()
    runs = [r if isinstance(r, RunLog) else load_run(r) for r in runs]
    if not runs:
        raise ValueError('no run to plot')
    labels = list(labels) if labels else [r.name for r in runs]
    if len(labels) != len(runs):
        raise ValueError(f'{len(labels)} labels for {len(runs)} runs')
    if metric_keys is None:
        metric_keys = default_metric_keys(runs)
    panels = [('loss', k) for k in loss_keys] + \
        [('metric', k) for k in metric_keys]
    if not panels:
        raise ValueError('nothing to plot: no loss or metric key')
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    report = dict(drawn=[], empty=[])
    for ax, (kind, key) in zip(axes[0], panels):
        for run, label in zip(runs, labels):
            if kind == 'loss':
                xs, ys = loss_series(run, key)
                if smooth > 1 and len(ys) >= smooth:
                    ys = [
                        sum(ys[max(0, i - smooth + 1):i + 1]) /
                        len(ys[max(0, i - smooth + 1):i + 1])
                        for i in range(len(ys))
                    ]
            else:
                xs, ys = metric_series(run, key)
            if not xs:
                report['empty'].append(f'{run.name}: {key}')
                continue
            report['drawn'].append(f'{run.name}: {key}')
            style = '-' if kind == 'loss' else 'o-'
            ax.plot(xs, ys, style, label=label, markersize=3, linewidth=1.2)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel('iteration' if kind == 'loss' else 'validation step')
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:
            ax.text(
                0.5,
                0.5,
                'no data',
                ha='center',
                va='center',
                transform=ax.transAxes)
    save_figure(fig, path, title)
    return report
