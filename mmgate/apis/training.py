"""Train a detector, segmentor or classifier from a config: the Python
entry point of ``tools/train.py`` (MMDetection's command line).

    >>> from mmgate.apis import train
    >>> runner = train(['configs/demo/cls_skipresnet18_demo.py',
    ...                 '--work-dir', 'work_dirs/demo_cls'])  # doctest: +SKIP

The config's Runner is built (``runner_type``; ``mmgate.Runner`` when it
names none: safe checkpoint reading, atomic saves, the non-finite guard).
Before it is built the data of the run are checked
(:func:`mmgate.datasets.check_data`) and ``--resume`` verifies the
checkpoint it takes. Anything that stops the run on purpose (bad data, an
unreadable checkpoint, a non-finite loss, a full disk) is a
:class:`~mmgate.apis.RunError` with a one-line message; ``tools/train.py``
prints it as ``train.py: error: <message>``.
"""
import argparse
import sys

from .common import (add_run_options, build_runner, check_data_first, cli_main,
                     parse_run_args, resume_checkpoint, run_explained,
                     setup_cfg, stderr_warner)

__all__ = ['parse_args', 'train', 'main']

PROG = 'train.py'


def parse_args(argv=None) -> argparse.Namespace:
    """``tools/train.py``'s arguments (MMDetection's, plus
    ``--check-data``)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Train a model (detection, segmentation, '
        'classification)')
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
    add_run_options(
        parser, 'check the data before training: "auto" decodes every image '
        'of datasets with at most 2000 samples and checks that the files of '
        'larger ones exist, "all" decodes every image, "none" skips the '
        'check')
    return parse_run_args(parser, argv)


def _use_amp(cfg) -> None:
    import torch
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
        return
    # MMEngine's AmpOptimWrapper needs CUDA / NPU / MLU; on a CPU, bf16
    # autocast (fp32's exponent range: no loss scaling)
    cfg.optim_wrapper.type = 'mmgate.CPUAmpOptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)
    print(
        f'{PROG}: --amp without CUDA: bf16 autocast on the CPU '
        '(mmgate.CPUAmpOptimWrapper)',
        file=sys.stderr,
        flush=True)


def train(argv=None):
    """Train as ``tools/train.py ARGV`` does.

    Args:
        argv (list[str], optional): The command line's arguments (default:
            ``sys.argv[1:]``).

    Returns:
        Runner: The runner after training (``runner.work_dir`` holds the
        checkpoints and ``last_checkpoint``).

    Raises:
        RunError: The run could not start or stopped on purpose; the
            message is one line.
    """
    args = parse_args(argv)
    warn = stderr_warner(PROG)
    cfg = setup_cfg(args)
    if args.amp:
        _use_amp(cfg)
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
        cfg.load_from = resume_checkpoint(args.resume, cfg.work_dir, warn)
    if args.check_data != 'none':
        check_data_first(cfg, ('train', 'val'), args.check_data, warn)
    runner = build_runner(cfg)
    run_explained(runner.train)
    return runner


def main(argv=None) -> None:
    """``tools/train.py``: :func:`train`, a :class:`RunError` printed as
    ``train.py: error: <message>``."""
    cli_main(train, PROG, argv)
