"""``mmgate.Runner``: MMEngine's Runner with safe checkpoints, CPU
distributed runs and a guard against divergence."""
import os
import os.path as osp
import shutil
from typing import Optional

import torch
from mmengine.dist import is_distributed, is_main_process
from mmengine.fileio import join_path
from mmengine.model import is_model_wrapper, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS
from mmengine.runner import Runner as MMEngineRunner
from mmengine.runner.checkpoint import (CheckpointLoader,
                                        _load_checkpoint_to_model)

from mmgate.fileio import (atomic_path, name_tensors, nonfinite_tensors,
                           read_checkpoint, refuse_nonfinite)
from mmgate.registry import RUNNERS
from .dist import cuda_missing, init_cpu_dist, stop_with_launcher
from .errors import CheckpointSaveError, NonFiniteError
from .hooks.non_finite_guard_hook import last_good_checkpoint
from .rng import gather_rng_states, restore_rng_state

__all__ = ['Runner', 'register_weights_only_loaders']

# MMEngine's names of its own checkpoint hook, which the Runner replaces
_PLAIN_CHECKPOINT_HOOKS = ('CheckpointHook', 'mmengine.CheckpointHook')
_GUARD = 'mmgate.NonFiniteGuardHook'


def _weights_only_loader(filename, map_location=None):
    """MMEngine's checkpoint scheme loader, for local files and URLs:
    :func:`mmgate.fileio.read_checkpoint` (weights only, one-line errors)."""
    return read_checkpoint(filename, map_location=map_location)


