"""The fine-tuning command: read, check, write, train, test, report.

:func:`run` (``tools/finetune.py``, ``mmgate-finetune``):

1. read the dataset (:func:`mmgate.datasets.read_dataset`: the layout, the
   classes, the splits; a val split made when there is none; VOC / YOLO
   converted to COCO JSON) and check it across its splits
   (:func:`mmgate.datasets.check_splits`);
2. choose the recipe the annotations fit (box-only data: a box-only
   recipe) and resolve it for the backbone (:mod:`.recipes`);
3. render the config(s) (:mod:`.render`; with ``--compare base`` also the
   plain twin of the metafiles' ``Metadata.Baseline``), check their data
   as ``tools/train.py`` would (:func:`mmgate.datasets.check_data`, on the
   derived files staged in a temporary folder), and only then write the
   derived files and the configs into the work directory;
4. train each config with :func:`mmgate.apis.train` and test its last
   checkpoint with :func:`mmgate.apis.test` (``--gpus N`` > 1:
   ``tools/dist_train.sh`` / ``dist_test.sh``), once or with seeds
   ``0 .. K-1``, and write each run's model as plain tensors
   (``<run>/weights.pth``, which ``--weights`` takes);
5. write the benchmark report of the runs (:mod:`mmgate.analysis.report`).

Bad data end the command with one line ``finetune.py: error: ...`` before
anything is written; records the run will skip, as MMDetection skips them,
are ``finetune.py: warning: ...`` lines.
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence

from mmgate.datasets import (VAL_FRACTION, DataError, DatasetSpec, DataWarning,
                             check_data, check_splits, read_dataset)
from .recipes import (CPU_BACKBONES, RECIPES, backbone_choices, choose_recipe,
                      load_config, plain_twin, resolve_recipe, resource_dir,
                      schedule_of)
from .render import render_config, render_twin_config

__all__ = [
    'ModelPlan', 'plan_configs', 'write_config', 'train_command',
    'test_command', 'export_weights', 'describe_weights', 'parse_args', 'run',
    'main'
]

PROG = 'finetune.py'


@dataclass
class ModelPlan:
    """One config to train: its name, file and backbone."""
    name: str
    path: str
    backbone: str
    gated: bool
    text: str = ''


def _gated(backbone: str) -> bool:
    return backbone.startswith('skip')


def plan_configs(spec: DatasetSpec,
                 args,
                 recipe: str,
                 recipe_note: str = '') -> List[ModelPlan]:
    """Render the config of ``args.backbone`` (and with ``--compare base``
    its plain twin) for ``spec``."""
    task = spec.task
    source = resolve_recipe(task, recipe, args.backbone)
    sched = schedule_of(task, source, spec.num_train, args.gpus, args.epochs)
    name = f'{recipe}_{args.backbone}_{spec.name}'
    gated = _gated(args.backbone)
    text = render_config(spec, source, sched, args.backbone, args.gpus,
                         args.weights, gated, recipe_note)
    plans = [
        ModelPlan(name, osp.join(args.work_dir, name + '.py'), args.backbone,
                  gated, text)
    ]
    if args.compare == 'base':
        if not gated:
            raise ValueError(f'--compare base needs a gated backbone; '
                             f'{args.backbone} is a plain one')
        twin_name = plain_twin(task, recipe, args.backbone)
        twin = resolve_recipe(task, recipe, twin_name)
        if twin.backbone is not None:
            backbone, note = twin.backbone, twin.backbone_note
            if not RECIPES[recipe].stock:
                note += f' of {twin.config}'
        else:
            backbone = load_config(twin.config).model.backbone.to_dict()
            note = f'the backbone of the baseline recipe {twin.config}'
        twin_text = render_twin_config(
            name,
            backbone,
            note,
            args.base_weights,
            neck=RECIPES[recipe].stock)
        base_name = f'{recipe}_{twin_name}_{spec.name}'
        plans.append(
            ModelPlan(base_name, osp.join(args.work_dir, base_name + '.py'),
                      twin_name, False, twin_text))
    return plans


def write_config(path: str, text: str, overwrite: bool = False) -> bool:
    """Write ``text`` to ``path`` (atomically,
    :func:`mmgate.fileio.write_text_atomic`).

    Returns:
        bool: Whether the file was written (False: it holds ``text``
        already).

    Raises:
        FileExistsError: ``path`` holds something else (an edited config)
            and ``overwrite`` is False.
    """
    from mmgate.fileio import write_text_atomic
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return False
        if not overwrite:
            raise FileExistsError(
                f'{path} exists and differs from the config these options '
                f'write (edited?): train it with tools/train.py {path}, or '
                'pass --overwrite to replace it')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    write_text_atomic(path, text)
    return True


def _write_derived(files: dict) -> None:
    """Derived data files (ours, regenerated from the data): written when
    their text changed."""
    from mmgate.fileio import write_text_atomic
    for path, text in files.items():
        if osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                if f.read() == text:
                    continue
        os.makedirs(osp.dirname(path), exist_ok=True)
        write_text_atomic(path, text)


def _cfg_argv(work_dir: str, seed: Optional[int], resume: bool,
              cfg_options: Sequence[str]) -> List[str]:
    argv = ['--work-dir', work_dir]
    if resume:
        argv.append('--resume')
    options = ([f'randomness.seed={seed}'] if seed is not None else []) + \
        list(cfg_options)
    if options:
        argv += ['--cfg-options', *options]
    return argv


def train_command(config,
                  work_dir,
                  gpus,
                  seed=None,
                  resume=False,
                  cfg_options=()) -> List[str]:
    """``tools/dist_train.sh`` of a run on ``gpus`` > 1 processes.

    Args:
        config (str): The config file.
        work_dir (str): The run's work directory.
        gpus (int): Processes.
        seed (int, optional): ``randomness.seed``.
        resume (bool): ``--resume``.
        cfg_options (Sequence[str]): ``KEY=VALUE`` options.
    """
    return [
        'bash',
        osp.join(resource_dir('tools'), 'dist_train.sh'), config,
        str(gpus)
    ] + _cfg_argv(work_dir, seed, resume, cfg_options)


def test_command(config,
                 checkpoint,
                 work_dir,
                 gpus,
                 seed=None,
                 cfg_options=()) -> List[str]:
    """``tools/dist_test.sh`` of a test on ``gpus`` > 1 processes (the
    arguments as :func:`train_command`'s, and the ``checkpoint``): the test
    writes into the run's own work directory, where the benchmark report
    reads it as the run's result; it gets the run's seed too, since the
    config it dumps there replaces the training's."""
    return [
        'bash',
        osp.join(resource_dir('tools'), 'dist_test.sh'), config, checkpoint,
        str(gpus)
    ] + _cfg_argv(work_dir, seed, False, cfg_options)


def _subprocess(cmd: List[str]) -> None:
    print('+ ' + ' '.join(cmd), flush=True)
    result = subprocess.run(cmd, env=dict(os.environ, PYTHON=sys.executable))
    if result.returncode != 0:
        from mmgate.apis import RunError
        raise RunError(f'{" ".join(cmd[:3])} ... failed (exit code '
                       f'{result.returncode})')


def _train(plan: ModelPlan, work_dir: str, args, seed) -> float:
    """Train one run; its wall time in seconds."""
    start = time.time()
    if args.gpus > 1:
        _subprocess(
            train_command(plan.path, work_dir, args.gpus, seed, args.resume,
                          args.cfg_options))
    else:
        from mmgate.apis import train
        argv = [plan.path] + _cfg_argv(work_dir, seed, args.resume,
                                       args.cfg_options)
        print('+ train ' + ' '.join(argv), flush=True)
        _stop_workers(train(argv))
    return time.time() - start


def _stop_workers(runner) -> None:
    """Stop the persistent DataLoader workers of a finished run now: left
    to the garbage collector with the runner, their shutdown waits for
    worker time-outs (10 s per run measured here)."""
    for loop in (runner.train_loop, runner.val_loop):
        iterator = getattr(
            getattr(loop, 'dataloader', None), '_iterator', None)
        if iterator is not None and hasattr(iterator, '_shutdown_workers'):
            iterator._shutdown_workers()


def _test(plan: ModelPlan, work_dir: str, args, seed) -> float:
    """Test the last checkpoint of a run into its work directory."""
    start = time.time()
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    if args.gpus > 1:
        _subprocess(
            test_command(plan.path, checkpoint, work_dir, args.gpus, seed,
                         args.cfg_options))
    else:
        from mmgate.apis import test
        argv = [plan.path, checkpoint] + _cfg_argv(work_dir, seed, False,
                                                   args.cfg_options)
        print('+ test ' + ' '.join(argv), flush=True)
        test(argv)
    return time.time() - start


def export_weights(work_dir: str) -> str:
    """The trained model of a run as plain tensors,
    ``<work_dir>/weights.pth`` (``{'state_dict': ...}``): a run's
    checkpoint holds MMEngine's pickled objects, which ``--weights`` (read
    with ``weights_only=True``) refuses; this file it takes, e.g. a
    classifier pretrained here as the backbone of a detector."""
    from mmgate.fileio import read_checkpoint, save_torch_atomic
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = read_checkpoint(
            f.read().strip(), map_location='cpu', trusted=True)
    path = osp.join(work_dir, 'weights.pth')
    save_torch_atomic(dict(state_dict=checkpoint['state_dict']), path)
    return path


def describe_weights(weights: str, gated: bool) -> str:
    """What ``--weights`` holds, for the log: a local file is read (weights
    only) and its backbone tensors and gates counted.

    Raises:
        ValueError: The file cannot be read as a checkpoint (one line).
    """
    new = ('the trunk loads strictly and the gates start new (init_cfg '
           'new_gates=True)')
    if '://' in weights:
        return (f'weights: {weights}, read when the run starts' +
                (f'; a plain ResNet file: {new}' if gated else ''))
    from mmgate.fileio import CheckpointError
    from mmgate.models.utils.pretrained import load_checkpoint_file
    try:
        state = load_checkpoint_file(weights)
    except (CheckpointError, ValueError) as e:
        raise ValueError(f'--weights: {e}') from None
    keys = [k[len('backbone.'):] for k in state if k.startswith('backbone.')]
    keys = keys or list(state)
    n_gate = sum('.gate.' in k for k in keys)
    what = f'weights: {weights} holds {len(keys)} backbone tensors'
    if not gated:
        return what
    if n_gate:
        return f'{what}, {n_gate} of them in gates: every tensor loads'
    return f'{what} and no gate: a plain ResNet file; {new}'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Fine-tune a gated backbone on a dataset folder: read '
        'its classes (COCO, Pascal VOC, YOLO; index / palette PNG, ADE20k; '
        'ImageFolder, ImageNet lists), write a config that inherits an '
        'mmgate recipe that fits the annotations, train, test and report.')
    parser.add_argument('data_dir', help='the dataset folder')
    parser.add_argument('--task', required=True, choices=('det', 'seg', 'cls'))
    parser.add_argument(
        '--backbone',
        default='skipresnet50',
        choices=backbone_choices(),
        help=f'{" / ".join(CPU_BACKBONES)}: the CPU demo '
        'recipes (default: skipresnet50)')
    parser.add_argument(
        '--recipe',
        choices=list(RECIPES),
        help='default: cascade-rcnn for box-only data, cascade-mask-rcnn '
        'when every instance has a mask (det), upernet (seg), linear (cls)')
    parser.add_argument(
        '--weights',
        metavar='PATH_OR_URL',
        help='backbone weights instead of the recipe\'s; a '
        'gated backbone also takes a plain ResNet file '
        '(torchvision, MMPretrain, MMDetection keys)')
    parser.add_argument(
        '--base-weights',
        metavar='PATH_OR_URL',
        help='the plain twin\'s backbone weights instead of '
        'its recipe\'s (--compare base)')
    parser.add_argument(
        '--epochs',
        type=int,
        help='passes over the train set (default: as many '
        'as the recipe makes over its own)')
    parser.add_argument(
        '--val-fraction',
        type=float,
        default=VAL_FRACTION,
        help='share of the train images that becomes the '
        'val split when the data have none (default: '
        f'{VAL_FRACTION})')
    parser.add_argument(
        '--split-seed',
        type=int,
        default=0,
        help='seed of that split (default: 0)')
    parser.add_argument(
        '--gpus',
        type=int,
        default=1,
        help='GPUs (processes) to train on: the schedule is '
        'computed for them; > 1 launches tools/dist_train.sh')
    parser.add_argument(
        '--seeds',
        type=int,
        metavar='K',
        help='train each model with seeds 0 .. K-1 '
        '(randomness.seed)')
    parser.add_argument(
        '--compare',
        choices=['base'],
        help='also train the plain twin of the gated '
        'backbone (same config, no gates)')
    parser.add_argument(
        '--work-dir',
        help='where the configs, derived data, runs and '
        'report go (default: work_dirs/finetune_<data>_'
        '<task>)')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='resume each run from its latest checkpoint')
    parser.add_argument(
        '--no-train', action='store_true', help='write the config(s) and stop')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace written configs that were edited')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='passed to the training and the test')
    args = parser.parse_args(argv)
    for opt in args.cfg_options:
        if '=' not in opt:
            parser.error(f'--cfg-options wants KEY=VALUE, got {opt!r}')
    if args.seeds is not None and args.seeds < 1:
        parser.error('--seeds must be at least 1')
    if args.gpus < 1:
        parser.error('--gpus must be at least 1')
    if not 0 < args.val_fraction < 1:
        parser.error(f'--val-fraction must be between 0 and 1, got '
                     f'{args.val_fraction}')
    for opt in ('weights', 'base_weights'):
        path = getattr(args, opt)
        if path and '://' not in path and not osp.isfile(path):
            parser.error(f'--{opt.replace("_", "-")} {path}: no such file')
    if args.work_dir is None:
        name = re.sub(r'[^A-Za-z0-9._-]+', '-',
                      osp.basename(osp.abspath(args.data_dir)))
        args.work_dir = osp.join('work_dirs', f'finetune_{name}_{args.task}')
    args.work_dir = osp.abspath(args.work_dir)
    return parser, args


