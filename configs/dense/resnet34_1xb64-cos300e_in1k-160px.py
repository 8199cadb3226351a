# Baseline of the paper's table 1: MMPretrain's ResNet-34 with the same
# recipe as the DenseResNet-34 configs (_base_/in1k_paper_recipe.py).
# 21.80M parameters, 3.68 GFLOPs; paper: 24.99 % top-1 error.
_base_ = './_base_/in1k_paper_recipe.py'

model = dict(
    backbone=dict(type='ResNet', depth=34, out_indices=(3, )),
    head=dict(in_channels=512))
