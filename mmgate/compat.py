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
   code says so with ``read_checkpoint(..., trusted=True)``. Can go when
   MMEngine writes weights-only-loadable checkpoints or passes
   ``weights_only`` itself.
2. Distributed runs without CUDA. MMEngine's ``_init_dist_pytorch`` and
   ``_init_dist_slurm`` call ``torch.cuda.set_device`` unconditionally, and
   ``Runner.wrap_model`` gives DDP ``device_ids=[LOCAL_RANK]``; both fail on a
   CPU machine. Here they use the gloo backend and ``device_ids=None``, and
   SyncBN (CUDA only) is reverted to BN. Can go when MMEngine supports CPU DDP.
3. ``pkg_resources`` (used by mmcv's setup and by MMEngine for ``mmdet::``
   config prefixes) is gone from setuptools 82; the pin
   ``setuptools<82`` in ``tools/env/constraints.txt`` keeps it. Can go when
   MMEngine uses ``importlib.metadata``.
"""
import contextlib
import contextvars
import functools
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
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    return torch.load(
        filename, map_location=map_location, weights_only=weights_only)


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
    for name in ('resume', 'load_checkpoint'):
        original = getattr(runner_cls, name)

        @functools.wraps(original)
        def trusting(self, *args, __original=original, **kwargs):
            with trusted_checkpoints():
                return __original(self, *args, **kwargs)

        setattr(runner_cls, name, trusting)
    runner_cls._mmgate_trusting = True


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
    _patch_distributed()
    _applied = True


def is_applied() -> bool:
    """True once :func:`apply` has patched MMEngine in this process."""
    return _applied