def _warn(message) -> None:
    print(f'{PROG}: warning: {message}', file=sys.stderr, flush=True)


def _warned(step):
    """Run ``step``; its :class:`DataWarning` lines are printed as
    ``finetune.py: warning:`` lines, once each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', DataWarning)
        out = step()
    seen = set()
    for w in caught:
        if not issubclass(w.category, DataWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif str(w.message) not in seen:
            seen.add(str(w.message))
            _warn(w.message)
    return out


def _check_staged(spec: DatasetSpec, args, recipe: str) -> None:
    """The checks of ``tools/train.py`` on the config, with the derived
    files in a temporary folder (nothing is in the work directory yet)."""
    from mmengine.config import Config
    with tempfile.TemporaryDirectory(prefix='mmgate-finetune-') as tmp:
        staged = spec.moved(tmp)
        for path, text in staged.derived.items():
            os.makedirs(osp.dirname(path), exist_ok=True)
            with open(path, 'w', encoding='utf-8') as f:
                f.write(text)
        text = plan_configs(staged, args, recipe)[0].text
        check_data(Config.fromstring(text, '.py'), ('train', 'val'))


def _prepare(args):
    """Read, check and plan; the spec and the plans (nothing written)."""
    spec = _warned(
        lambda: read_dataset(args.data_dir, args.task, args.work_dir, args.
                             val_fraction, args.split_seed))
    for w in check_splits(spec.train, spec.val):
        _warn(w)
    recipe, note = choose_recipe(spec.task, args.recipe, spec.masks,
                                 spec.ann_source)
    if args.weights:
        note_w = describe_weights(args.weights, _gated(args.backbone))
    plans = plan_configs(spec, args, recipe, note)
    _warned(lambda: _check_staged(spec, args, recipe))
    lines = spec.notes + [note] + ([note_w] if args.weights else [])
    return spec, plans, lines


def run(argv=None) -> dict:
    """Read, check, write the config(s), train, test, report (see the
    module docstring); ``argv`` as on the command line.

    Returns:
        dict: ``configs`` (written paths), ``runs`` (per run: ``config``,
        ``seed``, ``work_dir``, ``train_s``, ``test_s``), ``report`` (the
        report's paths, when runs were trained) and ``seconds``.
    """
    from mmgate.apis import RunError
    start = time.time()
    parser, args = parse_args(argv)
    try:
        spec, plans, lines = _prepare(args)
        _write_derived(spec.derived)
        for plan in plans:
            write_config(plan.path, plan.text, args.overwrite)
    except (DataError, ValueError, FileExistsError) as e:
        parser.exit(1, f'{PROG}: error: {e}\n')
    for line in lines:
        print(line)
    n = len(spec.classes)
    print(f'{spec.layout} dataset {spec.root}: {n} class{"es" * (n != 1)} '
          f'({", ".join(spec.classes)}), {spec.num_train} train / '
          f'{len(spec.val.images)} val images')
    for plan in plans:
        print(f'config: {plan.path}', flush=True)
    result = dict(configs=[p.path for p in plans], runs=[], report=None)
    if args.no_train:
        result['seconds'] = time.time() - start
        return result

    seeds = list(range(args.seeds)) if args.seeds else [None]
    try:
        for seed in seeds:
            for plan in plans:
                work_dir = osp.join(
                    args.work_dir,
                    plan.name if seed is None else f'{plan.name}_seed{seed}')
                train_s = _train(plan, work_dir, args, seed)
                test_s = _test(plan, work_dir, args, seed)
                result['runs'].append(
                    dict(
                        config=plan.path,
                        seed=seed,
                        work_dir=work_dir,
                        train_s=round(train_s, 1),
                        test_s=round(test_s, 1),
                        weights=export_weights(work_dir)))
    except RunError as e:
        parser.exit(1, f'{PROG}: error: {e}\n')

    from mmgate.analysis.report import write_report
    report, paths = write_report(
        args.work_dir,
        osp.join(args.work_dir, 'report'),
        title=f'Fine-tuning on {spec.name}',
        model_index=False)
    with open(paths['markdown'], encoding='utf-8') as f:
        print(f.read())
    result['report'] = paths
    result['seconds'] = time.time() - start
    print(f'{len(result["runs"])} runs in {result["seconds"]:.0f} s; '
          f'report: {paths["markdown"]}')
    for r in result['runs']:
        print(f'weights: {r["weights"]} (plain tensors: --weights takes '
              'them)')
    for plan in plans:
        print(f'config: {plan.path}')
    return result


def main(argv=None) -> None:
    """The command line (``tools/finetune.py``, the ``mmgate-finetune``
    console script): :func:`run`."""
    run(argv)
