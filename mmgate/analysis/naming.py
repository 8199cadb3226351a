"""Backbone names for the benchmark report, from the backbones' classes.

A backbone config is built as the run's Runner builds it (MMEngine's
``MODELS`` in the config's ``default_scope``, ``'mmengine'`` when unset, so
that mmgate's host-library defaults apply), on the CPU without touching the
caller's random state, and named from the module it gives:

- the class: ``type(module).__name__`` (``SkipResNetV1c``, ``ResNeXt``,
  ``ConvNeXt``, ``DenseMobileNetV2``);
- the architecture it was built with: ``-<depth>`` when the module keeps an
  int ``depth`` (the ResNet families), then ``-<G>x<d>d`` when the 3x3
  convs of its first stage are grouped (cardinality ``G``, ``d`` channels
  per group: ResNeXt's notation, Xie et al., CVPR 2017); ``-<arch>`` when
  its ``depths`` / ``channels`` are an entry of the class's own
  ``arch_settings`` (ConvNeXt's T, S, B, L, XL; Liu et al., CVPR 2022),
  ``(d3-3-9-3, c96)`` for another arch; ``-<widen_factor>`` for a
  width-multiplied one (``MobileNetV2-1.0``);
- `` (w<base_channels>)`` when ``base_channels``, ``stem_channels`` or
  ``num_stages`` differ from what the class builds from the architecture
  keys alone (its own defaults for the rest): a narrowed backbone.

So ``type='mmgate.SkipResNeXt', depth=101`` is ``SkipResNeXt-101-32x4d``
in an MMPretrain config and ``SkipResNeXt-101`` (a plain-width trunk) in
an MMDetection one, where ``groups`` defaults to 1. No config file name and
no type string is parsed.

Two identities come with the name, both from the parameters' names and
shapes: the *trunk* (the parameters outside the Gate Modules), which a
gated backbone shares with the plain one it is compared with (SkipResNet-50
and ResNet-50 of one library, DenseMobileNetV2 and MobileNetV2), and the
*structure* (all of them), which a run shares with the config of the
metafile model it reproduces.
"""
import hashlib
import json
from typing import Dict, NamedTuple, Optional, Tuple, Union

__all__ = [
    'BackboneInfo', 'BackboneError', 'describe_backbone', 'unbuilt_backbone',
    'config_scope', 'type_name', 'error_line'
]

# the keys that name an architecture; everything else takes the class's
# defaults in the reference build that tells a narrowed backbone
ARCH_KEYS = ('type', 'depth', 'groups', 'width_per_group', 'base_width',
             'arch', 'widen_factor')
WIDTH_ATTRS = ('base_channels', 'stem_channels', 'num_stages')
# ConvNeXt's size names as its paper abbreviates them (Liu et al. 2022)
ARCH_SHORT = {
    'tiny': 'T',
    'small': 'S',
    'base': 'B',
    'large': 'L',
    'xlarge': 'XL'
}
# Runner's default scope when a config sets none
RUNNER_SCOPE = 'mmengine'


class BackboneError(ValueError):
    """A backbone config that cannot be built (and so not named)."""


class BackboneInfo(NamedTuple):
    """What the report knows about a backbone config.

    Attributes:
        label (str): The name shown (see the module docstring).
        skip (bool): Gated: the module holds Gate Modules.
        family_key (tuple): ``(trunk parameters, trunk digest)``: equal for
            backbones that differ only in their gates; the pairing key.
        structure (str, optional): Digest of all parameter names and
            shapes; None when not built.
        built (bool): Named from its built class; False: named by its
            ``type`` as written (see ``unbuilt_backbone``).
    """
    label: str
    skip: bool
    family_key: tuple
    structure: Optional[str] = None
    built: bool = True


def type_name(cfg) -> str:
    """The registry name of a config's ``type`` without its scope
    (``'mmgate.SkipResNet'`` -> ``'SkipResNet'``); ``''`` when none."""
    t = cfg.get('type', '') if isinstance(cfg, dict) else ''
    t = t if isinstance(t, str) else getattr(t, '__name__', str(t))
    return t.split('.')[-1]


def error_line(e: BaseException) -> str:
    """``'KeyError: <first line of the message>'``."""
    lines = str(e).strip().splitlines()
    return f'{type(e).__name__}: {lines[0] if lines else ""}'


def config_scope(cfg) -> str:
    """The scope a Runner builds ``cfg``'s model in: its
    ``default_scope``, else MMEngine's."""
    scope = cfg.get('default_scope') if cfg else None
    return scope or RUNNER_SCOPE


def unbuilt_backbone(cfg: Optional[dict]) -> BackboneInfo:
    """The description of a backbone that was not built: its ``type``
    (or ``'?'``), not gated, a trunk of its own."""
    label = type_name(cfg) or '?'
    return BackboneInfo(
        label, False, (0, f'unbuilt {label}'), None, built=False)


def _deep_copy(value):
    """A plain copy of nested (Config)dicts, lists and tuples."""
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_deep_copy(v) for v in value)
    return value


def _build(cfg: dict, scope: str):
    """Build a backbone config on the CPU in ``scope``; the global random
    state is restored afterwards."""
    import torch
    from mmengine.registry import MODELS, DefaultScope
    with torch.random.fork_rng(devices=[]), \
            DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(_deep_copy(cfg))


