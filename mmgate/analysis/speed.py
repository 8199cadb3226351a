"""Speed and memory of a gated backbone against its base, in one run.

What is measured, for each model (``base`` and ``skip``):

- ``train``: one training step in train mode: forward, ``loss = sum of the
  outputs' means``, backward, an SGD step (momentum 0.9; PyTorch's default
  implementation for the device, or its ``foreach`` / ``fused`` one, option
  ``optimizer``) and ``zero_grad(set_to_none=True)``;
- ``eval``: one forward in eval mode under ``torch.no_grad()``.

Times are medians over ``repeats``; each repeat times ``iters`` consecutive
calls per model, and the models alternate (base, skip, then skip, base, ...)
so that drift (thermal, other load) hits both alike. Ratios are Skip / base.
Both the wall-clock time and this process's CPU time are recorded: on a
shared CPU machine with ``threads=1`` the CPU time is the robust measure
(other processes stretch the wall clock, not the CPU time); with several
threads, OpenMP's spin-waiting inflates the CPU time, so use the wall
clock there (and on CUDA).

Peak memory, per model and mode, is measured in a fresh subprocess that
builds only that model and runs ``warmup + 1`` calls:

- CUDA: ``torch.cuda.max_memory_allocated()`` (tensors only: weights,
  gradients, optimizer state, activations, workspace);
- CPU: the growth of the process's resident set size, peak over baseline.
  After the imports, the peak is reset to the current RSS (Linux: writing
  ``5`` to ``/proc/self/clear_refs`` resets ``VmHWM``), the model is built
  and run, and ``VmHWM`` minus the RSS at the reset is reported. The
  worker runs with ``MALLOC_MMAP_THRESHOLD_=131072``: every allocation
  from 128 KiB up (all feature maps) gets its own mapping and goes back to
  the system when freed, so the resident set follows the live tensors
  rather than what glibc keeps cached; the number then counts what CUDA's
  counts (plus small-object heap). Without the reset (not Linux) it falls
  back to ``ru_maxrss`` minus the RSS before building, which under-reports
  when the imports peaked higher than the run. A fresh process per
  measurement is what makes either sound: no earlier measurement's memory
  is cached or counted (``tracemalloc`` would miss torch's allocations
  altogether).

Also reported: ``peak - state`` (the peak minus the weights, and for
training their gradients and SGD momentum, all fp32), and, for training,
the bytes autograd saves for backward (``saved_activation_bytes``: exact,
device independent, but without the backward pass's transient buffers).

The defaults are the foundation issue's benchmark: mmgate's SkipResNet-50
against MMDetection's ResNet-50 (``mmdet.ResNet``, imported lazily), batch 8
at 224x224, both with their defaults (``norm_eval=True``).
"""
import argparse
import ast
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

__all__ = [
    'PRESETS', 'OPTIMIZERS', 'BenchOptions', 'make_step', 'time_models',
    'peak_memory', 'peak_memories', 'benchmark', 'format_results',
    'profile_step', 'saved_activation_bytes', 'parse_model_literal'
]

PRESETS = {
    'resnet50': (dict(type='mmdet.ResNet',
                      depth=50), dict(type='mmgate.SkipResNet', depth=50)),
    'resnet101': (dict(type='mmdet.ResNet',
                       depth=101), dict(type='mmgate.SkipResNet', depth=101)),
    'resnet34': (dict(type='mmdet.ResNet',
                      depth=34), dict(type='mmgate.SkipResNet', depth=34)),
    'resnext50':
    (dict(type='mmdet.ResNeXt', depth=50, groups=32, base_width=4),
     dict(type='mmgate.SkipResNeXt', depth=50, groups=32, width_per_group=4)),
    'convnext_t': (dict(
        type='mmpretrain.ConvNeXt',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False),
                   dict(
                       type='mmgate.SkipConvNeXt',
                       arch='tiny',
                       out_indices=(0, 1, 2, 3),
                       gap_before_final_norm=False)),
}

# The SGD implementation of a training step: PyTorch's default for the
# device (a loop over the tensors on CPU, ``foreach`` on CUDA), or one
# chosen (the same update; an OpenMMLab config selects it with
# ``optim_wrapper=dict(optimizer=dict(type='SGD', ..., fused=True))``)
OPTIMIZERS = {
    'sgd': {},
    'sgd-foreach': dict(foreach=True),
    'sgd-fused': dict(fused=True)
}

