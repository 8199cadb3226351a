# Skip-ConvNeXt-T on ImageNet-1k, the authors' recipe
# (configs/_base_/in1k_convnext_recipe.py), the same as its baseline
# convnext-tiny_8xb128-cos300e_in1k.py; stochastic depth 0.1.
# Paper: 81.58 top-1 (ConvNeXt-T: 81.57).
_base_ = '../_base_/in1k_convnext_recipe.py'

model = dict(
    backbone=dict(type='mmgate.SkipConvNeXt', arch='tiny', drop_path_rate=0.1),
    head=dict(in_channels=768))
