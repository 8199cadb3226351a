# DenseResNet-50, N = 4, ImageNet-1k with the paper's ResNet recipe
# (_base_/in1k_paper_recipe.py). Not in the paper (no published weights):
# this is the pre-training of the detection / segmentation configs
# (cascade-mask-rcnn_dense-resnet50-n4_fpn_ms-3x_coco.py,
# upernet_dense-resnet50-n4_4xb4-160k_ade20k-512x512.py), so it uses their
# pad_mode='masked' (same parameters as 'paper'; see build_junction in
# mmgate/models/backbones/blocks.py and padding_mask in
# mmgate/models/layers/router.py).
_base_ = './_base_/in1k_paper_recipe.py'

model = dict(
    backbone=dict(
        type='mmgate.DenseResNet',
        depth=50,
        num_connections=4,
        pad_mode='masked',
        out_indices=(3, ),
        norm_eval=False,
        zero_init_residual=False),
    head=dict(in_channels=2048))
