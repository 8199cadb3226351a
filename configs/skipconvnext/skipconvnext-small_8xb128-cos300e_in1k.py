# Skip-ConvNeXt-S on ImageNet-1k, the authors' recipe
# (configs/_base_/in1k_convnext_recipe.py), the same as its baseline
# convnext-small_8xb128-cos300e_in1k.py; stochastic depth 0.4. Paper: 83.33
# top-1 (ConvNeXt-S: 83.14).
_base_ = '../_base_/in1k_convnext_recipe.py'

model = dict(
    backbone=dict(
        type='mmgate.SkipConvNeXt', arch='small', drop_path_rate=0.4),
    head=dict(in_channels=768))
