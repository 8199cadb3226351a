"""The random number generators' states, for checkpoints.

MMEngine seeds its generators once when a Runner is built and saves no
generator state in a checkpoint, so a resumed run draws other random numbers
(RoI sampling, dropout, drop-path, augmentations in the main process) than an
uninterrupted one. mmgate's Runner saves the states of every rank
(:func:`gather_rng_states`) under ``meta['rng_state']`` and each rank
restores its own when it resumes (:func:`restore_rng_state`). The states are
stored as tensors and plain numbers, so the checkpoint stays loadable with
``weights_only=True``.
"""
import random
from typing import List, Optional, Union

import numpy as np
import torch

__all__ = [
    'rng_state', 'set_rng_state', 'gather_rng_states', 'restore_rng_state'
]


def rng_state() -> dict:
    """This process's generator states: torch (CPU, and the current CUDA
    device when CUDA is initialised), numpy and ``random``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(
            kind=kind,
            keys=torch.from_numpy(keys.astype('int64')),
            pos=int(pos),
            has_gauss=int(has_gauss),
            gauss=float(gauss)),
        random=dict(
            version=version,
            internal=torch.tensor(internal),
            gauss_next=gauss_next))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the states :func:`rng_state` returned."""
    torch.set_rng_state(state['torch'])
    n = state['numpy']
    np.random.set_state((n['kind'], n['keys'].numpy().astype(np.uint32),
                         n['pos'], n['has_gauss'], n['gauss']))
    r = state['random']
    random.setstate(
        (r['version'], tuple(r['internal'].tolist()), r['gauss_next']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'])


def gather_rng_states() -> List[dict]:
    """The states of every rank, in rank order (a collective call in a
    distributed run: every rank must call it)."""
    from mmengine.dist import all_gather_object, get_world_size
    own = rng_state()
    if get_world_size() == 1:
        return [own]
    return all_gather_object(own)


def restore_rng_state(saved: Union[dict, List[dict], None], rank: int,
                      world_size: int) -> Optional[str]:
    """Restore this rank's states from ``meta['rng_state']``.

    Args:
        saved: A list of per-rank states (this version), a single state (a
            checkpoint of one process), or None.
        rank (int): This process's rank.
        world_size (int): The number of processes of the resumed run.

    Returns:
        str or None: Why nothing was restored (None when it was).
    """
    if saved is None:
        return 'the checkpoint holds no random number generator states'
    states = saved if isinstance(saved, (list, tuple)) else [saved]
    if len(states) != world_size and len(states) != 1:
        return (f'the checkpoint holds the generator states of {len(states)} '
                f'processes, this run has {world_size}')
    set_rng_state(states[rank] if len(states) == world_size else states[0])
    return None
