"""Run one embedded CPU demo end to end (what ``tools/run_demo.sh`` calls).

    python tools/misc/run_demo.py det   # Cascade Mask R-CNN + SkipResNet
    python tools/misc/run_demo.py seg   # UPerNet + SkipResNet
    python tools/misc/run_demo.py cls   # ImageNet-style classifier

Steps, each timed:
1. write the demo data if absent (tools/misc/make_demo_data.py);
2. evaluate the untrained model (the config's own random init), so that the
   trained numbers have a reference;
3. train with ``tools/train.py`` (the real command line);
4. evaluate the last checkpoint with ``tools/test.py``;
5. print the loss at the first and last logged iteration and the metrics
   before and after training, and write them to
   ``<work_dir>/demo_summary.json``.

Extra arguments go to tools/train.py, e.g. ``--cfg-options
train_cfg.max_epochs=1``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)

DEMOS = {
    'det':
    dict(
        config='configs/demo/cascade_rcnn_skipresnet18_demo.py',
        metrics=('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
                 'coco/segm_mAP_50')),
    'seg':
    dict(
        config='configs/demo/upernet_skipresnet18_demo.py',
        metrics=('aAcc', 'mIoU', 'mAcc')),
    'cls':
    dict(
        config='configs/demo/cls_skipresnet18_demo.py',
        metrics=('accuracy/top1', )),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('task', choices=sorted(DEMOS))
    parser.add_argument(
        '--data',
        default='data/demo',
        help='demo data folder (default: data/demo)')
    parser.add_argument('--work-dir', help='default: work_dirs/<config>')
    parser.add_argument(
        '--seed', type=int, default=0, help='data and training seed')
    args, train_args = parser.parse_known_args(argv)
    return args, train_args


def _run(cmd):
    print('+', ' '.join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True, env=os.environ)
    return time.time() - start


def _data_options(task, data):
    """--cfg-options pointing a demo config at another data folder."""
    if osp.normpath(data) == osp.normpath('data/demo'):
        return []
    if task == 'det':
        root = osp.join(data, 'coco') + '/'
        return [
            f'train_dataloader.dataset.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}',
            'val_evaluator.ann_file='
            f'{root}annotations/instances_val2017.json',
            'test_evaluator.ann_file='
            f'{root}annotations/instances_val2017.json'
        ]
    sub = {'seg': 'ade/ADEChallengeData2016', 'cls': 'imagenet'}[task]
    root = osp.join(data, sub)
    return [
        f'{k}_dataloader.dataset.data_root={root}'
        for k in ('train', 'val', 'test')
    ]


def evaluate_untrained(config, options, work_dir, seed):
    """Metrics of the config's freshly initialised model on the test set."""
    from mmengine.config import Config, DictAction

    from mmgate.apis.common import build_runner
    cfg = Config.fromfile(config)
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--o', *options]).o)
    cfg.work_dir = work_dir
    cfg.load_from = None
    cfg.randomness = dict(seed=seed)
    runner = build_runner(cfg)
    runner.model.init_weights()
    return runner.test()


def _last_json(folder):
    """The metrics line MMEngine's LoggerHook wrote for a test run."""
    logs = sorted(glob.glob(osp.join(folder, '*', '*.json')))
    if not logs:
        raise FileNotFoundError(f'no metrics json under {folder}')
    with open(logs[-1]) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def _losses(work_dir):
    """(first, last) logged training loss with their iterations."""
    files = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    rows = []
    for path in files:
        with open(path) as f:
            rows += [json.loads(line) for line in f if '"loss"' in line]
    rows.sort(key=lambda r: r['step'])
    if not rows:
        raise FileNotFoundError(f'no training loss logged under {work_dir}')
    return (rows[0]['step'], rows[0]['loss']), (rows[-1]['step'],
                                                rows[-1]['loss'])


def main(argv=None):
    args, train_args = parse_args(argv)
    demo = DEMOS[args.task]
    config = demo['config']
    name = osp.splitext(osp.basename(config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', name)
    options = _data_options(args.task, args.data)
    py = sys.executable
    times = {}
    start = time.time()

    times['data'] = _run([
        py, 'tools/misc/make_demo_data.py', '--out', args.data, '--tasks',
        args.task, '--seed',
        str(args.seed)
    ])

    t = time.time()
    before = evaluate_untrained(
        osp.join(ROOT, config), options, osp.join(work_dir, 'untrained'),
        args.seed)
    times['eval_untrained'] = time.time() - t

    cfg_opts = [f'randomness.seed={args.seed}', *options]
    extra = list(train_args)
    if '--cfg-options' in extra:
        i = extra.index('--cfg-options')
        cfg_opts += extra[i + 1:]
        extra = extra[:i]
    times['train'] = _run([
        py, 'tools/train.py', config, '--work-dir', work_dir, *extra,
        '--cfg-options', *cfg_opts
    ])
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    test_dir = osp.join(work_dir, 'test')
    times['test'] = _run([
        py, 'tools/test.py', config, checkpoint, '--work-dir', test_dir,
        *(['--cfg-options', *options] if options else [])
    ])
    after = _last_json(test_dir)
    times['total'] = time.time() - start
    (it0, loss0), (it1, loss1) = _losses(work_dir)

    keys = [k for k in demo['metrics'] if k in after]
    summary = dict(
        task=args.task,
        config=config,
        checkpoint=checkpoint,
        loss_first=dict(iter=it0, loss=loss0),
        loss_last=dict(iter=it1, loss=loss1),
        untrained={k: before.get(k)
                   for k in keys},
        trained={k: after.get(k)
                 for k in keys},
        seconds={
            k: round(v, 1)
            for k, v in times.items()
        })
    with open(osp.join(work_dir, 'demo_summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)

    print(f'\n==== demo {args.task}: {config} ====')
    print(f'loss      : {loss0:.4f} (iter {it0}) -> {loss1:.4f} (iter {it1})')
    width = max(len(k) for k in keys)
    print(f'{"metric":<{width}}  untrained   trained')
    for k in keys:
        print(f'{k:<{width}}  {before[k]:9.4f} {after[k]:9.4f}')
    print('seconds   : ' + ', '.join(f'{k} {v:.0f}' for k, v in times.items()))
    print(f'summary   : {osp.join(work_dir, "demo_summary.json")}')
    return summary


if __name__ == '__main__':
    os.chdir(ROOT)
    # One compute thread, the data worker gets the other core: on a 2-core
    # CPU that is faster than 2 threads, and far faster on a busy machine,
    # where OpenMP's spinning threads slow a step down 5-10x (measured).
    # Set OMP_NUM_THREADS to override.
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main()
