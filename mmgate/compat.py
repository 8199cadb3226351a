"""Compatibility fixes for the stack mmgate is pinned to.

Imported first by ``mmgate/__init__.py``. Each fix says why it exists and when
it can go. Nothing here changes numerical behaviour; the fixes only make the
2023 OpenMMLab releases (mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0,
mmsegmentation 1.2.2, mmpretrain 1.2.0) run on torch 2.14 and on machines
without CUDA.

1. Safe checkpoint loading (torch >= 2.6 loads with ``weights_only=True``).
   Plain weight files (pretrained backbones, the authors' published weights,
   anything fetched over HTTP) always load with ``weights_only=True``. Only a
   run's own checkpoints, read through ``Runner.resume`` or
   ``Runner.load_checkpoint`` (``--resume``, ``load_from``, ``tools/test.py``),
   may unpickle MMEngine's objects (message hub, history buffers). Can go when
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

__all__ = ['trusted_checkpoints', 'is_distributed_cpu']

_TRUST = contextvars.ContextVar('mmgate_trust_checkpoints', default=False)


@contextlib.contextmanager
def trusted_checkpoints():
    """Within this context, local checkpoints load with
    ``weights_only=False``: use only for a run's own checkpoints."""
    token = _TRUST.set(True)
    try:
        yield
    finally:
        _TRUST.reset(token)


def _load_from_local(filename, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    return torch.load(
        filename, map_location=map_location, weights_only=not _TRUST.get())


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
    """Apply every fix (idempotent)."""
    _patch_checkpoint_loading()
    _patch_distributed()


apply()