# What a benchmark measures by default: a training step, an eval forward
MODES = ('train', 'eval')


class BenchOptions(dict):
    """Options of a benchmark (a dict, so that it crosses to the memory
    subprocess as JSON). Keys: ``batch``, ``size``, ``channels``,
    ``device``, ``channels_last``, ``amp``, ``compile``, ``warmup``,
    ``iters``, ``repeats``, ``threads``, ``norm_eval``, ``optimizer``
    (:data:`OPTIMIZERS`)."""

    DEFAULTS = dict(
        batch=8,
        size=224,
        channels=3,
        device='cpu',
        channels_last=False,
        amp=False,
        compile=False,
        warmup=2,
        iters=2,
        repeats=5,
        threads=None,
        norm_eval=None,
        optimizer='sgd')

    def __init__(self, **kwargs) -> None:
        unknown = set(kwargs) - set(self.DEFAULTS)
        if unknown:
            raise KeyError(f'unknown benchmark options {sorted(unknown)}')
        super().__init__({**self.DEFAULTS, **kwargs})
        if self['device'].startswith('cuda') and \
                not torch.cuda.is_available():
            raise RuntimeError('device cuda asked for, but CUDA is not '
                               'available')
        for key in ('batch', 'size', 'channels', 'iters', 'repeats'):
            if int(self[key]) < 1:
                raise ValueError(f'{key} must be >= 1, got {self[key]}')
        if self['optimizer'] not in OPTIMIZERS:
            raise ValueError(f'optimizer must be one of {sorted(OPTIMIZERS)}'
                             f", got {self['optimizer']!r}")


