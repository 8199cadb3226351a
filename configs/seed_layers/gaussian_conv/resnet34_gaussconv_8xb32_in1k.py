# ResNet-34 with Gaussian-prior convolution in every spatial conv
# (see resnet50_gaussconv_8xb32_in1k.py).
# Reported by the author (Kobayashi, Pattern Recognition Letters 169, 2023):
# 74.10 -> 74.64 top-1; not reproduced here. MMPretrain's plain ResNet-34 with this
# recipe: 73.62 (mmpretrain::resnet/resnet34_8xb32_in1k.py).
_base_ = './resnet50_gaussconv_8xb32_in1k.py'

model = dict(
    backbone=dict(depth=34),
    head=dict(in_channels=512))
