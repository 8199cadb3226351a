# SkipResNet-50 on ImageNet-1k, the authors' recipe
# (configs/_base_/in1k_resnet_recipe.py: 8 GPUs x 128 images, 300 epochs, SGD
# nesterov lr 0.4, cosine, CutMix), the same as its baseline
# resnet50_8xb128-cos300e_in1k.py. BNs train (norm_eval=False, unlike the
# detection default); the last BN of each residual branch starts at zero
# (zero_init_residual, the default). Paper: 80.41 top-1 (ResNet-50: 79.01).
_base_ = '../_base_/in1k_resnet_recipe.py'

model = dict(
    backbone=dict(
        type='mmgate.SkipResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        norm_eval=False,
        style='pytorch'),
    head=dict(in_channels=2048))
