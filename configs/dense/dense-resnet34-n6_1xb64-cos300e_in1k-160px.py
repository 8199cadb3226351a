# DenseResNet-34, N = 6, ImageNet-1k with the paper's recipe
# (_base_/in1k_paper_recipe.py: 1 GPU x 64, 160px crops, lr 0.025, cosine).
# pad_mode='paper': the 2020 code's plain softmax over all N inbounds
# (padded channels of older, narrower inbounds take weight too); use
# 'masked' to keep them out (build_junction in mmgate/models/backbones/blocks.py,
# padding_mask / InboundRouter in mmgate/models/layers/router.py).
# 24.00M parameters, 3.70 GFLOPs (paper). Paper: 23.34 % top-1 error
# (ResNet-34 with the same recipe: 24.99 %,
# resnet34_1xb64-cos300e_in1k-160px.py).
_base_ = './_base_/in1k_paper_recipe.py'

model = dict(
    backbone=dict(
        type='mmgate.DenseResNet',
        depth=34,
        num_connections=6,
        pad_mode='paper',
        out_indices=(3, ),
        norm_eval=False,
        zero_init_residual=False),
    head=dict(in_channels=512))
