"""Write the embedded demo datasets (seeded: same command, same files).

    python tools/misc/make_demo_data.py                  # all, to data/demo
    python tools/misc/make_demo_data.py --tasks det --out /tmp/demo --seed 1

det: COCO instance segmentation (data/demo/coco), seg: ADE20k layout
(data/demo/ade/ADEChallengeData2016), cls: ImageNet layout
(data/demo/imagenet). See mmgate/datasets/demo_data.py.
"""
import argparse
import os.path as osp
import shutil
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from mmgate.datasets import make_demo_data  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out',
        default='data/demo',
        help='output folder (default: data/demo)')
    parser.add_argument(
        '--tasks',
        nargs='+',
        default=['det', 'seg', 'cls'],
        choices=['det', 'seg', 'cls'])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--force', action='store_true', help='rewrite sets that already exist')
    return parser.parse_args(argv)


def _read(path):
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return f.read().strip()


SUBDIRS = {'det': 'coco', 'seg': 'ade', 'cls': 'imagenet'}


def main(argv=None):
    args = parse_args(argv)
    for task in args.tasks:
        folder = osp.join(args.out, SUBDIRS[task])
        done = osp.join(folder, '.complete')
        if _read(done) == f'seed {args.seed}' and not args.force:
            print(f'{task}: {folder} exists (--force rewrites it)')
            continue
        shutil.rmtree(folder, ignore_errors=True)
        root = make_demo_data(args.out, tasks=[task], seed=args.seed)[task]
        with open(done, 'w') as f:
            f.write(f'seed {args.seed}\n')
        print(f'{task}: wrote {root}')


if __name__ == '__main__':
    main()
