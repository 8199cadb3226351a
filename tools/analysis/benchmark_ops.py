"""Speed of mmcv's compiled RoIAlign and NMS (the C++ ops), as medians.

    # RoIAlign 256 ch, 50x50 feature, 512 RoIs -> 7x7; NMS on 5000 boxes:
    python tools/analysis/benchmark_ops.py
    python tools/analysis/benchmark_ops.py --repeats 50 --json ops.json
    python tools/analysis/benchmark_ops.py --rois 64 --boxes 500 --threads 2

What is timed, each ``repeats`` times after ``warmup`` untimed calls:

- ``roi_align forward``: ``mmcv.ops.roi_align`` (avg pooling, aligned,
  the given sampling ratio) under ``torch.no_grad()``;
- ``roi_align backward``: the backward of one such call (the forward runs
  untimed before each sample), i.e. ``ext_module.roi_align_backward`` plus
  the zeroed gradient buffer;
- ``nms``: ``mmcv.ops.nms`` on ``boxes`` random boxes (sorted by score in
  the op, as in a detector's RPN / test stage).

Inputs are random but seeded, so two runs (two builds of mmcv, two
allocators) time the same work. Medians of both the wall clock and this
process's CPU time are reported, with the fastest and slowest wall sample;
mmcv's CPU kernels are single-threaded loops, so ``--threads`` only moves
the tensor set-up around them. Use it to compare builds of mmcv's ``_ext``
(compiler flags) on one machine: run it before and after, same arguments.
"""
import argparse
import json
import statistics
import time
from typing import Callable, Dict, Optional

import torch

__all__ = ['make_inputs', 'time_op', 'benchmark', 'format_results']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--channels', type=int, default=256)
    parser.add_argument(
        '--feat-size',
        type=int,
        default=50,
        help='height and width of the feature map')
    parser.add_argument(
        '--batch',
        type=int,
        default=1,
        help='images in the feature map (RoIs spread over '
        'them)')
    parser.add_argument('--rois', type=int, default=512)
    parser.add_argument('--out-size', type=int, default=7)
    parser.add_argument(
        '--stride',
        type=int,
        default=16,
        help='feature stride: spatial_scale = 1 / stride')
    parser.add_argument(
        '--sampling-ratio',
        type=int,
        default=0,
        help='0: adaptive, as in mmdet\'s RoI heads')
    parser.add_argument('--boxes', type=int, default=5000)
    parser.add_argument('--iou-thr', type=float, default=0.7)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--ops',
        nargs='+',
        default=['roi_align_forward', 'roi_align_backward', 'nms'],
        choices=['roi_align_forward', 'roi_align_backward', 'nms'])
    parser.add_argument('--json', default=None, help='write the result')
    return parser.parse_args(argv)


def _random_boxes(n: int, img: float, gen: torch.Generator) -> torch.Tensor:
    """``n`` (x1, y1, x2, y2) boxes inside an ``img`` x ``img`` image, sides
    from 1/50 to 1/3 of it."""
    wh = img * (0.02 + 0.31 * torch.rand(n, 2, generator=gen))
    xy = (img - wh) * torch.rand(n, 2, generator=gen)
    return torch.cat([xy, xy + wh], dim=1)


def make_inputs(opts: argparse.Namespace) -> Dict[str, torch.Tensor]:
    """Seeded inputs: the feature map, RoIs (batch index first) in image
    coordinates, and boxes with scores for NMS."""
    gen = torch.Generator().manual_seed(opts.seed)
    img = float(opts.feat_size * opts.stride)
    feat = torch.randn(
        opts.batch,
        opts.channels,
        opts.feat_size,
        opts.feat_size,
        generator=gen)
    idx = torch.randint(0, opts.batch, (opts.rois, 1), generator=gen)
    rois = torch.cat([idx.float(), _random_boxes(opts.rois, img, gen)], 1)
    boxes = _random_boxes(opts.boxes, img, gen)
    scores = torch.rand(opts.boxes, generator=gen)
    return dict(feat=feat, rois=rois, boxes=boxes, scores=scores)


