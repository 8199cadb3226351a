# ResNet-50 with Gaussian-prior ("disentangled") convolution (Kobayashi,
# Pattern Recognition Letters 169, 2023): every spatial conv (the
# 7x7 stem and all 3x3s) is conv(S, gaussian_blur_sigma(x)), an isotropic
# separable Gaussian of radius 3 with one learnt sigma per input channel
# (starting at 0.4 px, near a delta) composed with the free filter S. 1x1
# convs have no spatial structure and stay plain (pointwise=False).
# MMPretrain's own ResNet builds every conv from conv_cfg.
# Reported by the author (Kobayashi, Pattern Recognition Letters 169, 2023):
# ResNet-50 76.19 -> 77.42 top-1; not reproduced here. No public code exists.
#
# Only the bottleneck 3x3s instead: an MMDetection-style backbone with
# dcn=dict(type='mmgate.GaussianPriorConv2d'), stage_with_dcn=(True, ) * 4
# (mmgate.PriorPoolResNet with pool_cfg=None, mmdet's ResNet, SkipResNet).
_base_ = '../_base_/in1k_resnet_standard.py'

model = dict(
    backbone=dict(conv_cfg=dict(type='mmgate.GaussianPriorConv2d', radius=3)))
# sigma = softplus(rho) + sigma_min: no weight decay on rho
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.prior_rho': dict(decay_mult=0.)}))
