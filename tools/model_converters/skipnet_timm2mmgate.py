#!/usr/bin/env python
"""Convert the authors' released timm checkpoints to mmgate's layout.

    python tools/model_converters/skipnet_timm2mmgate.py \
        skipresnet50-c24b1e79.pth checkpoints/skipresnet50_mmgate.pth

Works for SkipResNet, SkipResNeXt and SkipConvNeXt files
(github.com/takedarts/skipresnet-pretrained). The output is an MMPretrain
classifier checkpoint (``backbone.*``, ``head.fc.*``) usable as
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`` in
any mmdet / mmseg config, or as ``load_from`` of an mmpretrain
``ImageClassifier``. Converting is optional: mmgate's backbones also accept
the original file directly and convert it on load.
"""
import argparse
import os.path as osp
import sys

from mmgate.fileio import (CheckpointError, read_local_checkpoint,
                           save_torch_atomic)
from mmgate.models.utils import convert_timm_checkpoint, detect_timm_layout


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='timm checkpoint (.pth state dict)')
    parser.add_argument('dst', help='where to write the mmgate checkpoint')
    parser.add_argument(
        '--force', action='store_true', help='overwrite dst if it exists')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if osp.exists(args.dst) and not args.force:
        sys.exit(f'error: {args.dst} exists (use --force to overwrite)')
    try:
        # the published files are plain state dicts: weights_only=True, and
        # an empty, truncated or non-PyTorch file is one line naming it
        state = read_local_checkpoint(args.src, map_location='cpu')
    except CheckpointError as err:
        sys.exit(f'error: {err}')
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    if not isinstance(state, dict):
        sys.exit(f'error: {args.src} holds a {type(state).__name__}, not a '
                 'state dict')
    layout = detect_timm_layout(state)
    if layout is None:
        sys.exit(f'error: {args.src} is not a timm SkipResNet/SkipConvNeXt '
                 f'checkpoint (first keys: {list(state)[:5]})')
    try:
        converted = convert_timm_checkpoint(state, layout)
    except ValueError as err:
        sys.exit(f'error: {args.src}: {err}')
    # written next to dst, then renamed: never a half-written file
    save_torch_atomic(
        dict(
            state_dict=converted,
            meta=dict(converted_from=osp.basename(args.src), layout=layout)),
        args.dst)
    print(f'{args.src} ({layout}, {len(converted)} tensors) -> {args.dst}')


if __name__ == '__main__':
    main()
