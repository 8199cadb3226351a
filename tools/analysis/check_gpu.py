"""mmgate's GPU self-check: one command, under 10 minutes on one H200.

    python tools/analysis/check_gpu.py
    python tools/analysis/check_gpu.py --only families kernel amp
    python tools/analysis/check_gpu.py --skip speed cascade --json out.json

Checks, one line each (``ok`` / ``FAIL`` / ``skip`` and the figures):

- ``families``: every backbone family (the cases of
  ``tools/misc/make_backbone_refs.py``) in float32 on CUDA (TF32 off)
  against a float64 CPU reference, outputs, input and parameter gradients,
  train and eval mode; it passes when the CUDA error is at most 10x the CPU
  float32 error against the same reference (or 1e-5): tiny batches in
  train-mode BatchNorm are ill-conditioned in any float32 code;
- ``kernel``: the fused junction's kernels (Triton on CUDA) against its
  eager path, on the families and on an 8x256x56x56 junction with three
  inbounds in float32 / float16 / bfloat16, contiguous and channels_last
  (errors, and the time of a forward + backward of each);
- ``amp``: training steps with MMEngine's ``AmpOptimWrapper`` (float16 and
  a GradScaler) on a fixed batch: finite losses, the loss going down;
- ``ddp``: SyncBN gates under 2-process NCCL DDP (2 GPUs): one step equals
  one step with plain BatchNorm on the whole batch;
- ``compile``: ``torch.compile`` (inductor) of a SkipResNet-50 against
  eager, outputs and gradients;
- ``speed``: the ``benchmark_speed.py --device cuda`` tables (SkipResNet-50
  vs ResNet-50, batch 8, 224 px, norm_eval True and False);
- ``cascade``: training iterations of the mission config (Cascade Mask
  R-CNN, SkipResNet-50, and its ResNet-50 base) at 2 images of 800x1216:
  losses, time per iteration, peak memory.

Without CUDA it prints one line and exits 0 (it is a tool, not a test; the
checks take a ``device`` and run on the CPU in tests/test_tools/
test_check_gpu.py, with the C kernel and MMGate's bfloat16 wrapper). Exit
status 1 when a check fails.
"""
import argparse
import contextlib
import copy
import importlib.util
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CHECKS = ('families', 'kernel', 'amp', 'ddp', 'compile', 'speed', 'cascade')
# what passes: the device's error within this factor of the CPU float32
# error against the float64 reference, or below the floor
ERROR_FACTOR, ERROR_FLOOR = 10., 1e-5