def register_weights_only_loaders() -> None:
    """Make :func:`mmgate.fileio.read_checkpoint` MMEngine's checkpoint
    loader for local files and ``http(s)://`` (process-wide, through
    MMEngine's ``CheckpointLoader.register_scheme``): the ``Pretrained``
    initialisers of every module then read weights only, with one-line
    errors. :class:`Runner` calls it when it is built."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=_weights_only_loader, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'),
        loader=_weights_only_loader,
        force=True)


def _hook_type(hook) -> Optional[str]:
    if isinstance(hook, dict):
        t = hook.get('type')
        return t if isinstance(t, str) else getattr(t, '__name__', None)
    return type(hook).__name__


def _mib(n: int) -> str:
    return f'{n / 2**20:.1f} MiB'


@RUNNERS.register_module()
class Runner(MMEngineRunner):
    """MMEngine's ``Runner`` (same arguments, same ``from_cfg``) for runs of
    the pinned OpenMMLab stack on torch >= 2.6 and on machines without CUDA.

    Select it in a config with ``runner_type = 'mmgate.Runner'`` (every
    mmgate config and every config ``tools/finetune.py`` writes does;
    mmgate's ``tools/train.py`` and ``tools/test.py`` take it for a config
    that names no runner). What it changes:

    - **Checkpoints it reads** (``load_from``, ``resume``, ``tools/test.py``)
      go through :func:`mmgate.fileio.read_checkpoint`: a missing, empty,
      truncated or damaged file, or one whose pickle would run code, is one
      :class:`mmgate.fileio.CheckpointError` line naming it; a run's own
      checkpoint may hold MMEngine's pickled objects, any other file loads
      with ``weights_only=True``; a checkpoint with NaN / Inf weights is
      refused. When it is built, the Runner registers that reader as
      MMEngine's checkpoint loader for local files and ``http(s)://``
      (``CheckpointLoader.register_scheme``), so the ``Pretrained``
      initialisers of other modules read weights only too.
    - **Checkpoints it saves** are written to a temporary file that is
      renamed over the target (a kill leaves the previous file or the new
      one, never half of one), hold every rank's random number generator
      states (a resumed run draws the same random numbers as an
      uninterrupted one), and are never saved from a model with NaN / Inf
      parameters or buffers (:class:`mmgate.engine.NonFiniteError`). A
      save that fails (a full disk) is one
      :class:`mmgate.engine.CheckpointSaveError` line naming the file, the
      error and the free space; the previous checkpoint and
      ``last_checkpoint`` are kept. MMEngine's ``CheckpointHook`` in
      ``default_hooks`` becomes :class:`mmgate.engine.CheckpointHook`
      (same options), which deletes an outdated checkpoint only after the
      new one is in place.
    - **Divergence**: :class:`mmgate.engine.NonFiniteGuardHook` is added to
      the custom hooks unless the config lists it.
    - **Distributed runs without CUDA** (``--launcher pytorch`` / ``slurm``
      on a CPU machine): the process group is initialised on gloo, SyncBN
      is reverted to BN and DDP gets ``device_ids=None``. A rank started by
      torchrun stops when torchrun dies (Linux), instead of training on
      unattended beside a resumed run.

    Example:
        >>> # in a config
        >>> runner_type = 'mmgate.Runner'
    """

    def __init__(self, *args, **kwargs) -> None:
        self._resumed_rng = None
        register_weights_only_loaders()
        super().__init__(*args, **kwargs)

    # ---- environment -------------------------------------------------------

    def setup_env(self, env_cfg: dict) -> None:
        """MMEngine's set-up; without CUDA, the process group is created on
        gloo first (MMEngine's own initialisation needs CUDA). A rank that
        torchrun started stops when torchrun dies."""
        if self.launcher == 'pytorch' and 'TORCHELASTIC_RUN_ID' in os.environ:
            stop_with_launcher()
        if self.distributed and not is_distributed() and cuda_missing():
            init_cpu_dist(self.launcher, **env_cfg.get('dist_cfg', {}))
        super().setup_env(env_cfg)

    def wrap_model(self, model_wrapper_cfg: Optional[dict],
                   model: torch.nn.Module) -> torch.nn.Module:
        """MMEngine's wrapping; without CUDA, DDP on the CPU."""
        if (not self.distributed or not cuda_missing()
                or is_model_wrapper(model)):
            return super().wrap_model(model_wrapper_cfg, model)
        # SyncBN is CUDA-only; plain BN on each process is the CPU analogue
        model = revert_sync_batchnorm(model.to('cpu'))
        cfg = dict(
            model_wrapper_cfg or dict(
                type='MMDistributedDataParallel',
                broadcast_buffers=False,
                find_unused_parameters=self.cfg.get('find_unused_parameters',
                                                    False)))
        cfg.setdefault('type', 'MMDistributedDataParallel')
        return MODEL_WRAPPERS.build(
            cfg, default_args=dict(module=model, device_ids=None))

    # ---- hooks -------------------------------------------------------------

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        """MMEngine's hooks, with mmgate's checkpoint hook in place of
        MMEngine's and the non-finite guard added."""
        default_hooks = dict(default_hooks or {})
        ckpt = default_hooks.get('checkpoint',
                                 dict(type='CheckpointHook', interval=1))
        if isinstance(ckpt, dict) and _hook_type(ckpt) in \
                _PLAIN_CHECKPOINT_HOOKS:
            default_hooks['checkpoint'] = dict(
                ckpt, type='mmgate.CheckpointHook')
        custom_hooks = list(custom_hooks or [])
        if not any(
                _hook_type(h) in (_GUARD, 'NonFiniteGuardHook')
                for h in custom_hooks):
            custom_hooks.append(dict(type=_GUARD))
        super().register_hooks(default_hooks, custom_hooks)

    # ---- reading checkpoints ---------------------------------------------

    def load_checkpoint(self,
                        filename: str,
                        map_location='cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):
        """MMEngine's ``load_checkpoint``, reading the file with
        :func:`mmgate.fileio.read_checkpoint` (a run's own checkpoint may
        hold MMEngine's objects) and refusing NaN / Inf weights."""
        checkpoint = read_checkpoint(
            filename, map_location=map_location, trusted=True)
        state = checkpoint.get('state_dict', checkpoint) \
            if isinstance(checkpoint, dict) else None
        if isinstance(state, dict):
            refuse_nonfinite(state, filename)
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) \
            else None
        self._resumed_rng = meta.get('rng_state') \
            if isinstance(meta, dict) else None
        # the rest is MMEngine 0.10.7's Runner.load_checkpoint
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) \
            else self.model
        checkpoint = _load_checkpoint_to_model(
            model, checkpoint, strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def resume(self, filename: str, *args, **kwargs) -> None:
        """MMEngine's ``resume``, then this rank's random number generator
        states from the checkpoint (MMEngine re-seeds only)."""
        self._resumed_rng = None
        super().resume(filename, *args, **kwargs)
        why = restore_rng_state(self._resumed_rng, self.rank, self.world_size)
        self._resumed_rng = None
        if why:
            self.logger.warning(f'random number generator states not '
                                f'restored from {filename}: {why}')

    # ---- saving checkpoints ----------------------------------------------

    def _refuse_non_finite(self, target: str) -> None:
        model = self.model.module if is_model_wrapper(self.model) \
            else self.model
        bad = nonfinite_tensors(model.state_dict())
        if bad:
            last = last_good_checkpoint(self)
            keep = (f'; the last good checkpoint is {last}'
                    if last else '; no checkpoint was saved before')
            raise NonFiniteError(
                f'refusing to save checkpoint {target}: the model holds '
                f'non-finite values (NaN / Inf) in {name_tensors(bad)}'
                f'{keep}')

    def save_checkpoint(self,
                        out_dir: str,
                        filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None,
                        by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        """MMEngine's ``save_checkpoint`` (same arguments), writing a local
        file atomically, with every rank's generator states in
        ``meta['rng_state']``, never from a non-finite model.

        Every rank must call it in a distributed run (as the checkpoint
        hooks do): the generator states are gathered from all of them.

        Raises:
            NonFiniteError: A parameter or buffer is NaN or Inf.
            CheckpointSaveError: The file could not be written.
        """
        if file_client_args is None:
            target = join_path(out_dir, filename, backend_args=backend_args)
        else:
            target = osp.join(out_dir, filename)
        self._refuse_non_finite(target)
        meta = dict(meta or {}, rng_state=gather_rng_states())
        save = super().save_checkpoint
        args = (file_client_args, save_optimizer, save_param_scheduler, meta,
                by_epoch, backend_args)
        local = (
            file_client_args is None and backend_args is None
            and '://' not in str(out_dir))
        if not is_main_process() or not local:
            save(out_dir, filename, *args)
            return
        try:
            with atomic_path(target) as tmp:
                save(out_dir, osp.basename(tmp), *args)
        except OSError as e:
            self._save_failed(target, e)

    def _save_failed(self, target: str, error: OSError):
        folder = osp.dirname(osp.abspath(target))
        try:
            free = f'{_mib(shutil.disk_usage(folder).free)} free in {folder}'
        except OSError:
            free = f'free space in {folder} unknown'
        last = last_good_checkpoint(self)
        pointer = osp.join(self.work_dir, 'last_checkpoint')
        kept = (f'the previous checkpoint {last} and {pointer} are kept'
                if last else 'no earlier checkpoint exists')
        reason = error.strerror or str(error)
        code = f'[Errno {error.errno}] ' if error.errno else ''
        raise CheckpointSaveError(
            f'cannot save checkpoint {target}: {code}{reason}; {free}; '
            f'{kept}') from error
