"""Speed and peak memory of a gated backbone vs its base, as ratios.

    # SkipResNet-50 vs mmdet's ResNet-50, batch 8, 224 px, CPU:
    python tools/analysis/benchmark_speed.py
    python tools/analysis/benchmark_speed.py --device cuda --amp \
        --channels-last
    python tools/analysis/benchmark_speed.py --preset convnext_t --profile

Times are medians of interleaved repeats (base, Skip, Skip, base, ...);
peak memory is measured per model and mode in a fresh process. See
mmgate/analysis/speed.py for the method. By default both models run once
with ``norm_eval=True`` (MMDetection's default: frozen BN statistics) and
once with ``norm_eval=False`` (BN in training mode, as in ImageNet
training), one table each; the CPU time is split into user and system
time with the page faults per step (a system share that grows with the
faults means the machine spends the step mapping fresh memory).

    # the same under another malloc (the process re-executes itself with
    # LD_PRELOAD; memory workers inherit it):
    python tools/analysis/benchmark_speed.py \
        --allocator /usr/lib/x86_64-linux-gnu/libjemalloc.so.2
    # the gates' eager PyTorch path instead of the fused kernels (C on the
    # CPU, Triton on CUDA):
    python tools/analysis/benchmark_speed.py --eager-junction
    # PyTorch's fused SGD in the training step (both models):
    python tools/analysis/benchmark_speed.py --optimizer sgd-fused
"""
import argparse
import json
import os
import sys

import torch

from mmgate.analysis.speed import (OPTIMIZERS, PRESETS, BenchOptions,
                                   benchmark, format_results,
                                   parse_model_literal, profile_step)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--preset', default='resnet50', choices=PRESETS)
    parser.add_argument(
        '--base',
        type=parse_model_literal,
        default=None,
        help="base model dict, e.g. \"dict(type="
        "'mmdet.ResNet', depth=50)\" (overrides the preset)")
    parser.add_argument(
        '--skip',
        type=parse_model_literal,
        default=None,
        help='gated model dict (overrides the preset)')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--channels', type=int, default=3)
    parser.add_argument(
        '--device', default='cpu', help="'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='autocast (bf16 on CPU, fp16 on CUDA)')
    parser.add_argument(
        '--compile', action='store_true', help='torch.compile the models')
    parser.add_argument(
        '--norm-eval',
        choices=['both', 'default', 'true', 'false'],
        default='both',
        help="both models' norm_eval: 'both' runs true and "
        "false (default), 'default' keeps the models' own")
    parser.add_argument(
        '--optimizer',
        default='sgd',
        choices=OPTIMIZERS,
        help="the training step's SGD: PyTorch's default "
        "for the device, or its foreach / fused one")
    parser.add_argument(
        '--allocator',
        default=None,
        help='path of a malloc library to preload '
        '(libjemalloc.so.2, libtcmalloc_minimal.so.4)')
    parser.add_argument(
        '--eager-junction',
        action='store_true',
        help='run the gates on the eager PyTorch path, not '
        'the fused kernels')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--iters', type=int, default=2, help='steps per timing sample')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument(
        '--modes',
        nargs='+',
        default=['train', 'eval'],
        choices=['train', 'eval'])
    parser.add_argument('--no-memory', action='store_true')
    parser.add_argument(
        '--profile',
        action='store_true',
        help='also profile one Skip step (torch.profiler)')
    parser.add_argument('--json', default=None, help='write the result')
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        parser.error(f'--device {args.device}: {e}')
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: CUDA is not available here')
    return args


def preload(allocator: str, argv) -> None:
    """Re-execute this tool with ``allocator`` preloaded (once)."""
    if not os.path.isfile(allocator):
        sys.exit(f'benchmark_speed.py: error: --allocator {allocator}: no '
                 'such file')
    if allocator in os.environ.get('LD_PRELOAD', '').split(':'):
        return
    env = dict(os.environ, LD_PRELOAD=allocator)
    os.execve(sys.executable, [
        sys.executable,
        os.path.abspath(__file__), *(sys.argv[1:] if argv is None else argv)
    ], env)


def main(argv=None):
    args = parse_args(argv)
    if args.allocator:
        preload(args.allocator, argv)
    if args.eager_junction:
        # the flag must reach the memory workers too
        os.environ['MMGATE_FUSED_JUNCTION'] = '0'
    base, skip = PRESETS[args.preset]
    base, skip = args.base or base, args.skip or skip
    settings = dict(
        both=[True, False], default=[None], true=[True],
        false=[False])[args.norm_eval]
    print(f'base: {base}\nSkip: {skip}')
    results = []
    for norm_eval in settings:
        opts = BenchOptions(
            batch=args.batch,
            size=args.size,
            channels=args.channels,
            device=args.device,
            channels_last=args.channels_last,
            amp=args.amp,
            compile=args.compile,
            warmup=args.warmup,
            iters=args.iters,
            repeats=args.repeats,
            threads=args.threads,
            norm_eval=norm_eval,
            optimizer=args.optimizer)
        res = benchmark(
            base, skip, opts, modes=args.modes, memory=not args.no_memory)
        print()
        print(format_results(res))
        results.append(res)
    res = results[0] if len(results) == 1 else dict(runs=results)
    if args.profile:
        for mode in args.modes:
            prof = profile_step(skip, BenchOptions(**results[-1]['options']),
                                mode)
            print(f"\nSkip {mode} step profiled: {prof['step_s'] * 1e3:.1f} "
                  f"ms, of which GateModule forwards "
                  f"{prof['gate_forward_s'] * 1e3:.1f} ms "
                  f"({100 * prof['gate_forward_s'] / prof['step_s']:.1f}%)")
            print(prof['table'])
            res.setdefault('profile', {})[mode] = {
                k: v
                for k, v in prof.items() if k != 'table'
            }
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    main()
