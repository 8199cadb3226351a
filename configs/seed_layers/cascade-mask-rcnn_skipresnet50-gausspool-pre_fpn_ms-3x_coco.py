# Cascade Mask R-CNN + FPN on COCO with a SkipResNet-50 whose stages 2-4
# downsample with Gaussian-based pooling (Kobayashi, NeurIPS 2019) instead of
# strided convs, the cheaper placement (the stage input is pooled 2x2/2, the
# blocks run at stride 1). Everything else is
# cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py: the stock MMDetection
# multi-scale 3x recipe, the authors' SkipResNet-50 ImageNet weights (the pools
# are new and start from their own init), frozen stem and stage 1,
# norm_eval=True.
#
# The stem keeps its max-pool (pool_stem=False): it is frozen, and a frozen
# randomly initialised pool would never learn. The pools' estimator
# normalises one pooled vector per image, which BN cannot do with 2 images
# per GPU; it uses a channel LayerNorm instead.
# No published number: an experiment, not a reproduction.
_base_ = '../skipresnet/cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py'

model = dict(
    backbone=dict(
        type='mmgate.PriorPoolSkipResNet',
        pool_cfg=dict(type='GaussianPool2d', norm_cfg=dict(type='LN2d')),
        pool_placement='pre',
        pool_stem=False))
