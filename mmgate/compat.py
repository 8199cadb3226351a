"""Compatibility fixes for the stack mmgate is pinned to.

Importing this module (or ``mmgate``, or ``mmgate.models`` through a config's
``type='mmgate.SkipResNet'``) changes nothing: the fixes patch MMEngine
globally, so they are applied only by :func:`apply`, which mmgate's own entry
points call first thing in ``main()`` (``tools/train.py``, ``tools/test.py``,
``tools/misc/run_demo.py``, ``tools/analysis/gate_analysis.py`` and
``benchmark_speed.py``). A script of your own that builds MMEngine Runners
gets the same fixes with one line before it builds them::

    import mmgate.compat; mmgate.compat.apply()

:func:`apply` is idempotent; :func:`is_applied` tells whether it ran. Library
code that reads checkpoints without a Runner uses :func:`read_checkpoint`,
which follows rule 1 below without patching anything.

Each fix says why it exists and when it can go. Nothing here changes
numerical behaviour; the fixes only make the 2023 OpenMMLab releases
(mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0, mmsegmentation 1.2.2, mmpretrain
1.2.0) run on torch 2.14 and on machines without CUDA.

1. Safe checkpoint loading (torch >= 2.6 loads with ``weights_only=True``).
   Plain weight files (pretrained backbones, the authors' published weights,
   anything fetched over HTTP) always load with ``weights_only=True``. Only a
   run's own checkpoints, read through ``Runner.resume`` or
   ``Runner.load_checkpoint`` (``--resume``, ``load_from``, ``tools/test.py``),
   may unpickle MMEngine's objects (message hub, history buffers); library
   code says so with ``read_checkpoint(..., trusted=True)``. Every local
   file goes through :func:`mmgate.fileio.read_local_checkpoint`, which
   looks at the file first: a missing, empty, truncated or non-PyTorch file,
   or one that needs code execution to unpickle, ends with one line naming
   it (:class:`mmgate.fileio.CheckpointError`), never with torch's advice
   to turn ``weights_only`` off; a run's own checkpoint that calls
   ``os.system`` and the like is refused too. Can go when MMEngine writes
   weights-only-loadable checkpoints or passes ``weights_only`` itself (the
   file inspection stays, in :mod:`mmgate.fileio`).
2. Distributed runs without CUDA. MMEngine's ``_init_dist_pytorch`` and
   ``_init_dist_slurm`` call ``torch.cuda.set_device`` unconditionally, and
   ``Runner.wrap_model`` gives DDP ``device_ids=[LOCAL_RANK]``; both fail on a
   CPU machine. Here they use the gloo backend and ``device_ids=None``, and
   SyncBN (CUDA only) is reverted to BN. Can go when MMEngine supports CPU DDP.
3. ``pkg_resources`` (used by mmcv's setup and by MMEngine for ``mmdet::``
   config prefixes) is gone from setuptools 82; the pin
   ``setuptools<82`` in ``tools/env/constraints.txt`` keeps it. Can go when
   MMEngine uses ``importlib.metadata``.
4. Checkpoints that survive being killed. MMEngine writes ``epoch_N.pth``
   straight into place, then ``last_checkpoint`` (opened with ``'w'``, so
   empty for a moment), and deletes the checkpoint that ``max_keep_ckpts``
   drops *before* it saves the new one: a run killed while saving can leave
   a truncated checkpoint, an empty or dangling ``last_checkpoint``, or no
   checkpoint at all. Here local checkpoints and ``last_checkpoint`` are
   written to a temporary file that is renamed over the target
   (:func:`mmgate.fileio.atomic_write`), and the dropped checkpoint is
   deleted only after the new one and ``last_checkpoint`` are in place. A
   checkpoint also records the random number generators' states (torch,
   numpy, ``random``; under ``meta['rng_state']``, as tensors) and
   ``Runner.resume`` restores them after MMEngine re-seeds, so a resumed
   run draws the same augmentations and dropout as an uninterrupted one
   (exactly so with ``num_workers=0`` or non-persistent workers, whose
   seeds MMEngine derives from these states; not restored across ranks
   with ``diff_rank_seed``). ``tools/train.py --resume`` verifies the
   checkpoint it takes (:func:`mmgate.fileio.find_resume_checkpoint`). Can
   go when MMEngine saves atomically and checkpoints its RNG states.
"""
import contextlib
import contextvars
import functools
import inspect
import os
import os.path as osp

import torch

__all__ = [
    'apply', 'is_applied', 'read_checkpoint', 'trusted_checkpoints',
    'is_distributed_cpu'
]

