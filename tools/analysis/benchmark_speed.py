"""Speed and peak memory of a gated backbone vs its base, as ratios.

    # SkipResNet-50 vs mmdet's ResNet-50, batch 8, 224 px, CPU:
    python tools/analysis/benchmark_speed.py
    python tools/analysis/benchmark_speed.py --device cuda --amp \
        --channels-last
    python tools/analysis/benchmark_speed.py --preset convnext_t --profile

Times are medians of interleaved repeats (base, Skip, Skip, base, ...);
peak memory is measured per model and mode in a fresh process. See
mmgate/analysis/speed.py for the method.
"""
import argparse
import json

import mmgate.compat
from mmgate.analysis.speed import (PRESETS, BenchOptions, benchmark,
                                   format_results, parse_model_literal,
                                   profile_step)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--preset', default='resnet50', choices=PRESETS)
    parser.add_argument('--base', type=parse_model_literal, default=None,
                        help="base model dict, e.g. \"dict(type="
                        "'mmdet.ResNet', depth=50)\" (overrides the preset)")
    parser.add_argument('--skip', type=parse_model_literal, default=None,
                        help='gated model dict (overrides the preset)')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--channels', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--amp', action='store_true',
                        help='autocast (bf16 on CPU, fp16 on CUDA)')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the models')
    parser.add_argument('--norm-eval', choices=['default', 'true', 'false'],
                        default='default',
                        help='override both models\' norm_eval')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--iters', type=int, default=2,
                        help='steps per timing sample')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--modes', nargs='+', default=['train', 'eval'],
                        choices=['train', 'eval'])
    parser.add_argument('--no-memory', action='store_true')
    parser.add_argument('--profile', action='store_true',
                        help='also profile one Skip step (torch.profiler)')
    parser.add_argument('--json', default=None, help='write the result')
    return parser.parse_args(argv)


def main(argv=None):
    # a model's init_cfg may load a checkpoint: mmgate's compat fixes first
    mmgate.compat.apply()
    args = parse_args(argv)
    base, skip = PRESETS[args.preset]
    base, skip = args.base or base, args.skip or skip
    opts = BenchOptions(
        batch=args.batch, size=args.size, channels=args.channels,
        device=args.device, channels_last=args.channels_last, amp=args.amp,
        compile=args.compile, warmup=args.warmup, iters=args.iters,
        repeats=args.repeats, threads=args.threads,
        norm_eval=None if args.norm_eval == 'default' else
        args.norm_eval == 'true')
    res = benchmark(base, skip, opts, modes=args.modes,
                    memory=not args.no_memory)
    print(f'base: {base}\nSkip: {skip}\n')
    print(format_results(res))
    if args.profile:
        for mode in args.modes:
            prof = profile_step(skip, opts, mode)
            print(f"\nSkip {mode} step profiled: {prof['step_s'] * 1e3:.1f} "
                  f"ms, of which GateModule forwards "
                  f"{prof['gate_forward_s'] * 1e3:.1f} ms "
                  f"({100 * prof['gate_forward_s'] / prof['step_s']:.1f}%)")
            print(prof['table'])
            res.setdefault('profile', {})[mode] = {
                k: v for k, v in prof.items() if k != 'table'}
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    main()
