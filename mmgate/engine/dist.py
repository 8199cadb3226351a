"""Distributed runs on machines without CUDA.

MMEngine's ``init_dist`` calls ``torch.cuda.set_device`` for the ``pytorch``
and ``slurm`` launchers, and ``Runner.wrap_model`` gives DDP
``device_ids=[LOCAL_RANK]``; both fail without CUDA. mmgate's Runner
initialises the process group itself on such a machine
(:func:`init_cpu_dist`, gloo backend) before MMEngine's set-up runs, so
MMEngine finds it initialised and skips its own, and wraps the model with
``device_ids=None`` (:meth:`mmgate.engine.Runner.wrap_model`).

A rank started by torchrun also stops when its launcher dies
(:func:`stop_with_launcher`): otherwise the ranks of a job whose torchrun
was killed train on unattended, and a resumed run would write into the
same work dir beside them.
"""
import ctypes
import os
import signal
import subprocess
import sys

import torch

__all__ = ['cuda_missing', 'init_cpu_dist', 'stop_with_launcher']

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def cuda_missing() -> bool:
    """True when a distributed run has no CUDA device to use."""
    return not torch.cuda.is_available()


def _slurm_env_to_torch_env(port=None) -> None:
    """What MMEngine's slurm initialisation derives from SLURM_* variables
    (``mmengine.dist.utils._init_dist_slurm``)."""
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


def init_cpu_dist(launcher: str,
                  backend: str = 'gloo',
                  init_backend: str = 'torch',
                  port=None,
                  **kwargs) -> None:
    """``torch.distributed`` on gloo for the ``pytorch`` (torchrun) or
    ``slurm`` launcher; an ``nccl`` backend in the config becomes gloo.

    Raises:
        ValueError: The launcher or ``init_backend`` needs CUDA.
    """
    import torch.distributed as torch_dist
    if launcher == 'slurm':
        _slurm_env_to_torch_env(port)
    elif launcher != 'pytorch':
        raise ValueError(f'launcher {launcher!r} needs CUDA; without CUDA '
                         "use 'pytorch' (torchrun) or 'slurm'")
    if init_backend != 'torch':
        raise ValueError(f'init_backend={init_backend!r} needs CUDA')
    if backend == 'nccl':
        backend = 'gloo'
    torch_dist.init_process_group(
        backend=backend,
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)


def stop_with_launcher() -> bool:
    """Have the kernel SIGKILL this process when its parent (torchrun's
    agent) dies (Linux ``prctl(PR_SET_PDEATHSIG)``; elsewhere nothing
    happens).

    Returns:
        bool: Whether the guard is set.
    """
    if not sys.platform.startswith('linux'):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the launcher died before the call
        os.kill(os.getpid(), signal.SIGKILL)
    return True