_TRUST = contextvars.ContextVar('mmgate_trust_checkpoints', default=False)
# Set by apply(): MMEngine has been patched in this process.
_applied = False


@contextlib.contextmanager
def trusted_checkpoints():
    """Within this context, local checkpoints load with
    ``weights_only=False`` (through :func:`read_checkpoint`, and through
    MMEngine's loaders once :func:`apply` ran): use only for a run's own
    checkpoints."""
    token = _TRUST.set(True)
    try:
        yield
    finally:
        _TRUST.reset(token)


def _read_local(filename, map_location, weights_only):
    from .fileio import read_local_checkpoint
    return read_local_checkpoint(
        osp.expanduser(filename), map_location=map_location,
        trusted=not weights_only)


def _load_from_local(filename, map_location=None):
    """MMEngine's local scheme after :func:`apply`."""
    return _read_local(filename, map_location, not _TRUST.get())


def _load_url(url, map_location=None, model_dir=None):
    """MMEngine's ``load_from_http`` (local rank 0 downloads first), always
    with ``weights_only=True``."""
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    load = functools.partial(
        torch.hub.load_state_dict_from_url, url, model_dir=model_dir,
        map_location=map_location, weights_only=True)
    if rank == 0:
        checkpoint = load()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = load()
    return checkpoint


def _resolve_named(filename):
    """``(url_or_path, postprocess)`` behind MMEngine's named-checkpoint
    schemes (``torchvision://``, ``open-mmlab://``, ``mmcls://``), resolved
    as MMEngine's loaders do; ``None`` for any other scheme."""
    import warnings

    from mmengine.runner import checkpoint as ckpt
    if filename.startswith(('modelzoo://', 'torchvision://')):
        if filename.startswith('modelzoo://'):
            warnings.warn(
                'The URL scheme of "modelzoo://" is deprecated, please '
                'use "torchvision://" instead', DeprecationWarning)
        name = filename.split('://', 1)[1]
        return ckpt.get_torchvision_models()[name], None
    if filename.startswith(('open-mmlab://', 'openmmlab://')):
        prefix, name = filename.split('://', 1)
        deprecated = ckpt.get_deprecated_model_names()
        if name in deprecated:
            warnings.warn(
                f'{prefix}://{name} is deprecated in favor of '
                f'{prefix}://{deprecated[name]}', DeprecationWarning)
            name = deprecated[name]
        url = ckpt.get_external_models()[name]
        if not url.startswith(('http://', 'https://')):
            url = osp.join(ckpt._get_mmengine_home(), url)
        return url, None
    if filename.startswith('mmcls://'):
        return (ckpt.get_mmcls_models()[filename[len('mmcls://'):]],
                ckpt._process_mmcls_checkpoint)
    return None


def read_checkpoint(filename, map_location=None, trusted=None):
    """Read a checkpoint by mmgate's rule 1 without patching MMEngine.

    For library code that reads a file itself (pretrained backbone weights,
    analysis tools) whether or not :func:`apply` ran:

    - a local file loads with ``weights_only=True`` unless ``trusted``
      (default: whether the caller is inside :func:`trusted_checkpoints`);
    - URLs and MMEngine's named checkpoints (``torchvision://``,
      ``open-mmlab://``, ``mmcls://``) always load with
      ``weights_only=True``, downloaded as MMEngine downloads them;
    - any other scheme (``s3://``, ``pavi://`` ...) goes to MMEngine's own
      loader.
    """
    from mmengine.logging import print_log
    from mmengine.runner.checkpoint import CheckpointLoader
    if trusted is None:
        trusted = _TRUST.get()
    filename = str(filename)
    named = _resolve_named(filename)
    source, post = named if named is not None else (filename, None)
    if source.startswith(('http://', 'https://')):
        print_log(f'Loads checkpoint by http backend from path: {filename}',
                  logger='current')
        checkpoint = _load_url(source, map_location=map_location)
    elif named is not None or '://' not in source:
        print_log(f'Loads checkpoint by local backend from path: {filename}',
                  logger='current')
        checkpoint = _read_local(
            source, map_location, not (trusted and named is None))
    else:
        return CheckpointLoader.load_checkpoint(filename, map_location)
    return post(checkpoint) if post is not None else checkpoint


def is_distributed_cpu() -> bool:
    """True when no CUDA device is available for a distributed run."""
    return not torch.cuda.is_available()


