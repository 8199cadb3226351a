"""Mean sigmoid gate and inbound softmax weights of every Gate Module.

    # a trained model on its validation split
    python tools/analysis/gate_analysis.py CONFIG --checkpoint CKPT --split val
    # image files or folders
    python tools/analysis/gate_analysis.py CONFIG --checkpoint CKPT \
        --images demo/
    # a backbone config (model = dict(type='mmgate.SkipResNet', ...)), noise
    python tools/analysis/gate_analysis.py CONFIG --random 16

Writes <out-dir>/gates.csv and <out-dir>/gates.png (blocks x inbound
distance); --out-dir defaults to work_dirs/gate_analysis, which git
ignores. See mmgate/analysis/gates.py.
"""
import argparse
import os.path as osp

from mmengine.config import Config, DictAction

from mmgate.analysis.gates import (dataset_batches, gate_statistics,
                                   image_batches, load_model,
                                   plot_gate_heatmap, random_batches,
                                   write_gate_csv)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model or backbone config')
    parser.add_argument('--checkpoint', help='weights (trusted file)')
    parser.add_argument(
        '--prefix',
        default=None,
        help="load only keys under this prefix, e.g. "
        "'backbone.' for a classifier checkpoint")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--images', nargs='+', help='image files or folders')
    src.add_argument(
        '--split',
        choices=['train', 'val', 'test'],
        help="run the config's dataloader of this split")
    src.add_argument(
        '--random',
        type=int,
        metavar='N',
        help='N random-noise images (a smoke run)')
    parser.add_argument(
        '--size',
        type=int,
        default=224,
        help='square input size for --images / --random')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument(
        '--limit', type=int, default=None, help='at most this many images')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out-dir', default='work_dirs/gate_analysis')
    parser.add_argument('--title', default=None)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, as tools/test.py')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model, backbone, cfg = load_model(cfg, args.checkpoint, args.device,
                                      args.prefix)
    if args.images:
        batches = image_batches(args.images, model, args.size, args.batch_size,
                                args.limit, args.device)
    elif args.split:
        batches = dataset_batches(cfg, model, args.split, args.limit,
                                  args.batch_size, args.device)
    else:
        batches = random_batches(
            args.random, args.size, args.batch_size, device=args.device)
    rows = gate_statistics(model, batches, forward=backbone)
    csv_path = osp.join(args.out_dir, 'gates.csv')
    png_path = osp.join(args.out_dir, 'gates.png')
    write_gate_csv(rows, csv_path)
    title = args.title or osp.splitext(osp.basename(args.config))[0]
    plot_gate_heatmap(rows, png_path, title=title)
    print(f"{len(rows)} gates over {rows[0]['images'] if rows else 0} "
          f'images; wrote {csv_path} and {png_path}')
    for r in rows:
        ws = '  '.join(f'd{d}={r[f"w_d{d}"]:.3f}' for d in r['distances'])
        print(f"{r['block']:>24}  gate_y={r['gate_y']:.3f} "
              f"(±{r['gate_y_std']:.3f} over channels)  {ws}")
    return rows


if __name__ == '__main__':
    main()
