# Skip-ConvNeXt-B on ImageNet-1k, the authors' recipe
# (configs/_base_/in1k_convnext_recipe.py), the same as its baseline
# convnext-base_8xb128-cos300e_in1k.py; stochastic depth 0.5.
# Paper: 83.37 top-1 (ConvNeXt-B: 83.55).
_base_ = '../_base_/in1k_convnext_recipe.py'

model = dict(
    backbone=dict(type='mmgate.SkipConvNeXt', arch='base', drop_path_rate=0.5),
    head=dict(in_channels=1024))