def build(model_cfg: dict, opts: BenchOptions) -> nn.Module:
    """Build, initialise and place a model for the benchmark."""
    from .complexity import build_model, init_weights_quietly
    cfg = dict(model_cfg)
    if opts['norm_eval'] is not None:
        cfg['norm_eval'] = bool(opts['norm_eval'])
    model = init_weights_quietly(build_model(cfg))
    model.to(opts['device'])
    if opts['channels_last']:
        model.to(memory_format=torch.channels_last)
    return model


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def _outputs(out) -> List[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _outputs(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _outputs(o)]
    return []


def _batch(opts: BenchOptions) -> torch.Tensor:
    """The fixed random input batch, in the options' memory format."""
    x = torch.randn(
        opts['batch'],
        opts['channels'],
        opts['size'],
        opts['size'],
        device=opts['device'])
    if opts['channels_last']:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def make_step(model: nn.Module, mode: str, opts: BenchOptions) -> Callable:
    """A no-argument callable that runs one ``train`` or ``eval`` step on
    a fixed random batch."""
    if mode not in MODES:
        raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
    device = opts['device']
    x = _batch(opts)
    dev_type = 'cuda' if device.startswith('cuda') else 'cpu'
    amp_dtype = torch.float16 if dev_type == 'cuda' else torch.bfloat16

    def autocast():
        if opts['amp']:
            return torch.autocast(dev_type, dtype=amp_dtype)
        return contextlib.nullcontext()

    forward = torch.compile(model) if opts['compile'] else model

    if mode == 'eval':

        def step() -> None:
            model.eval()
            with torch.no_grad(), autocast():
                forward(x)

        return step

    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.SGD(
        params, lr=1e-3, momentum=0.9, **OPTIMIZERS[opts['optimizer']])
    scaler = torch.amp.GradScaler(
        'cuda', enabled=bool(opts['amp']) and dev_type == 'cuda')

    def step() -> None:
        model.train()
        with autocast():
            loss = sum(o.float().mean() for o in _outputs(forward(x)))
        scaler.scale(loss).backward()
        scaler.step(optim)
        scaler.update()
        optim.zero_grad(set_to_none=True)

    return step


def time_models(models: Dict[str, nn.Module],
                opts: BenchOptions,
                modes: Sequence[str] = MODES) -> Dict:
    """Median seconds per step of each model and mode, interleaved.

    Returns:
        dict: ``{mode: {name: {'median': s, 'times': [...], 'cpu_median':
        s, 'cpu_times': [...], 'user_median': s, 'sys_median': s,
        'minor_faults_median': n}}}`` (wall clock, process CPU time, and
        its split into user and system time with the minor page faults per
        step: system time that grows with the faults is the kernel mapping
        and zeroing fresh pages for the allocator, i.e. memory traffic the
        FLOPs do not show).
    """
    device = opts['device']
    steps = {
        (name, mode): make_step(m, mode, opts)
        for name, m in models.items()
        for mode in modes
    }
    for step in steps.values():  # warm-up (and compilation)
        for _ in range(opts['warmup']):
            step()
    _sync(device)
    times = {key: [] for key in steps}
    cpu_times = {key: [] for key in steps}
    usage = {key: [] for key in steps}  # (user s, sys s, minor faults)
    names = list(models)
    for r in range(opts['repeats']):
        order = names if r % 2 == 0 else names[::-1]
        for mode in modes:
            for name in order:
                step = steps[(name, mode)]
                _sync(device)
                t0, c0 = time.perf_counter(), time.process_time()
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                for _ in range(opts['iters']):
                    step()
                _sync(device)
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                n = opts['iters']
                times[(name, mode)].append((time.perf_counter() - t0) / n)
                cpu_times[(name, mode)].append((time.process_time() - c0) / n)
                usage[(name, mode)].append(((r1.ru_utime - r0.ru_utime) / n,
                                            (r1.ru_stime - r0.ru_stime) / n,
                                            (r1.ru_minflt - r0.ru_minflt) / n))
    out = {}
    for key, ts in times.items():
        name, mode = key
        out.setdefault(mode, {})[name] = dict(
            median=statistics.median(ts),
            times=ts,
            cpu_median=statistics.median(cpu_times[key]),
            cpu_times=cpu_times[key],
            user_median=statistics.median(u[0] for u in usage[key]),
            sys_median=statistics.median(u[1] for u in usage[key]),
            minor_faults_median=statistics.median(u[2] for u in usage[key]))
    return out


def _proc_status_kb(key: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> Tuple[int, str]:
    """Reset the peak RSS to the current RSS; return (baseline bytes,
    method)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        rss = _proc_status_kb('VmRSS')
        if rss is not None and _proc_status_kb('VmHWM') is not None:
            return rss * 1024, 'VmHWM - VmRSS at reset (fresh process)'
    except OSError:
        pass
    rss = _proc_status_kb('VmRSS')
    if rss is None:  # macOS: ru_maxrss is in bytes, and so is the baseline
        return _maxrss_bytes(), 'ru_maxrss delta (fresh process)'
    return rss * 1024, 'ru_maxrss - RSS before build (fresh process)'


def _peak_rss(method: str) -> int:
    if method.startswith('VmHWM'):
        return _proc_status_kb('VmHWM') * 1024
    return _maxrss_bytes()


def saved_activation_bytes(model: nn.Module, opts: BenchOptions) -> int:
    """Bytes autograd keeps for the backward pass of one training forward
    (unique storages of the saved tensors, parameters excluded): the
    activation memory of training, exactly and on any device, without the
    backward pass's transient buffers (which the peak includes)."""
    device = opts['device']
    x = _batch(opts)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    dev_type = 'cuda' if device.startswith('cuda') else 'cpu'
    amp = torch.autocast(dev_type, dtype=torch.float16 if dev_type == 'cuda'
                         else torch.bfloat16) if opts['amp'] \
        else contextlib.nullcontext()
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), amp:
        out = model(x)
    del out
    return sum(seen.values())


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == 'darwin' else rss * 1024


def _memory_worker(model_cfg: dict, mode: str, opts: BenchOptions) -> Dict:
    """Body of the fresh process of ``peak_memory``."""
    import mmgate.models  # noqa: F401  imports done before the baseline
    from .complexity import build_model  # noqa: F401
    if model_cfg.get('type', '').startswith(('mmdet.', 'mmpretrain.')):
        __import__(model_cfg['type'].split('.')[0] + '.models')
    if opts['threads']:
        torch.set_num_threads(int(opts['threads']))
    device = opts['device']
    cuda = device.startswith('cuda')
    if cuda:
        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats()
        before, method = torch.cuda.memory_allocated(), \
            'cuda.max_memory_allocated'
    else:
        before, method = _reset_peak_rss()
    model = build(model_cfg, opts)
    step = make_step(model, mode, opts)
    for _ in range(opts['warmup'] + 1):
        step()
    _sync(device)
    peak = torch.cuda.max_memory_allocated() if cuda else _peak_rss(method)
    return dict(peak_bytes=peak - before, method=method)


def _worker_cmd(model_cfg: dict, mode: str, opts: BenchOptions) -> list:
    payload = json.dumps(dict(model=model_cfg, mode=mode, opts=dict(opts)))
    return [
        sys.executable, '-m', 'mmgate.analysis.speed', '--memory-worker',
        payload
    ]


def _worker_env() -> dict:
    """glibc: allocations from 128 KiB up always get their own mapping,
    returned to the system when freed (a fixed threshold also stops glibc
    from raising it), so that the resident set follows the live tensors
    instead of what the allocator keeps cached."""
    env = dict(os.environ)
    env.setdefault('MALLOC_MMAP_THRESHOLD_', str(128 * 1024))
    return env


def peak_memories(jobs: Sequence[tuple], parallel: int = 2) -> List[Dict]:
    """``peak_memory`` of several ``(model_cfg, mode, opts)`` jobs, each in
    its own fresh process, ``parallel`` processes at a time (the resident
    set of one process does not depend on the others)."""
    results: List[Optional[Dict]] = [None] * len(jobs)
    pending = list(enumerate(jobs))
    running = []
    while pending or running:
        while pending and len(running) < max(1, parallel):
            i, (cfg, mode, opts) = pending.pop(0)
            proc = subprocess.Popen(
                _worker_cmd(cfg, mode, opts),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_worker_env())
            running.append((i, cfg, mode, proc))
        i, cfg, mode, proc = running.pop(0)
        out, err = proc.communicate()
        if proc.returncode != 0:
            for *_, other in running:
                other.kill()
            raise RuntimeError(f'memory measurement of {cfg} ({mode}) '
                               f'failed:\n{err[-3000:]}')
        results[i] = json.loads(out.strip().splitlines()[-1])
    return results


def peak_memory(model_cfg: dict, mode: str, opts: BenchOptions) -> Dict:
    """Peak memory of ``warmup + 1`` steps of a model in a fresh Python
    process (see the module docstring): ``peak_bytes`` and ``method``."""
    return peak_memories([(model_cfg, mode, opts)])[0]


def benchmark(base_cfg: dict,
              skip_cfg: dict,
              opts: Optional[BenchOptions] = None,
              modes: Sequence[str] = MODES,
              memory: bool = True) -> Dict:
    """Time (interleaved, in this process) and peak memory (fresh
    processes) of base and Skip; the ratios Skip / base.

    Returns:
        dict: ``options``, ``models``, and per mode ``{base, skip}`` with
        ``time_s``, ``images_per_s``, ``peak_mb`` and ``ratio`` entries.
    """
    opts = opts or BenchOptions()
    if opts['threads']:
        torch.set_num_threads(int(opts['threads']))
    models = {'base': build(base_cfg, opts), 'skip': build(skip_cfg, opts)}
    from .complexity import count_params
    params = {k: count_params(m) for k, m in models.items()}
    timing = time_models(models, opts, modes)
    saved = {k: saved_activation_bytes(m, opts) for k, m in models.items()} \
        if 'train' in modes else {}
    del models
    result = dict(
        options=dict(opts),
        models=dict(base=base_cfg, skip=skip_cfg),
        params=params,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        junction_kernel=_kernel_status(opts['device']),
        allocator=preloaded_allocator(),
        modes={})
    jobs = [(base_cfg if name == 'base' else skip_cfg, mode, opts)
            for mode in modes for name in ('base', 'skip')]
    # CUDA: one process at a time (they would share the device)
    mems = iter(
        peak_memories(
            jobs, parallel=1 if opts['device'].startswith('cuda') else 2
        ) if memory else [])
    for mode in modes:
        entry = {}
        for name in ('base', 'skip'):
            t = timing[mode][name]['median']
            tm = timing[mode][name]
            entry[name] = dict(
                time_s=t,
                images_per_s=opts['batch'] / t,
                times=tm['times'],
                cpu_time_s=tm['cpu_median'],
                cpu_times=tm['cpu_times'],
                user_s=tm['user_median'],
                sys_s=tm['sys_median'],
                minor_faults=tm['minor_faults_median'])
            if memory:
                mem = next(mems)
                entry[name]['peak_mb'] = mem['peak_bytes'] / 2**20
                entry[name]['memory_method'] = mem['method']
                # what the step must hold whatever the activations: weights
                # (+ gradients and SGD momentum when training), fp32
                copies = 3 if mode == 'train' else 1
                entry[name]['state_mb'] = \
                    copies * 4 * params[name] / 2**20
                entry[name]['activation_mb'] = \
                    entry[name]['peak_mb'] - entry[name]['state_mb']
        if mode == 'train':
            for name in ('base', 'skip'):
                entry[name]['saved_mb'] = saved[name] / 2**20
        entry['ratio'] = dict(
            time=entry['skip']['time_s'] / entry['base']['time_s'],
            cpu_time=entry['skip']['cpu_time_s'] /
            max(entry['base']['cpu_time_s'], 1e-12))
        if mode == 'train':
            entry['ratio']['saved_mem'] = \
                saved['skip'] / max(saved['base'], 1)
        if memory:
            entry['ratio']['peak_mem'] = \
                entry['skip']['peak_mb'] / entry['base']['peak_mb']
            entry['ratio']['activation_mem'] = \
                entry['skip']['activation_mb'] / \
                max(entry['base']['activation_mb'], 1e-9)
        result['modes'][mode] = entry
    return result


def _kernel_status(device: str) -> str:
    from mmgate.ops import kernel_status
    return kernel_status(device)


def preloaded_allocator() -> str:
    """The malloc this process runs with: a preloaded jemalloc / tcmalloc /
    mimalloc (``LD_PRELOAD``, seen in ``/proc/self/maps``), else glibc."""
    try:
        with open('/proc/self/maps') as f:
            maps = f.read()
    except OSError:
        return 'unknown'
    for name in ('jemalloc', 'tcmalloc', 'mimalloc'):
        if f'lib{name}' in maps:
            return name
    return 'glibc'


def format_results(res: Dict) -> str:
    """Markdown table of ``benchmark()``'s result."""
    o = res['options']
    lines = [
        f"batch {o['batch']}, {o['size']}x{o['size']}, device "
        f"{o['device']} ({res['threads']} threads), channels_last "
        f"{o['channels_last']}, AMP {o['amp']}, compile {o['compile']}, "
        f"torch {res['torch']}, norm_eval "
        f"{'model default' if o['norm_eval'] is None else o['norm_eval']}, "
        f"optimizer {o.get('optimizer', 'sgd')}, "
        f"malloc {res.get('allocator', 'unknown')}, fused junction kernel "
        f"{res.get('junction_kernel', 'unknown')}; median of "
        f"{o['repeats']} x {o['iters']} interleaved steps", '',
        f"params: base {res['params']['base'] / 1e6:.2f}M, Skip "
        f"{res['params']['skip'] / 1e6:.2f}M", '',
        '| measure | base | Skip | Skip / base |', '|---|---|---|---|'
    ]
    names = dict(train='training step', eval='eval forward')
    for mode, e in res['modes'].items():
        b, s = e['base'], e['skip']
        lines.append(f"| {names[mode]} time (ms) | {b['time_s'] * 1e3:.1f} | "
                     f"{s['time_s'] * 1e3:.1f} | {e['ratio']['time']:.3f}x |")
        if not o['device'].startswith('cuda'):
            lines.append(
                f"| {names[mode]} CPU time (ms) | "
                f"{b['cpu_time_s'] * 1e3:.1f} | {s['cpu_time_s'] * 1e3:.1f} "
                f"| {e['ratio']['cpu_time']:.3f}x |")
            if 'user_s' in b:
                lines.append(
                    f"| {names[mode]} user / system time (ms) | "
                    f"{b['user_s'] * 1e3:.0f} / {b['sys_s'] * 1e3:.0f} | "
                    f"{s['user_s'] * 1e3:.0f} / {s['sys_s'] * 1e3:.0f} | " +
                    (f"{s['sys_s'] / b['sys_s']:.2f}x system |"
                     if b['sys_s'] >= 1e-3 else '- |'))
                lines.append(
                    f"| {names[mode]} minor page faults per step | "
                    f"{b['minor_faults']:.0f} | {s['minor_faults']:.0f} | " +
                    (f"{s['minor_faults'] / b['minor_faults']:.2f}x |"
                     if b['minor_faults'] >= 1 else '- |'))
        lines.append(f"| {names[mode]} images/s | {b['images_per_s']:.2f} | "
                     f"{s['images_per_s']:.2f} | "
                     f"{s['images_per_s'] / b['images_per_s']:.3f}x |")
        if 'saved_mem' in e['ratio']:
            lines.append(
                f"| {names[mode]}: tensors saved for backward (MiB) | "
                f"{b['saved_mb']:.0f} | {s['saved_mb']:.0f} | "
                f"{e['ratio']['saved_mem']:.3f}x |")
        if 'peak_mem' in e['ratio']:
            lines.append(
                f"| {names[mode]} peak memory (MiB) | {b['peak_mb']:.0f} | "
                f"{s['peak_mb']:.0f} | {e['ratio']['peak_mem']:.3f}x |")
            lines.append(
                f"| {names[mode]} peak - weights"
                f"{', grads, momentum' if mode == 'train' else ''} (MiB) | "
                f"{b['activation_mb']:.0f} | {s['activation_mb']:.0f} | "
                f"{e['ratio']['activation_mem']:.3f}x |")
    return '\n'.join(lines)


def profile_step(model_cfg: dict,
                 opts: Optional[BenchOptions] = None,
                 mode: str = 'train',
                 row_limit: int = 15) -> Dict:
    """Where one step's time goes: ``torch.profiler`` ops by self time,
    and the share of the gates' forward (timed by hooks around every
    ``GateModule``).

    Returns:
        dict: ``table`` (profiler text), ``step_s``, ``gate_forward_s``.
    """
    from torch.profiler import ProfilerActivity, profile, record_function

    from mmgate.models.layers import GateModule
    opts = opts or BenchOptions()
    model = build(model_cfg, opts)
    step = make_step(model, mode, opts)
    for _ in range(opts['warmup']):
        step()
    spent = [0.]
    stack = []

    def pre(module, args):
        _sync(opts['device'])
        ctx = record_function('GateModule.forward')
        ctx.__enter__()
        stack.append((ctx, time.perf_counter()))

    def post(module, args, out):
        _sync(opts['device'])
        ctx, t0 = stack.pop()
        spent[0] += time.perf_counter() - t0
        ctx.__exit__(None, None, None)

    handles = []
    for m in model.modules():
        if isinstance(m, GateModule):
            handles += [
                m.register_forward_pre_hook(pre),
                m.register_forward_hook(post)
            ]
    activities = [ProfilerActivity.CPU]
    if opts['device'].startswith('cuda'):
        activities.append(ProfilerActivity.CUDA)
    _sync(opts['device'])
    t0 = time.perf_counter()
    with profile(activities=activities) as prof:
        step()
        _sync(opts['device'])
    total = time.perf_counter() - t0
    for h in handles:
        h.remove()
    sort = 'self_cuda_time_total' if len(activities) > 1 \
        else 'self_cpu_time_total'
    return dict(
        table=prof.key_averages().table(sort_by=sort, row_limit=row_limit),
        step_s=total,
        gate_forward_s=spent[0])


def _literal(node: ast.AST):
    """``ast.literal_eval`` that also reads ``dict(key=value)`` calls."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == 'dict' and not node.args:
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {
            _literal(k): _literal(v)
            for k, v in zip(node.keys, node.values)
        }
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_literal(e) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    return ast.literal_eval(node)


def parse_model_literal(text: str) -> dict:
    """``"dict(type='mmdet.ResNet', depth=50)"`` (or a ``{...}`` literal)
    -> the model dict; nothing is executed."""
    try:
        value = _literal(ast.parse(text.strip(), mode='eval').body)
    except (SyntaxError, ValueError) as e:
        raise argparse.ArgumentTypeError(
            f'not a literal model dict: {text!r} ({e})') from e
    if not isinstance(value, dict) or 'type' not in value:
        raise argparse.ArgumentTypeError(
            f'a model is a dict literal with a type, got {text!r}')
    return value


def _worker_main(argv: Sequence[str]) -> None:
    payload = json.loads(argv[0])
    res = _memory_worker(payload['model'], payload['mode'],
                         BenchOptions(**payload['opts']))
    print(json.dumps(res))


if __name__ == '__main__':
    if len(sys.argv) > 2 and sys.argv[1] == '--memory-worker':
        _worker_main(sys.argv[2:])
    else:
        sys.exit('use tools/analysis/benchmark_speed.py')
