"""Strict loading of pretrained backbone weights.

MMEngine's ``Pretrained`` initialiser loads with ``strict=False`` and only
logs what did not fit, so a wrong checkpoint silently leaves a backbone at its
random init. mmgate's backbones load through :func:`load_pretrained_weights`
instead: the file is read with ``weights_only=True`` (by
:func:`mmgate.fileio.read_checkpoint`; a missing, empty, truncated or
non-PyTorch file, or one that needs code execution to unpickle, is a one-line
``mmgate.fileio.CheckpointError`` naming it), converted if it is one of the
authors' timm files, and every missing, unexpected or mis-shaped key is an
error that lists them. A file with a NaN or an infinity in any tensor is
refused (one line naming the first tensors); tensors of another dtype than
the model's (an fp16 file for an fp32 model) are cast, and one log line
says how many, from which dtype to which.
"""
import re
from collections import Counter
from typing import Dict, List

from mmengine.logging import MMLogger
from torch import Tensor, nn

from ...fileio import read_checkpoint, refuse_nonfinite
from .timm_convert import convert_timm_checkpoint, detect_timm_layout

__all__ = [
    'load_checkpoint_file', 'load_pretrained_weights', 'load_if_pretrained'
]


def load_checkpoint_file(filename: str,
                         map_location: str = 'cpu',
                         trusted: bool = False) -> Dict[str, Tensor]:
    """Read a checkpoint (path, URL, ``torchvision://`` ...) as a flat state
    dict, unwrapping ``state_dict`` / ``model`` and converting timm files to
    mmgate's keys (``backbone.*`` / ``head.*``). ``trusted=True`` (a run's
    own local checkpoint, which holds pickled MMEngine objects) lifts
    ``weights_only`` for local files.

    Raises:
        mmgate.fileio.CheckpointError: The file cannot be read, or a tensor
            holds NaN / Inf (the message names the first ones by their key
            in the file).
    """
    checkpoint = read_checkpoint(
        filename, map_location=map_location, trusted=trusted)
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{filename} holds a {type(checkpoint).__name__}, '
                         'not a state dict')
    for wrapper in ('state_dict', 'model'):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
            break
    refuse_nonfinite(checkpoint, filename)
    checkpoint = {
        re.sub(r'^module\.', '', k): v
        for k, v in checkpoint.items()
    }
    if detect_timm_layout(checkpoint) is not None:
        checkpoint = dict(convert_timm_checkpoint(checkpoint))
    return checkpoint


def _format(kind: str, keys: List[str]) -> str:
    shown = ', '.join(keys[:10])
    more = f' ... (+{len(keys) - 10} more)' if len(keys) > 10 else ''
    return f'  {len(keys)} {kind}: {shown}{more}'


def _dtype_name(tensor: Tensor) -> str:
    return str(tensor.dtype).replace('torch.', '')


def _log_casts(model: nn.Module, state: Dict[str, Tensor],
               own: Dict[str, Tensor], filename: str) -> None:
    """One log line for the tensors of ``state`` whose dtype is not that of
    the model's tensor they load into (``load_state_dict`` casts them):
    how many, from which dtype to which."""
    casts = Counter((_dtype_name(v), _dtype_name(own[k]))
                    for k, v in state.items() if v.dtype != own[k].dtype)
    if casts:
        what = ', '.join(f'{n} {src} tensor{"s" if n > 1 else ""} to {dst}'
                         for (src, dst), n in casts.items())
        MMLogger.get_current_instance().info(
            f"{type(model).__name__}: cast {what} (the model's dtype) from "
            f'checkpoint {filename}')


def _declared_optional(model: nn.Module, key: str) -> bool:
    """A plug-in layer may list parameters that a checkpoint of the plain
    architecture cannot have (``optional_pretrained_params``), e.g. the
    learnt variance of a Gaussian-prior conv placed in a pretrained net."""
    module_name, _, param = key.rpartition('.')
    try:
        module = model.get_submodule(module_name) if module_name else model
    except AttributeError:
        return False
    return param in getattr(module, 'optional_pretrained_params', ())


def load_pretrained_weights(model: nn.Module,
                            init_cfg: dict,
                            trusted: bool = False) -> None:
    """Load ``init_cfg['checkpoint']`` into ``model``, strictly: the one
    loader of backbone weights and of whole models (analysis tools).

    Args:
        model (nn.Module): The backbone (or a whole model with
            ``prefix=''``). A submodule may list parameter
            names in ``optional_pretrained_params`` that may be missing. It
            may define
            ``optional_pretrained_key(key, missing) -> bool`` for keys that a
            classification checkpoint legitimately lacks or has in excess
            (output norms of unused stages, stages not built).
        init_cfg (dict): ``type='Pretrained'``, ``checkpoint`` and optionally
            ``prefix`` (default: ``backbone.`` when the checkpoint has such
            keys; ``''`` loads every key) and ``map_location``.
        trusted (bool): The file is a run's own checkpoint
            (:func:`load_checkpoint_file`). Defaults to False.

    Raises:
        ValueError: Keys or shapes do not fit; the message lists them.
        mmgate.fileio.CheckpointError: The file cannot be read, or holds
            NaN / Inf (:func:`load_checkpoint_file`); nothing is loaded.
    """
    filename = init_cfg.get('checkpoint')
    if not filename:
        raise ValueError(f'init_cfg {init_cfg} of type Pretrained has no '
                         'checkpoint')
    state = load_checkpoint_file(
        filename, init_cfg.get('map_location', 'cpu'), trusted=trusted)
    prefix = init_cfg.get('prefix')
    if prefix is None and any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state = {
            k[len(prefix):]: v
            for k, v in state.items() if k.startswith(prefix)
        }
        if not state:
            raise ValueError(f'no key of {filename} starts with the prefix '
                             f'{prefix!r}')

    optional = getattr(model, 'optional_pretrained_key', None)
    own = model.state_dict()
    missing = [
        k for k in own
        if k not in state and not k.endswith('num_batches_tracked')
        and not _declared_optional(model, k)
        and not (optional and optional(k, True))
    ]
    unexpected = [
        k for k in state
        if k not in own and not (optional and optional(k, False))
    ]
    mismatched = [
        f'{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
        for k in own if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or mismatched:
        lines = [
            f'checkpoint {filename} does not fit '
            f'{type(model).__name__}:'
        ]
        if missing:
            lines.append(_format('missing keys', missing))
        if unexpected:
            lines.append(_format('unexpected keys', unexpected))
        if mismatched:
            lines.append(_format('shape mismatches', mismatched))
        raise ValueError('\n'.join(lines))
    state = {k: v for k, v in state.items() if k in own}
    _log_casts(model, state, own, filename)
    model.load_state_dict(state, strict=False)
    kept = [
        k for k in own
        if k not in state and not k.endswith('num_batches_tracked')
    ]
    if kept:
        MMLogger.get_current_instance().warning(
            f'{type(model).__name__}: {len(kept)} tensors not in the '
            f'checkpoint keep their initialisation: ' + ', '.join(kept))
    MMLogger.get_current_instance().info(
        f'{type(model).__name__}: loaded {len(state)} of {len(own)} tensors '
        f'from {filename}')


def load_if_pretrained(model: nn.Module) -> bool:
    """A backbone's ``init_weights``: when its ``init_cfg`` is
    ``type='Pretrained'``, load it strictly (:func:`load_pretrained_weights`)
    and return True; otherwise return False (random init is the caller's)."""
    cfg = model.init_cfg
    if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
        load_pretrained_weights(model, cfg)
        model._is_init = True
        return True
    return False