def _load_refs_tool():
    """``tools/misc/make_backbone_refs.py``: the backbone cases."""
    path = osp.join(ROOT, 'tools', 'misc', 'make_backbone_refs.py')
    spec = importlib.util.spec_from_file_location('mmgate_backbone_refs', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(check: str, status: str, detail: str) -> Dict[str, str]:
    return dict(check=check, status=status, detail=detail)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (in float64, on the CPU)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item() \
        if b.numel() else 0.


@contextlib.contextmanager
def _no_tf32():
    saved = (torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = saved


def _build_case(refs, name: str, seeded: bool = True) -> nn.Module:
    """A family's case; ``seeded``: random weights and statistics
    everywhere (``fill_state_dict``), else the initialisation."""
    from mmgate.registry import MODELS
    cfg = refs.CASES[name]
    model = MODELS.build(dict(cfg, type='mmgate.' + cfg['type']))
    if seeded:
        model.load_state_dict(refs.fill_state_dict(model), strict=True)
    return model


def _step(model: nn.Module,
          x: torch.Tensor,
          train: bool,
          seed: int = 2) -> List[torch.Tensor]:
    """Outputs, then (train) the input's and the parameters' gradients of
    ``sum_i <out_i, r_i>`` with seeded ``r_i``."""
    model.train(train)
    torch.manual_seed(seed)
    if not train:
        with torch.no_grad():
            return list(model(x))
    x = x.detach().clone().requires_grad_()
    outs = list(model(x))
    gen = torch.Generator().manual_seed(3)
    loss = sum(
        (o *
         torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o)).sum()
        for o in outs)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    return outs + [x.grad] + grads


def _compare(got, want) -> float:
    return max(_rel(a, b) for a, b in zip(got, want))


def check_families(device: str = 'cuda',
                   names: Optional[Sequence[str]] = None) -> List[Dict]:
    """Each family in float32 on ``device`` against float64 on the CPU,
    judged by the CPU's own float32 error."""
    refs = _load_refs_tool()
    rows = []
    for name in names or sorted(refs.CASES):
        model = _build_case(refs, name)
        x = refs.make_input(refs.CASES[name])
        ref = copy.deepcopy(model).double()
        cpu32 = copy.deepcopy(model)
        dev = copy.deepcopy(model).to(device)
        parts = []
        ok = True
        for train in (False, True):
            want = _step(ref, x.double(), train)
            if train and _compare(_step(ref, x.double(), train, seed=5),
                                  want) > 1e-12:
                parts.append('train: random (pool noise), not compared')
                continue
            base = _compare(_step(cpu32, x, train), want)
            with _no_tf32():
                err = _compare(_step(dev, x.to(device), train), want)
            ok &= err <= max(ERROR_FACTOR * base, ERROR_FLOOR)
            parts.append(f"{'train' if train else 'eval'} {err:.1e} "
                         f'(cpu fp32 {base:.1e})')
        rows.append(
            row(f'families/{name}', 'ok' if ok else 'FAIL',
                f'{device} vs cpu fp64: ' + ', '.join(parts)))
    return rows


def _time(fn: Callable, device: str, repeats: int = 10) -> float:
    fn()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _junction_case(shape, k, dtype, channels_last, device):
    gen = torch.Generator().manual_seed(k)
    n, c = shape[:2]
    maps = [torch.randn(*shape, generator=gen) for _ in range(k + 1)]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    maps = [
        m.to(device, dtype).contiguous(memory_format=fmt).requires_grad_()
        for m in maps
    ]
    params = [
        torch.randn(n, c, generator=gen),
        torch.randn(n, c, generator=gen),
        torch.randn(n, k, c, generator=gen).softmax(1)
    ]
    params = [p.to(device, dtype).requires_grad_() for p in params]
    return maps[0], params, maps[1:]


@contextlib.contextmanager
def _backends_used():
    """The set of junction backends (``'c'``, ``'triton'``, None for
    eager) that the gates' calls took while the context was open."""
    from mmgate.ops import junction
    used, choose = set(), junction._junction_backend

    def counted(*args, **kwargs):
        backend = choose(*args, **kwargs)
        used.add(backend)
        return backend

    junction._junction_backend = counted
    try:
        yield used
    finally:
        junction._junction_backend = choose


def check_kernel(device: str = 'cuda',
                 names: Optional[Sequence[str]] = None,
                 shape=(8, 256, 56, 56),
                 repeats: int = 10) -> List[Dict]:
    """The kernels against the eager path: the families (float32), then
    one junction per dtype and layout."""
    from mmgate.ops import fused_junction, kernel_status, use_kernel
    status = kernel_status(device)
    rows = [
        row(
            'kernel/status', 'ok' if status in ('loaded', )
            or status.startswith('triton') else 'FAIL', f'{device}: {status}')
    ]
    refs = _load_refs_tool()
    for name in names or sorted(refs.CASES):
        model = _build_case(refs, name).to(device)
        x = refs.make_input(refs.CASES[name]).to(device)
        with _no_tf32():
            with use_kernel(True), _backends_used() as used:
                got = _step(model, x, True) + _step(model, x, False)
            with use_kernel(False):
                want = _step(model, x, True) + _step(model, x, False)
        err = _compare(got, want)
        kernels = sorted(k for k in used if k)
        ok = err < 1e-4 and (kernels or not used)  # plain nets: no gates
        rows.append(
            row(
                f'kernel/{name}', 'ok' if ok else 'FAIL',
                f"kernel ({', '.join(kernels) or 'none'}) vs eager, "
                f'float32: {err:.1e}'))
    dtypes = (torch.float32, torch.float16, torch.bfloat16) \
        if device.startswith('cuda') else (torch.float32, )
    for dtype in dtypes:
        for cl in (False, True):
            c, (A, B, W), xs = _junction_case(shape, 3, dtype, cl, device)
            grad = torch.randn_like(c)
            tensors = (c, A, B, W, *xs)
            f64 = [t.detach().double().requires_grad_() for t in tensors]

            def run(kernel, ts=tensors):
                with use_kernel(kernel):
                    out = fused_junction(ts[0], *ts[1:4], ts[4:], relu=True)
                    return (out, *torch.autograd.grad(out, ts, grad))

            name = f"kernel/{str(dtype)[6:]}" + \
                ('/channels_last' if cl else '')
            with _backends_used() as used:
                got = run(True)
            if used == {None}:
                rows.append(
                    row(
                        name, 'skip', f'no kernel takes these maps '
                        f'on {device} (eager path)'))
                continue
            ref = run(False, f64)  # the eager arithmetic in float64
            err_k = _compare(got, ref)
            err_e = _compare(run(False), ref)
            t_k = _time(lambda: run(True), device, repeats)
            t_e = _time(lambda: run(False), device, repeats)
            tol = 1e-5 if dtype == torch.float32 else \
                max(2 * err_e, 1e-2)
            detail = (f'{tuple(shape)}, 3 inbounds, fwd+bwd vs float64: '
                      f"{'/'.join(sorted(used))} {err_k:.1e}, eager "
                      f'{err_e:.1e}; {t_k * 1e3:.2f} ms vs eager '
                      f'{t_e * 1e3:.2f} ms ({t_e / t_k:.2f}x)')
            rows.append(row(name, 'ok' if err_k <= tol else 'FAIL', detail))
    return rows


class _Classifier(nn.Module):
    """Backbone, global pool of its last output, linear head."""

    def __init__(self, backbone: nn.Module, classes: int = 10) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.LazyLinear(classes)

    def forward(self, x):
        return self.head(self.backbone(x)[-1].mean((2, 3)))


def _with_head(model: _Classifier) -> _Classifier:
    """The lazy head made, by an eval-mode forward (no statistics move)."""
    model.eval()
    with torch.no_grad():
        model(
            torch.zeros(1, 3, 32, 32, device=next(model.parameters()).device))
    return model.train()


def _amp_wrapper(model: nn.Module, device: str, lr: float):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if device.startswith('cuda'):
        from mmengine.optim import AmpOptimWrapper
        return AmpOptimWrapper(optimizer=optimizer, dtype='float16'), \
            'AmpOptimWrapper float16'
    from mmgate.engine import CPUAmpOptimWrapper
    return CPUAmpOptimWrapper(optimizer=optimizer), \
        'CPUAmpOptimWrapper bfloat16'


def check_amp(device: str = 'cuda',
              names: Optional[Sequence[str]] = None,
              steps: int = 8,
              lr: float = 0.02) -> List[Dict]:
    """``steps`` AMP training steps per family on one fixed batch."""
    refs = _load_refs_tool()
    rows = []
    for name in names or sorted(refs.CASES):
        torch.manual_seed(0)
        model = _Classifier(_build_case(refs, name, seeded=False))
        model = _with_head(model.to(device))
        x = refs.make_input(refs.CASES[name]).to(device)
        x = torch.cat([x, x.flip(3)])  # 4 images
        y = torch.tensor([1, 2, 3, 4], device=device)
        model.train()
        wrapper, kind = _amp_wrapper(model, device, lr)
        losses = []
        for _ in range(steps):
            with wrapper.optim_context(model):
                loss = F.cross_entropy(model(x).float(), y)
            wrapper.update_params(loss)
            losses.append(loss.item())
        finite = all(torch.isfinite(torch.tensor(losses)))
        ok = finite and losses[-1] < losses[0]
        scale = getattr(
            getattr(wrapper, 'loss_scaler', None), 'get_scale', lambda: None)()
        rows.append(
            row(
                f'amp/{name}', 'ok' if ok else 'FAIL',
                f'{kind}, {steps} steps: loss {losses[0]:.3f} -> '
                f'{losses[-1]:.3f}' +
                (f', loss scale {scale:g}' if scale else '')))
    return rows


def _ddp_worker(rank: int, world: int, port: int, out: dict) -> None:
    import torch.distributed as dist

    from mmgate.models import SkipResNet
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('nccl', rank=rank, world_size=world)
    torch.cuda.set_device(rank)
    torch.manual_seed(0)
    model = _with_head(
        _Classifier(
            SkipResNet(
                depth=18,
                base_channels=16,
                norm_cfg=dict(type='SyncBN'),
                norm_eval=False)).cuda())
    x = torch.randn(
        2 * world, 3, 64, 64,
        generator=torch.Generator().manual_seed(1)).cuda()
    y = torch.arange(2 * world).cuda() % 10
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[rank])
    optim = torch.optim.SGD(ddp.parameters(), lr=0.1)
    part = slice(2 * rank, 2 * rank + 2)
    F.cross_entropy(ddp(x[part]), y[part]).backward()
    optim.step()
    if rank == 0:
        out['state'] = {k: v.cpu() for k, v in model.state_dict().items()}
    dist.destroy_process_group()


