# SkipResNeXt-50-32x4d on ImageNet-1k, the authors' recipe
# (configs/_base_/in1k_resnet_recipe.py: 8 GPUs x 128 images, 300 epochs, SGD
# nesterov lr 0.4, cosine, CutMix), the same as its baseline
# resnext50-32x4d_8xb128-cos300e_in1k.py. BNs train (norm_eval=False, unlike
# the detection default); the last BN of each residual branch starts at zero
# (zero_init_residual, the default). Paper: 80.67 top-1 (ResNeXt-50-32x4d:
# 79.73).
_base_ = '../_base_/in1k_resnet_recipe.py'

model = dict(
    backbone=dict(
        type='mmgate.SkipResNeXt',
        depth=50,
        groups=32,
        width_per_group=4,
        num_stages=4,
        out_indices=(3, ),
        norm_eval=False,
        style='pytorch'),
    head=dict(in_channels=2048))
