# Copyright (c) OpenMMLab. All rights reserved. Adapted for mmgate.
"""Test (and evaluate) a detector, segmentor or classifier checkpoint.

MMDetection's ``tools/test.py`` command line, for any OpenMMLab config::

    python tools/test.py CONFIG CHECKPOINT [--out results.pkl]
    tools/dist_test.sh CONFIG CHECKPOINT 8

The checkpoint is one a run wrote (loaded through ``Runner.load_checkpoint``,
which ``mmgate.compat.apply()``, called first in ``main``, lets unpickle
MMEngine's own objects); it is verified first (``mmgate.fileio``: a missing,
empty, truncated or damaged file ends with one line naming it). Metrics are
printed and written under ``work_dirs/<config name>/``.
"""
import argparse
import os
import sys
import warnings
from copy import deepcopy

from mmengine.config import ConfigDict, DictAction

import mmgate.compat
from mmgate.fileio import CheckpointError, verify_checkpoint
# tools/train.py (this script's folder is on sys.path): the config and runner
# set-up both tools share
from train import (build_runner, check_data_or_exit, finish_distributed,
                   run_or_explain, setup_cfg)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and eval) a model (detection, segmentation, '
        'classification)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. '
        'If specified, it will be automatically saved '
        'to the work_dir/timestamp/show_dir')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--tta', action='store_true')
    parser.add_argument(
        '--check-data',
        choices=['auto', 'all', 'none'],
        default='auto',
        help='check the test data first (see tools/train.py)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _visualize(cfg, args):
    """Turn the task's visualization hook on (--show / --show-dir)."""
    scope = cfg.get('default_scope')
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise RuntimeError('--show / --show-dir need a "visualization" hook '
                           'in default_hooks')
    hook['show'] = args.show
    hook['wait_time'] = args.wait_time
    if scope == 'mmpretrain':
        hook['enable'] = True
        if args.show_dir:
            hook['out_dir'] = args.show_dir
    else:
        hook['draw'] = True
        if args.show_dir and scope == 'mmdet':
            hook['test_out_dir'] = args.show_dir
        elif args.show_dir:
            cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def _tta(cfg):
    """Wrap the model and test pipeline for test-time augmentation."""
    scope = cfg.get('default_scope')
    if 'tta_model' not in cfg:
        warnings.warn('no tta_model in the config: using the default one')
        cfg.tta_model = {
            'mmdet': dict(type='DetTTAModel', tta_cfg=dict(
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)),
            'mmseg': dict(type='SegTTAModel'),
            'mmpretrain': dict(type='AverageClsScoreTTA'),
        }[scope]
    if 'tta_pipeline' not in cfg:
        warnings.warn('no tta_pipeline in the config: flip test')
        data_cfg = cfg.test_dataloader.dataset
        while 'dataset' in data_cfg:
            data_cfg = data_cfg['dataset']
        pipeline = deepcopy(data_cfg.pipeline)
        pipeline[-1] = dict(type='TestTimeAug', transforms=[
            [dict(type='RandomFlip', prob=1.),
             dict(type='RandomFlip', prob=0.)],
            [pipeline[-1]],
        ])
        cfg.tta_pipeline = pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    return cfg


def main(argv=None):
    # the fixes of mmgate.compat (a run's own checkpoint, DDP without CUDA),
    # before the Runner is built
    mmgate.compat.apply()
    args = parse_args(argv)
    cfg = setup_cfg(args)
    if '://' not in args.checkpoint:
        # missing, empty, truncated, damaged or not a checkpoint: one line
        try:
            verify_checkpoint(args.checkpoint)
        except CheckpointError as e:
            sys.exit(f'test.py: error: {e}')
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = _visualize(cfg, args)
    if args.tta:
        cfg = _tta(cfg)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        sys.exit('test.py: error: --out must be a .pkl file')

    if args.check_data != 'none':
        check_data_or_exit(cfg, ('test', ), args.check_data, 'test.py')

    runner = build_runner(cfg)
    if args.out is not None:
        if cfg.get('default_scope') == 'mmdet':
            from mmdet.evaluation import DumpDetResults as Dump
        else:
            from mmengine.evaluator import DumpResults as Dump
        runner.test_evaluator.metrics.append(Dump(out_file_path=args.out))
    run_or_explain(runner.test, 'test.py')
    finish_distributed()


if __name__ == '__main__':
    main()