def check_ddp() -> List[Dict]:
    """SyncBN (gates included) under 2-process NCCL DDP against plain BN
    on the whole batch in one process."""
    n = torch.cuda.device_count()
    if n < 2:
        return [row('ddp/syncbn', 'skip', f'needs 2 GPUs, found {n}')]
    import socket

    import torch.multiprocessing as mp
    from mmengine.model import revert_sync_batchnorm

    from mmgate.models import SkipResNet
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_ddp_worker, args=(2, port, out), nprocs=2, join=True)
    torch.manual_seed(0)
    model = _with_head(
        revert_sync_batchnorm(
            _Classifier(
                SkipResNet(
                    depth=18,
                    base_channels=16,
                    norm_cfg=dict(type='SyncBN'),
                    norm_eval=False))).cuda())
    x = torch.randn(
        4, 3, 64, 64, generator=torch.Generator().manual_seed(1)).cuda()
    y = torch.arange(4).cuda() % 10
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    # DDP averages the two ranks' mean losses: the mean over the batch
    F.cross_entropy(model(x), y).backward()
    optim.step()
    with _no_tf32():
        err = max(
            _rel(out['state'][k], v) for k, v in model.state_dict().items()
            if v.is_floating_point())
    return [
        row(
            'ddp/syncbn', 'ok' if err < 1e-3 else 'FAIL',
            f'2 x NCCL, SyncBN gates, one step vs BN on the whole batch: '
            f'weights and running statistics {err:.1e}')
    ]