def _patch_checkpoint_loading() -> None:
    from mmengine.runner import checkpoint as ckpt
    from mmengine.runner import runner as runner_mod

    ckpt.CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local, force=True)
    # HTTP(S) downloads are never a run's own checkpoint.
    ckpt.load_url = functools.partial(
        torch.hub.load_state_dict_from_url, weights_only=True)

    runner_cls = runner_mod.Runner
    if getattr(runner_cls, '_mmgate_trusting', False):
        return
    load_checkpoint = runner_cls.load_checkpoint
    resume = runner_cls.resume

    @functools.wraps(load_checkpoint)
    def trusting_load(self, *args, **kwargs):
        with trusted_checkpoints():
            checkpoint = load_checkpoint(self, *args, **kwargs)
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) \
            else None
        # for resume() (fix 4); a plain load_from leaves it unused
        self._mmgate_rng_state = meta.get('rng_state') \
            if isinstance(meta, dict) else None
        return checkpoint

    @functools.wraps(resume)
    def trusting_resume(self, *args, **kwargs):
        self._mmgate_rng_state = None
        with trusted_checkpoints():
            resume(self, *args, **kwargs)
        state, self._mmgate_rng_state = self._mmgate_rng_state, None
        if state is not None and not (
                self._randomness_cfg.get('diff_rank_seed')
                and self.world_size > 1):
            _set_rng_state(state)

    runner_cls.load_checkpoint = trusting_load
    runner_cls.resume = trusting_resume
    runner_cls._mmgate_trusting = True


def _rng_state() -> dict:
    """The CPU random number generators' states, as tensors and ints (a
    checkpoint holding them stays weights-only loadable)."""
    import random

    import numpy as np
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return dict(
        torch=torch.get_rng_state(),
        numpy=dict(kind=kind, keys=torch.from_numpy(keys.astype('int64')),
                   pos=int(pos), has_gauss=int(has_gauss),
                   gauss=float(gauss)),
        random=dict(version=version, internal=torch.tensor(internal),
                    gauss_next=gauss_next))


def _set_rng_state(state: dict) -> None:
    import random

    import numpy as np
    torch.set_rng_state(state['torch'])
    n = state['numpy']
    np.random.set_state((n['kind'], n['keys'].numpy().astype(np.uint32),
                         n['pos'], n['has_gauss'], n['gauss']))
    r = state['random']
    random.setstate((r['version'], tuple(r['internal'].tolist()),
                     r['gauss_next']))


def _save_checkpoint_atomic(checkpoint, filename, file_client_args=None,
                            backend_args=None, __original=None):
    """MMEngine's ``save_checkpoint``; a local file is written atomically
    (fix 4)."""
    from .fileio import save_torch_atomic
    if (file_client_args is None and backend_args is None
            and '://' not in str(filename)):
        return save_torch_atomic(checkpoint, filename)
    return __original(checkpoint, filename, file_client_args=file_client_args,
                      backend_args=backend_args)


def _save_checkpoint_with_step(self, runner, step, meta):
    """MMEngine 0.10.7's ``CheckpointHook._save_checkpoint_with_step`` with
    ``last_checkpoint`` written atomically and the checkpoint that
    ``max_keep_ckpts`` drops deleted after the new one is in place
    (fix 4)."""
    from mmengine.dist import is_main_process

    from .fileio import write_text_atomic
    outdated = None
    if self.max_keep_ckpts > 0:
        if not (len(self.keep_ckpt_ids) > 0
                and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.file_backend.join_path(
                    self.out_dir,
                    self.filename_tmpl.format(self.keep_ckpt_ids.popleft()))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

    ckpt_filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    runner.save_checkpoint(
        self.out_dir,
        ckpt_filename,
        self.file_client_args,
        save_optimizer=self.save_optimizer,
        save_param_scheduler=self.save_param_scheduler,
        meta=meta,
        by_epoch=self.by_epoch,
        backend_args=self.backend_args,
        **self.args)
    # model-parallel ranks other than the main one stop here, as in MMEngine
    if not is_main_process():
        return
    write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'),
                      self.last_ckpt)
    if outdated is not None and outdated != self.last_ckpt:
        if self.file_backend.isfile(outdated):
            self.file_backend.remove(outdated)
        elif self.file_backend.isdir(outdated):
            # checkpoints saved by deepspeed are directories
            self.file_backend.rmtree(outdated)


