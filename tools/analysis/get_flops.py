"""Parameters and FLOPs of a model config or a named classification variant.

    python tools/analysis/get_flops.py CONFIG.py --shape 800 1333
    python tools/analysis/get_flops.py SkipResNet-50 --shape 224
    python tools/analysis/get_flops.py --table          # paper table at 224

FLOPs are MMEngine's FlopAnalyzer counts. --convention mmengine (default):
multiply-adds of convs / linears plus norms and adaptive pooling, element-wise
ops not counted (what MMDetection's get_flops prints); --convention
reference: also element-wise ops, pooling and biases, by the rules of the
authors' counter behind the papers' tables. The paper's parameters and FLOPs
come from the metafiles (model-index.yml, Metadata.Parameters / FLOPs).
See mmgate/analysis/complexity.py.
"""
import argparse
import os.path as osp

from mmgate.analysis.complexity import (CONVENTIONS, SPEC_TABLE_MODELS,
                                        build_model, classification_table,
                                        classifier_cfg, complexity,
                                        config_complexity, format_table,
                                        parse_shape)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'model',
        nargs='?',
        help='config file, or a variant name such as '
        'SkipResNet-50 / ConvNeXt-T')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[224],
        help='H, H W or C H W (default 224)')
    parser.add_argument('--backbone-only', action='store_true')
    parser.add_argument(
        '--no-flops', action='store_true', help='parameters only')
    parser.add_argument(
        '--table',
        nargs='*',
        metavar='NAME',
        default=None,
        help='params / FLOPs of classification variants '
        'next to the paper (default: ' + ', '.join(SPEC_TABLE_MODELS) + ')')
    parser.add_argument(
        '--convention', choices=CONVENTIONS, default='mmengine')
    parser.add_argument(
        '--by-module',
        action='store_true',
        help='FLOPs of each top-level child')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.table is not None:
        shape = parse_shape(args.shape)
        if shape[1] != shape[2]:
            raise SystemExit('--table wants a square input')
        rows = classification_table(
            args.table or SPEC_TABLE_MODELS,
            shape[1],
            conventions=() if args.no_flops else CONVENTIONS)
        print(format_table(rows))
        return rows
    if not args.model:
        raise SystemExit('give a config / variant name, or --table')
    shape = None if args.no_flops else parse_shape(args.shape)
    if osp.isfile(args.model):
        res = config_complexity(args.model, shape, args.backbone_only,
                                args.convention)
    else:
        model = build_model(classifier_cfg(args.model), 'mmpretrain')
        res = complexity(model, shape, args.backbone_only, args.convention)
    print(f'model: {args.model}' +
          (' (backbone only)' if args.backbone_only else ''))
    print(f"params: {res['params'] / 1e6:.3f} M")
    if res['flops'] is not None:
        print(f"FLOPs at {'x'.join(map(str, shape))}: "
              f"{res['flops'] / 1e9:.4f} G ({args.convention} convention)")
        if res['skipped_ops']:
            print('not counted: ' +
                  ', '.join(f'{k} x{v}'
                            for k, v in sorted(res['skipped_ops'].items())))
        if args.by_module:
            for name, f in res['by_module'].items():
                print(f'  {name}: {f / 1e9:.4f} G')
    return res


if __name__ == '__main__':
    main()