def check_compile(device: str = 'cuda',
                  backend: str = 'inductor',
                  model_cfg: Optional[dict] = None,
                  size: int = 64) -> List[Dict]:
    """``torch.compile`` against eager: outputs and gradients."""
    from mmgate.registry import MODELS
    cfg = model_cfg or dict(
        type='mmgate.SkipResNet', depth=50, norm_eval=False)
    torch.manual_seed(0)
    model = MODELS.build(cfg).to(device)
    twin = copy.deepcopy(model)
    x = torch.randn(2, 3, size, size, device=device)
    torch._dynamo.reset()
    compiled = torch.compile(twin, backend=backend)
    with _no_tf32():
        want = _step(model, x, True) + _step(model, x, False)
        t0 = time.perf_counter()
        got = _step(compiled, x, True) + _step(compiled, x, False)
        first = time.perf_counter() - t0
    err = _compare(got, want)
    return [
        row(
            f'compile/{backend}', 'ok' if err < 1e-3 else 'FAIL',
            f"{cfg['type']}-{cfg.get('depth', '')} {size} px: compiled "
            f'vs eager {err:.1e} (train and eval, first calls '
            f'{first:.0f} s)')
    ]


def check_speed(device: str = 'cuda',
                preset: str = 'resnet50',
                memory: bool = True,
                **options) -> List[Dict]:
    """The ``benchmark_speed.py --device`` tables, both norm_eval."""
    from mmgate.analysis.speed import (PRESETS, BenchOptions, benchmark,
                                       format_results)
    base, skip = PRESETS[preset] if isinstance(preset, str) else preset
    rows = []
    for norm_eval in (True, False):
        opts = BenchOptions(device=device, norm_eval=norm_eval, **options)
        res = benchmark(base, skip, opts, memory=memory)
        ratios = ', '.join(f"{mode} {e['ratio']['time']:.3f}x"
                           for mode, e in res['modes'].items())
        rows.append(
            row(f'speed/norm_eval={norm_eval}', 'ok',
                f'Skip / base time: {ratios}\n' + format_results(res)))
    return rows


