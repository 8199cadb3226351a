# ConvNeXt-S on ImageNet-1k, the authors' recipe
# (configs/_base_/in1k_convnext_recipe.py: 8 GPUs x 128 images, 300 epochs,
# AdamW lr 1e-3, Mixup / CutMix, RandAugment, label smoothing), stochastic
# depth 0.4. MMPretrain's ConvNeXt. Paper: 83.14 top-1 (Skip-ConvNeXt-S: 83.33,
# skipconvnext-small_8xb128-cos300e_in1k.py).
_base_ = '../_base_/in1k_convnext_recipe.py'

model = dict(
    backbone=dict(type='ConvNeXt', arch='small', drop_path_rate=0.4),
    head=dict(in_channels=768))