def _digest(items) -> str:
    text = '\n'.join(f'{name}:{tuple(shape)}' for name, shape in items)
    return hashlib.sha1(text.encode('utf-8')).hexdigest()[:16]


def _identities(module) -> Tuple[bool, tuple, str]:
    """``(gated, family_key, structure)`` of a built backbone."""
    from mmgate.models.layers import GateModule
    gates = tuple(f'{name}.' for name, m in module.named_modules()
                  if isinstance(m, GateModule))
    params = sorted((n, p.shape) for n, p in module.named_parameters())
    trunk = [(n, s) for n, s in params if not n.startswith(gates)]
    size = sum(s.numel() for _, s in trunk)
    return bool(gates), (size, _digest(trunk)), _digest(params)


def _grouping(module) -> str:
    """``-<G>x<d>d`` of the first grouped conv of stage 1 (``layer1``),
    ``''`` when its convs are not grouped."""
    import torch.nn as nn
    stage = getattr(module, 'layer1', None)
    if not isinstance(stage, nn.Module):
        return ''
    for m in stage.modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1:
            return f'-{m.groups}x{m.out_channels // m.groups}d'
    return ''


def _arch_name(module) -> str:
    """``-T`` (an entry of the class's ``arch_settings``) or
    `` (d3-3-9-3, c96)``."""
    depths, channels = list(module.depths), list(module.channels)
    table = getattr(type(module), 'arch_settings', None)
    if isinstance(table, dict):
        for key, entry in table.items():
            if isinstance(entry, dict) and \
                    list(entry.get('depths', ())) == depths and \
                    list(entry.get('channels', ())) == channels:
                return f'-{ARCH_SHORT.get(key, key)}'
    return f' (d{"-".join(map(str, depths))}, c{channels[0]})'


def _widths(module) -> tuple:
    return tuple(getattr(module, a, None) for a in WIDTH_ATTRS)


_REFERENCES: Dict[Tuple[str, str], tuple] = {}


def _reference_widths(cfg: dict, scope: str) -> tuple:
    """The widths the class builds from the architecture keys alone."""
    reference = {k: cfg[k] for k in ARCH_KEYS if k in cfg}
    key = (scope, json.dumps(reference, sort_keys=True, default=repr))
    if key not in _REFERENCES:
        _REFERENCES[key] = _widths(_build(reference, scope))
    return _REFERENCES[key]


def _label(module, cfg: dict, scope: str) -> str:
    name = type(module).__name__
    depth = getattr(module, 'depth', None)
    if isinstance(depth, int) and not isinstance(depth, bool):
        name += f'-{depth}' + _grouping(module)
        if any(k in cfg for k in WIDTH_ATTRS) and \
                _widths(module) != _reference_widths(cfg, scope):
            name += f' (w{getattr(module, "base_channels", "?")})'
        return name
    if hasattr(module, 'depths') and hasattr(module, 'channels'):
        return name + _arch_name(module)
    widen = getattr(module, 'widen_factor', None)
    if isinstance(widen, (int, float)) and not isinstance(widen, bool):
        return f'{name}-{float(widen)!r}'
    return name


# (scope, config) -> its description, or why it does not build
_CACHE: Dict[Tuple[str, str], Union[BackboneInfo, str]] = {}


def describe_backbone(cfg: Optional[dict],
                      scope: Optional[str] = None) -> BackboneInfo:
    """Build a backbone config and name it (see the module docstring).

    Args:
        cfg (dict, optional): The backbone config (``model.backbone``).
            None: ``'?'``, not built.
        scope (str, optional): The default scope to build in (the run's
            ``default_scope``); None: MMEngine's, as a Runner.

    Raises:
        BackboneError: The config does not build (unknown type, bad
            argument); the message names the type, the scope and why.

    Example:
        >>> describe_backbone(dict(type='mmgate.SkipResNet', depth=50)).label
        'SkipResNet-50'
        >>> info = describe_backbone(dict(type='mmgate.SkipResNeXt',
        ...                               depth=50), scope='mmpretrain')
        >>> info.label, info.skip
        ('SkipResNeXt-50-32x4d', True)
        >>> plain = describe_backbone(dict(type='ResNeXt', depth=50),
        ...                           scope='mmpretrain')
        >>> plain.label, plain.family_key == info.family_key
        ('ResNeXt-50-32x4d', True)
    """
    if not cfg:
        return unbuilt_backbone(None)
    scope = scope or RUNNER_SCOPE
    cfg = _deep_copy(cfg)
    key = (scope, json.dumps(cfg, sort_keys=True, default=repr))
    if key not in _CACHE:
        try:
            module = _build(cfg, scope)
            gated, family, structure = _identities(module)
            _CACHE[key] = BackboneInfo(
                _label(module, cfg, scope), gated, family, structure)
        except Exception as e:  # any constructor error: named below
            _CACHE[key] = (f'backbone {cfg.get("type")!r} does not build '
                           f'in scope {scope!r}: {error_line(e)}')
    result = _CACHE[key]
    if isinstance(result, str):
        raise BackboneError(result)
    return result
