"""What ``train`` and ``test`` share: the config of a run, the Runner, the
checks before it starts and the one-line reasons when it cannot run."""
import argparse
import os
import os.path as osp
import sys
import warnings
from typing import Callable, Optional, Sequence, TypeVar

from mmengine.config import Config, DictAction

__all__ = [
    'RunError', 'setup_cfg', 'build_runner', 'check_data_first',
    'run_explained', 'resume_checkpoint', 'finish_distributed',
    'stderr_warner', 'cli_main'
]

T = TypeVar('T')

#: The Runner of a config that names none (``runner_type``).
DEFAULT_RUNNER = 'mmgate.Runner'


class RunError(RuntimeError):
    """A run that cannot start or go on; the message is one line naming the
    problem (a data file, a checkpoint, a non-finite loss, a full disk)."""


def add_run_options(parser: argparse.ArgumentParser,
                    check_data_help: str) -> None:
    """The options ``tools/train.py`` and ``tools/test.py`` share
    (MMDetection's ``--cfg-options``, ``--launcher``, ``--local-rank``;
    mmgate's ``--check-data``)."""
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
        help=check_data_help)
    # torch.distributed.launch passes --local-rank (torch >= 2.0)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_run_args(parser: argparse.ArgumentParser,
                   argv=None) -> argparse.Namespace:
    """Parse ``argv``; ``LOCAL_RANK`` comes from ``--local-rank`` when the
    launcher did not set it."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def setup_cfg(args) -> Config:
    """The config of the run: the file, ``--cfg-options``, the launcher and
    the work dir (``--work-dir`` > the config's > ``work_dirs/<config
    name>``)."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg: Config):
    """The config's ``runner_type`` (``mmgate.Runner`` when it names none),
    built from the config as MMEngine builds it."""
    from mmengine.registry import RUNNERS
    if cfg.get('runner_type') is None:
        cfg.runner_type = DEFAULT_RUNNER
    return RUNNERS.build(cfg)


def _cause(exc: Optional[BaseException], kinds) -> Optional[BaseException]:
    """The exception in ``exc``'s chain that is one of ``kinds``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kinds):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def run_explained(step: Callable[[], T]) -> T:
    """Run ``step``; a data file that fails while it runs (also inside a
    DataLoader worker), a checkpoint that cannot be read (``load_from``,
    ``init_cfg``), a non-finite loss or a checkpoint that cannot be saved
    raise :class:`RunError` with the one-line reason."""
    from mmgate.datasets import explain_data_error
    from mmgate.engine import RunAborted
    from mmgate.fileio import CheckpointError
    try:
        return step()
    except Exception as e:
        error = _cause(e, (CheckpointError, RunAborted)) or \
            explain_data_error(e)
        if error is None:
            raise
        raise RunError(str(error)) from e


def resume_checkpoint(resume: str, work_dir: str,
                      warn: Callable[[str], None]) -> Optional[str]:
    """The checkpoint ``--resume [CKPT]`` takes, verified first: without a
    path (``'auto'``), the one ``last_checkpoint`` names, or the previous
    intact one (with a warning) when that is damaged; with a path, that
    file, or a :class:`RunError` naming what is wrong with it and the
    previous intact checkpoint."""
    from mmgate.fileio import (CheckpointError, find_resume_checkpoint,
                               previous_intact_checkpoint, verify_checkpoint)
    if resume == 'auto':
        try:
            path, note = find_resume_checkpoint(work_dir)
        except CheckpointError as e:
            raise RunError(f'--resume: {e}') from None
        if note:
            warn(note)
        return path
    try:
        verify_checkpoint(resume)
    except CheckpointError as e:
        previous = previous_intact_checkpoint(resume)
        offer = (f'; the previous intact checkpoint is {previous} (--resume '
                 f'{previous})' if previous else '')
        raise RunError(f'--resume: {e}{offer}') from None
    return resume


def check_data_first(cfg: Config, phases: Sequence[str], decode: str,
                     warn: Callable[[str], None]) -> None:
    """:func:`mmgate.datasets.check_data`: a problem is a :class:`RunError`
    naming the file; each record the run will skip is one warning."""
    from mmgate.datasets import DataError, DataWarning, check_data
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', DataWarning)
            check_data(cfg, phases, decode=decode)
    except DataError as e:
        raise RunError(str(e)) from None
    for w in caught:
        if issubclass(w.category, DataWarning):
            warn(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def finish_distributed() -> None:
    """Report this rank and tear the process group down."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        print(
            f'[rank {dist.get_rank()}/{dist.get_world_size()}] done',
            flush=True)
        dist.destroy_process_group()


def stderr_warner(prog: str) -> Callable[[str], None]:
    """``prog: warning: message`` on stderr."""

    def warn(message: str) -> None:
        print(f'{prog}: warning: {message}', file=sys.stderr, flush=True)

    return warn


def cli_main(run: Callable, prog: str, argv=None) -> None:
    """A command line around ``run(argv)``: a :class:`RunError` ends the
    program with ``prog: error: <reason>`` (exit status 1), and a
    distributed run tears its process group down."""
    try:
        run(argv)
    except RunError as e:
        sys.exit(f'{prog}: error: {e}')
    finish_distributed()
