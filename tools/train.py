# Copyright (c) OpenMMLab. All rights reserved. Adapted for mmgate.
"""Train a detector, segmentor or classifier from an mmgate config.

MMDetection's ``tools/train.py`` command line, for any OpenMMLab config (the
task comes from the config's ``default_scope``)::

    python tools/train.py \
        configs/skipresnet/cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py
    tools/dist_train.sh configs/cascade_rcnn_skipresnet50_coco.py 8  # old path
    python tools/train.py CONFIG --resume              # latest in work_dir
    python tools/train.py CONFIG --resume work_dirs/x/iter_100.pth
    python tools/train.py CONFIG --cfg-options train_cfg.max_epochs=1

Runs write to ``work_dirs/<config name>/`` unless ``--work-dir`` says
otherwise; checkpoints are written atomically (``mmgate.compat``, fix 4), and
``--resume`` checks the checkpoint it takes (a damaged last checkpoint is
named, and the previous intact one taken with a warning). Before the Runner
is built the data of the run are checked (``mmgate.datasets.check_data``): a
missing data root, a broken annotation file or an unreadable image ends the
run with one message naming the file; a record the run skips, as MMDetection
does, is one warning line naming it.
"""
import argparse
import os
import os.path as osp
import sys
import warnings

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmgate.compat
from mmgate.datasets import (DataError, DataWarning, check_data,
                             explain_data_error)
from mmgate.fileio import (CheckpointError, find_resume_checkpoint,
                           previous_intact_checkpoint, verify_checkpoint)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a model (detection, segmentation, classification)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training: fp16 with '
        "dynamic loss scaling on CUDA (MMEngine's AmpOptimWrapper), bf16 "
        'autocast on a CPU (mmgate.CPUAmpOptimWrapper)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
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
    parser.add_argument(
        '--check-data',
        choices=['auto', 'all', 'none'],
        default='auto',
        help='check the data before training: "auto" decodes every image '
        'of datasets with at most 2000 samples and checks that the files of '
        'larger ones exist, "all" decodes every image, "none" skips the check')
    # torch.distributed.launch passes --local-rank (torch >= 2.0)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def setup_cfg(args):
    """The config of the run: file + CLI options (shared with test.py)."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # work_dir: CLI > config file > work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg):
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def _checkpoint_error(exc):
    """The :class:`CheckpointError` that ``exc`` is or was raised from."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, CheckpointError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def run_or_explain(step, prog):
    """Run ``step``; a data file that fails while it runs (also inside a
    DataLoader worker), or a checkpoint that cannot be read (``load_from``,
    ``init_cfg``), ends the program with one line naming the file."""
    try:
        return step()
    except Exception as e:
        error = _checkpoint_error(e) or explain_data_error(e)
        if error is None:
            raise
        sys.exit(f'{prog}: error: {error}')


def resume_checkpoint(resume, work_dir, prog='train.py'):
    """The checkpoint ``--resume [CKPT]`` takes, verified first: without a
    path, the one ``last_checkpoint`` names, or the previous intact one
    (with a warning) when that is damaged; with a path, that file, or one
    line naming what is wrong with it and the previous intact checkpoint."""
    if resume == 'auto':
        try:
            path, note = find_resume_checkpoint(work_dir)
        except CheckpointError as e:
            sys.exit(f'{prog}: error: --resume: {e}')
        if note:
            print(f'{prog}: warning: {note}', file=sys.stderr, flush=True)
        return path
    try:
        verify_checkpoint(resume)
    except CheckpointError as e:
        previous = previous_intact_checkpoint(resume)
        offer = (f'; the previous intact checkpoint is {previous} (--resume '
                 f'{previous})' if previous else '')
        sys.exit(f'{prog}: error: --resume: {e}{offer}')
    return resume


def check_data_or_exit(cfg, phases, decode, prog):
    """``check_data``: a problem ends the program with one line naming the
    file; each record the run will skip is one warning line."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', DataWarning)
            check_data(cfg, phases, decode=decode)
    except DataError as e:
        sys.exit(f'{prog}: error: {e}')
    for w in caught:
        if issubclass(w.category, DataWarning):
            print(f'{prog}: warning: {w.message}', file=sys.stderr,
                  flush=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename,
                                   w.lineno)


def finish_distributed() -> None:
    """Report this rank and tear the process group down."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        print(f'[rank {dist.get_rank()}/{dist.get_world_size()}] done',
              flush=True)
        dist.destroy_process_group()


def main(argv=None):
    # the fixes of mmgate.compat (safe checkpoint loading, DDP without CUDA),
    # before any Runner is built
    mmgate.compat.apply()
    args = parse_args(argv)
    cfg = setup_cfg(args)

    if args.amp:
        import torch
        if torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
        else:
            # MMEngine's AmpOptimWrapper needs CUDA / NPU / MLU; on a CPU,
            # bf16 autocast (fp32's exponent range: no loss scaling)
            from mmgate.engine import CPUAmpOptimWrapper  # noqa: F401
            cfg.optim_wrapper.type = 'mmgate.CPUAmpOptimWrapper'
            cfg.optim_wrapper.pop('loss_scale', None)
            print('train.py: --amp without CUDA: bf16 autocast on the CPU '
                  '(mmgate.CPUAmpOptimWrapper)', file=sys.stderr, flush=True)

    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and \
                'enable' in cfg.auto_scale_lr and \
                'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or '
                               '"auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your'
                               ' configuration file.')

    # resume from the given checkpoint, or ('auto') the latest intact one in
    # work_dir (none: a fresh run, as MMEngine)
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = resume_checkpoint(args.resume, cfg.work_dir)

    if args.check_data != 'none':
        check_data_or_exit(cfg, ('train', 'val'), args.check_data,
                           'train.py')

    runner = build_runner(cfg)
    run_or_explain(runner.train, 'train.py')
    finish_distributed()


if __name__ == '__main__':
    main()
