"""Test (and evaluate) a checkpoint: the Python entry point of
``tools/test.py`` (MMDetection's command line).

    >>> from mmgate.apis import test
    >>> metrics = test(['configs/demo/cls_skipresnet18_demo.py',
    ...                 'work_dirs/demo_cls/epoch_60.pth'])  # doctest: +SKIP

The checkpoint is one a run wrote; it is verified first (a missing, empty,
truncated or damaged file is a :class:`~mmgate.apis.RunError` naming it)
and read by the config's Runner (``mmgate.Runner`` when it names none).
Metrics are returned, printed and written under the work dir.
"""
import argparse
from copy import deepcopy

from mmengine.config import ConfigDict

from .common import (RunError, add_run_options, build_runner, check_data_first,
                     cli_main, parse_run_args, run_explained, setup_cfg,
                     stderr_warner)

__all__ = ['parse_args', 'test', 'main']

PROG = 'test.py'


def parse_args(argv=None) -> argparse.Namespace:
    """``tools/test.py``'s arguments (MMDetection's, plus
    ``--check-data``)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
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
    parser.add_argument('--tta', action='store_true')
    add_run_options(parser, 'check the test data first (see tools/train.py)')
    return parse_run_args(parser, argv)


def _visualize(cfg, args):
    """Turn the task's visualization hook on (--show / --show-dir)."""
    scope = cfg.get('default_scope')
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise RunError('--show / --show-dir need a "visualization" hook in '
                       'default_hooks')
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


def _tta(cfg, warn):
    """Wrap the model and test pipeline for test-time augmentation."""
    scope = cfg.get('default_scope')
    if 'tta_model' not in cfg:
        warn('no tta_model in the config: using the default one')
        cfg.tta_model = {
            'mmdet':
            dict(
                type='DetTTAModel',
                tta_cfg=dict(
                    nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)),
            'mmseg':
            dict(type='SegTTAModel'),
            'mmpretrain':
            dict(type='AverageClsScoreTTA'),
        }[scope]
    if 'tta_pipeline' not in cfg:
        warn('no tta_pipeline in the config: flip test')
        data_cfg = cfg.test_dataloader.dataset
        while 'dataset' in data_cfg:
            data_cfg = data_cfg['dataset']
        pipeline = deepcopy(data_cfg.pipeline)
        pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[
                [
                    dict(type='RandomFlip', prob=1.),
                    dict(type='RandomFlip', prob=0.)
                ],
                [pipeline[-1]],
            ])
        cfg.tta_pipeline = pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    return cfg


def test(argv=None) -> dict:
    """Test as ``tools/test.py ARGV`` does.

    Args:
        argv (list[str], optional): The command line's arguments (default:
            ``sys.argv[1:]``).

    Returns:
        dict: The metrics.

    Raises:
        RunError: The test could not run; the message is one line.
    """
    from mmgate.fileio import CheckpointError, verify_checkpoint
    args = parse_args(argv)
    warn = stderr_warner(PROG)
    cfg = setup_cfg(args)
    if '://' not in args.checkpoint:
        # missing, empty, truncated, damaged or not a checkpoint: one line
        try:
            verify_checkpoint(args.checkpoint)
        except CheckpointError as e:
            raise RunError(str(e)) from None
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = _visualize(cfg, args)
    if args.tta:
        cfg = _tta(cfg, warn)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise RunError('--out must be a .pkl file')
    if args.check_data != 'none':
        check_data_first(cfg, ('test', ), args.check_data, warn)

    runner = build_runner(cfg)
    if args.out is not None:
        if cfg.get('default_scope') == 'mmdet':
            from mmdet.evaluation import DumpDetResults as Dump
        else:
            from mmengine.evaluator import DumpResults as Dump
        runner.test_evaluator.metrics.append(Dump(out_file_path=args.out))
    return run_explained(runner.test)


# not a test case for pytest, when a test module imports it
test.__test__ = False


def main(argv=None) -> None:
    """``tools/test.py``: :func:`test`, a :class:`RunError` printed as
    ``test.py: error: <message>``."""
    cli_main(test, PROG, argv)