def _det_batch(h: int, w: int, n: int) -> dict:
    """``n`` images of ``h x w`` with three boxes and masks each."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(n):
        boxes = []
        masks = torch.zeros(3, h, w, dtype=torch.uint8)
        for j in range(3):
            x0, y0 = int(w * (0.1 + 0.25 * j)), int(h * (0.1 + 0.2 * j))
            x1, y1 = x0 + w // 5, y0 + h // 4
            boxes.append([x0, y0, x1, y1])
            masks[j, y0:y1, x0:x1] = 1
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            labels=torch.tensor([1, 5, 9]),
            masks=BitmapMasks(masks.numpy(), h, w))
        inputs.append(
            torch.randint(0, 255, (3, h, w), generator=gen, dtype=torch.uint8))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def check_cascade(device: str = 'cuda',
                  size=(800, 1216),
                  images: int = 2,
                  iters: int = 3,
                  models=('skipresnet50', 'resnet50'),
                  config_overrides: Optional[dict] = None) -> List[Dict]:
    """Training iterations of the mission config (random weights)."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    if device.startswith('cuda'):
        from mmcv.ops import roi_align
        try:
            roi_align(
                torch.rand(1, 1, 8, 8, device=device),
                torch.tensor([[0., 0., 0., 4., 4.]], device=device), (2, 2))
        except (RuntimeError, NotImplementedError) as e:
            return [
                row(
                    'cascade', 'FAIL', f'mmcv has no CUDA ops ({e}); '
                    'rebuild it: FORCE_CUDA=1 bash tools/setup_env.sh')
            ]
    from mmdet.registry import MODELS

    from mmgate.analysis.complexity import init_weights_quietly
    rows, times = [], {}
    for name in models:
        cfg = Config.fromfile(
            osp.join(ROOT, 'configs', f'cascade_rcnn_{name}_coco.py'))
        init_default_scope('mmdet')
        cfg.model.backbone.init_cfg = None  # random weights, offline
        for key, value in (config_overrides or {}).items():
            cfg.merge_from_dict({key: value})
        model = init_weights_quietly(MODELS.build(cfg.model))
        model.to(device).train()
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        data = _det_batch(*size, images)
        spent, losses = [], None
        if device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
        for _ in range(iters):
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            log = model.train_step(data, wrapper)
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            spent.append(time.perf_counter() - t0)
            losses = log
        times[name] = statistics.median(spent[1:] or spent)
        finite = all(
            torch.isfinite(torch.as_tensor(v)).all() for v in losses.values())
        mem = f', peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB' \
            if device.startswith('cuda') else ''
        rows.append(
            row(
                f'cascade/{name}', 'ok' if finite else 'FAIL',
                f'{images} images {size[0]}x{size[1]}: loss '
                f"{losses['loss'].item():.3f}, {times[name] * 1e3:.0f} ms per "
                f'iteration (median of {max(1, iters - 1)}){mem}'))
        del model, wrapper
    if len(times) == 2:
        a, b = times.values()
        rows.append(
            row('cascade/ratio', 'ok',
                f'{models[0]} / {models[1]} iteration time: '
                f'{a / b:.3f}x'))
    return rows


def environment(device: str) -> str:
    from mmgate.ops import kernel_status
    name = torch.cuda.get_device_name(device) \
        if device.startswith('cuda') else 'cpu'
    return (f'{name}, torch {torch.__version__} (CUDA {torch.version.cuda}),'
            f' fused junction: {kernel_status(device)}')


def run_checks(device: str,
               checks: Sequence[str],
               emit: Callable[[Dict], None] = lambda r: None) -> List[Dict]:
    """Run ``checks`` (names of :data:`CHECKS`); a check that raises is
    one FAIL row with the error."""
    table = dict(
        families=lambda: check_families(device),
        kernel=lambda: check_kernel(device),
        amp=lambda: check_amp(device),
        ddp=check_ddp,
        compile=lambda: check_compile(device),
        speed=lambda: check_speed(device),
        cascade=lambda: check_cascade(device))
    rows = []
    for name in checks:
        t0 = time.perf_counter()
        try:
            got = table[name]()
        except Exception as e:  # report and go on with the next check
            got = [row(name, 'FAIL', f'{type(e).__name__}: {e}')]
        for r in got:
            r['seconds'] = round(time.perf_counter() - t0, 1)
            emit(r)
        rows += got
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--only', nargs='+', choices=CHECKS, default=None)
    parser.add_argument('--skip', nargs='+', choices=CHECKS, default=())
    parser.add_argument('--json', default=None, help='write the rows')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print('check_gpu.py: no CUDA device here (torch '
              f'{torch.__version__}, CUDA build {torch.version.cuda}); '
              'nothing checked')
        return 0
    import mmgate.models  # noqa: F401
    checks = [c for c in (args.only or CHECKS) if c not in args.skip]
    print(environment(args.device), flush=True)
    t0 = time.perf_counter()

    def emit(r):
        print(f"[{r['status']}] {r['check']}: {r['detail']}", flush=True)

    rows = run_checks(args.device, checks, emit)
    failed = [r['check'] for r in rows if r['status'] == 'FAIL']
    print(
        f'{len(rows)} checks, {len(failed)} failed'
        f"{': ' + ', '.join(failed) if failed else ''}; "
        f'{time.perf_counter() - t0:.0f} s',
        flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
