"""Benchmark report of the runs in a work_dirs folder.

    python tools/analysis/benchmark_report.py work_dirs
    python tools/analysis/benchmark_report.py work_dirs/finetune \
        --out-dir work_dirs/finetune/report --params --flops

Writes report.md (printed too), report.csv, pairs.csv and pairs.png into
--out-dir (default: work_dirs/report, which git ignores). Each run's
backbone is named from its class (built as its config builds it); the
paper values and the base / gated pairs come from the metafiles
(model-index.yml: mmgate's own by default, --model-index PATH for another,
--no-model-index for none). What is read and how runs are matched and
paired: mmgate/analysis/summary.py, naming.py and pairing.py.

Seeded runs (``randomness.seed``, e.g. ``tools/finetune.py --seeds K``)
whose configs differ only in the seed are grouped: mean, standard deviation
and 95 % t interval per metric (groups.csv), and each gated group is
compared with its base group seed by seed: the paired t-test of gated -
base, its 95 % interval, and whether that includes 0 (group_pairs.csv).
"""
import argparse

from mmgate.analysis.complexity import parse_shape
from mmgate.analysis.report import write_report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'root',
        nargs='?',
        default='work_dirs',
        help='work_dirs folder (or one run)')
    parser.add_argument(
        '--out-dir',
        default='work_dirs/report',
        help='where to write (default: work_dirs/report)')
    parser.add_argument(
        '--params',
        action='store_true',
        help='build each model and count its parameters')
    parser.add_argument(
        '--flops',
        action='store_true',
        help='count FLOPs too (slow for detectors)')
    parser.add_argument(
        '--flops-shape',
        nargs='+',
        default=[],
        metavar='TASK=H[,W]',
        help='input of the FLOP count per task, e.g. det=800,1333 '
        'seg=512 cls=224 (those are the defaults)')
    parser.add_argument('--title', default='Benchmark report')
    index = parser.add_mutually_exclusive_group()
    index.add_argument(
        '--model-index',
        metavar='PATH',
        default=None,
        help='model-index.yml (or its folder) with the paper values and '
        'baselines (default: mmgate\'s; also $MMGATE_MODEL_INDEX)')
    index.add_argument(
        '--no-model-index',
        action='store_true',
        help='no paper values; pair runs by their configs only')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    shapes = {}
    for item in args.flops_shape:
        task, _, size = item.partition('=')
        try:
            if task not in ('det', 'seg', 'cls'):
                raise ValueError(task)
            shapes[task] = parse_shape([int(v) for v in size.split(',')])
        except ValueError:
            raise SystemExit(f'--flops-shape wants det|seg|cls=H[,W], '
                             f'got {item!r}') from None
    report, paths = write_report(
        args.root,
        args.out_dir,
        params=args.params or args.flops,
        flops=args.flops,
        title=args.title,
        flops_shapes=shapes,
        model_index=False if args.no_model_index else args.model_index)
    with open(paths['markdown'], encoding='utf-8') as f:
        print(f.read())
    print(f'{len(report.summaries)} runs, {len(report.pairs)} pairs, '
          f'{len(report.groups)} seeded groups, {len(report.group_pairs)} '
          'paired by seed; wrote')
    for kind, path in paths.items():
        print(f'  {kind}: {path}')
    return report, paths


if __name__ == '__main__':
    main()