def time_op(fn: Callable,
            warmup: int,
            repeats: int,
            setup: Optional[Callable] = None) -> Dict:
    """Median wall / CPU seconds of ``fn(setup())`` (``setup`` untimed; no
    argument without it) over ``repeats`` samples after ``warmup`` calls."""
    wall, cpu = [], []
    for i in range(warmup + repeats):
        state = setup() if setup is not None else None
        args = () if setup is None else (state, )
        t0, c0 = time.perf_counter(), time.process_time()
        fn(*args)
        t1, c1 = time.perf_counter(), time.process_time()
        if i >= warmup:
            wall.append(t1 - t0)
            cpu.append(c1 - c0)
    return dict(
        time_s=statistics.median(wall),
        cpu_time_s=statistics.median(cpu),
        min_s=min(wall),
        max_s=max(wall),
        samples=len(wall))


def benchmark(opts: argparse.Namespace) -> Dict:
    """Time the ops that ``opts.ops`` names; return the result as a dict."""
    import mmcv
    from mmcv.ops import nms, roi_align
    if opts.threads:
        torch.set_num_threads(opts.threads)
    x = make_inputs(opts)
    scale = 1.0 / opts.stride
    ra_args = (opts.out_size, scale, opts.sampling_ratio, 'avg', True)
    res = dict(
        mmcv=mmcv.__version__,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        options=vars(opts).copy(),
        ops={})
    shape = (f'{opts.batch}x{opts.channels}x{opts.feat_size}x'
             f'{opts.feat_size} feature, {opts.rois} RoIs -> '
             f'{opts.out_size}x{opts.out_size}')

    if 'roi_align_forward' in opts.ops:

        def forward():
            with torch.no_grad():
                return roi_align(x['feat'], x['rois'], *ra_args)

        out = forward()
        assert out.shape == (opts.rois, opts.channels, opts.out_size,
                             opts.out_size) and torch.isfinite(out).all()
        res['ops']['roi_align forward'] = dict(
            inputs=shape, **time_op(forward, opts.warmup, opts.repeats))

    if 'roi_align_backward' in opts.ops:
        grad = torch.ones(opts.rois, opts.channels, opts.out_size,
                          opts.out_size)

        def setup():
            feat = x['feat'].detach().requires_grad_()
            return feat, roi_align(feat, x['rois'], *ra_args)

        def backward(state):
            state[1].backward(grad)

        feat, out = setup()
        backward((feat, out))
        # every output cell averages its samples: the gradients of one
        # RoI's channel add up to out_size ** 2
        assert torch.allclose(
            feat.grad.sum(), torch.tensor(float(grad.numel())), rtol=1e-3)
        res['ops']['roi_align backward'] = dict(
            inputs=shape,
            **time_op(backward, opts.warmup, opts.repeats, setup=setup))

    if 'nms' in opts.ops:

        def run_nms():
            return nms(x['boxes'], x['scores'], opts.iou_thr)

        dets, keep = run_nms()
        assert 0 < len(keep) <= opts.boxes and dets.shape == (len(keep), 5)
        res['ops']['nms'] = dict(
            inputs=f'{opts.boxes} boxes, IoU {opts.iou_thr} '
            f'({len(keep)} kept)',
            **time_op(run_nms, opts.warmup, opts.repeats))
    return res


def format_results(res: Dict) -> str:
    """Markdown table of ``benchmark()``'s result."""
    o = res['options']
    lines = [
        f"mmcv {res['mmcv']}, torch {res['torch']}, CPU ({res['threads']} "
        f"threads); median of {o['repeats']} calls after {o['warmup']} "
        'warm-up calls', '',
        '| op | inputs | median (ms) | median CPU (ms) | min - max (ms) |',
        '|---|---|---|---|---|'
    ]
    for name, e in res['ops'].items():
        lines.append(f"| {name} | {e['inputs']} | {e['time_s'] * 1e3:.2f} | "
                     f"{e['cpu_time_s'] * 1e3:.2f} | {e['min_s'] * 1e3:.2f} - "
                     f"{e['max_s'] * 1e3:.2f} |")
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    res = benchmark(args)
    print(format_results(res))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    main()
