# ResNet-50 on ImageNet-1k, the authors' recipe
# (configs/_base_/in1k_resnet_recipe.py: 8 GPUs x 128 images, 300 epochs, SGD
# nesterov lr 0.4, cosine, CutMix). MMPretrain's ResNet. Paper: 79.01 top-1
# (SkipResNet-50: 80.41, skipresnet50_8xb128-cos300e_in1k.py).
_base_ = '../_base_/in1k_resnet_recipe.py'

model = dict(
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(3, ),
                  style='pytorch'),
    head=dict(in_channels=2048))