def _patch_checkpoint_saving() -> None:
    import mmengine.runner as runner_pkg
    from mmengine.hooks import checkpoint_hook
    from mmengine.runner import checkpoint as ckpt
    from mmengine.runner import runner as runner_mod

    runner_cls = runner_mod.Runner
    if getattr(runner_cls, '_mmgate_atomic', False):
        return
    save = functools.wraps(ckpt.save_checkpoint)(functools.partial(
        _save_checkpoint_atomic, __original=ckpt.save_checkpoint))
    # the Runner and CheckpointHook._publish_model use the names they import
    ckpt.save_checkpoint = save
    runner_mod.save_checkpoint = save
    runner_pkg.save_checkpoint = save
    hook_cls = checkpoint_hook.CheckpointHook
    original_step = hook_cls._save_checkpoint_with_step

    @functools.wraps(original_step)
    def save_with_step(self, runner, step, meta):
        return _save_checkpoint_with_step(self, runner, step, meta)

    hook_cls._save_checkpoint_with_step = save_with_step

    save_method = runner_cls.save_checkpoint
    params = list(inspect.signature(save_method).parameters)

    @functools.wraps(save_method)
    def save_with_rng(self, *args, **kwargs):
        bound = dict(zip(params[1:], args), **kwargs)
        bound['meta'] = dict(bound.get('meta') or {},
                             rng_state=_rng_state())
        return save_method(self, **bound)

    runner_cls.save_checkpoint = save_with_rng
    runner_cls._mmgate_atomic = True


def _init_dist_cpu(backend, init_backend='torch', **kwargs) -> None:
    """``torch.distributed`` on gloo for a launcher that set the env vars."""
    import torch.distributed as torch_dist
    if backend == 'nccl':
        backend = 'gloo'
    if init_backend != 'torch':
        raise ValueError(f'init_backend={init_backend!r} needs CUDA')
    torch_dist.init_process_group(
        backend=backend,
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)


def _slurm_env_to_torch_env(port=None) -> None:
    """What MMEngine's slurm init derives from SLURM_* variables."""
    import subprocess
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    addr = subprocess.getoutput(
        f'scontrol show hostname {node_list} | head -n1')
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ.setdefault('MASTER_ADDR', addr)
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ['RANK'] = str(proc_id)


def _patch_distributed() -> None:
    from mmengine.dist import utils as dist_utils
    from mmengine.runner import runner as runner_mod

    if getattr(dist_utils, '_mmgate_patched', False):
        return
    init_pytorch = dist_utils._init_dist_pytorch
    init_slurm = dist_utils._init_dist_slurm

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if is_distributed_cpu():
            return _init_dist_cpu(backend, init_backend, **kwargs)
        return init_pytorch(backend, init_backend=init_backend, **kwargs)

    def _init_dist_slurm(backend, port=None, init_backend='torch', **kwargs):
        if is_distributed_cpu():
            _slurm_env_to_torch_env(port)
            return _init_dist_cpu(backend, init_backend, **kwargs)
        return init_slurm(
            backend, port=port, init_backend=init_backend, **kwargs)

    dist_utils._init_dist_pytorch = _init_dist_pytorch
    dist_utils._init_dist_slurm = _init_dist_slurm
    dist_utils._mmgate_patched = True

    runner_cls = runner_mod.Runner
    wrap_model = runner_cls.wrap_model

    @functools.wraps(wrap_model)
    def wrap_model_cpu(self, model_wrapper_cfg, model):
        from mmengine.model import is_model_wrapper, revert_sync_batchnorm
        from mmengine.registry import MODEL_WRAPPERS
        if (not self.distributed or not is_distributed_cpu()
                or is_model_wrapper(model)):
            return wrap_model(self, model_wrapper_cfg, model)
        # SyncBN is CUDA-only; plain BN on each process is the CPU analogue.
        model = revert_sync_batchnorm(model.to('cpu'))
        cfg = dict(model_wrapper_cfg or dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=self.cfg.get('find_unused_parameters',
                                                False)))
        cfg.setdefault('type', 'MMDistributedDataParallel')
        return MODEL_WRAPPERS.build(
            cfg, default_args=dict(module=model, device_ids=None))

    runner_cls.wrap_model = wrap_model_cpu


def apply() -> None:
    """Apply every fix to MMEngine, for the whole process (idempotent: a
    second call changes nothing).

    Call it before building a Runner; mmgate's tools do. Importing mmgate
    never calls it.
    """
    global _applied
    if _applied:
        return
    _patch_checkpoint_loading()
    _patch_checkpoint_saving()
    _patch_distributed()
    _applied = True


def is_applied() -> bool:
    """True once :func:`apply` has patched MMEngine in this process."""
    return _applied
