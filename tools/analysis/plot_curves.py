"""Loss and validation-metric curves of one or several runs.

    python tools/analysis/plot_curves.py work_dirs/a work_dirs/b \
        --out work_dirs/curves/a_vs_b.png
    python tools/analysis/plot_curves.py work_dirs/a \
        --loss-keys loss loss_cls \
        --metric-keys coco/bbox_mAP --smooth 5

Reads MMEngine's vis_data/scalars.json of every launch of each run and
writes one PNG (default: work_dirs/curves.png, which git ignores).
"""
import argparse

from mmgate.analysis.curves import plot_curves


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+', help='work directories')
    parser.add_argument('--out', default='work_dirs/curves.png')
    parser.add_argument('--loss-keys', nargs='+', default=['loss'])
    parser.add_argument(
        '--metric-keys',
        nargs='*',
        default=None,
        help='default: the task metrics found')
    parser.add_argument('--labels', nargs='+', default=None)
    parser.add_argument(
        '--smooth',
        type=int,
        default=1,
        help='moving-average window of the losses')
    parser.add_argument('--title', default=None)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    res = plot_curves(args.runs, args.out, args.loss_keys, args.metric_keys,
                      args.labels, args.smooth, args.title)
    print(f'wrote {args.out}')
    for item in res['empty']:
        print(f'  no data: {item}')
    return res


if __name__ == '__main__':
    main()
