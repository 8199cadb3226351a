# ResNet-50 (3x3 stem) on CIFAR-10 with FLGC, G = 4 learnt groups in every
# bottleneck 3x3, no duplication (plain FLGC, Wang et al., CVPR 2019).
_base_ = './_base_/resnet50-cifar_flgc_8xb16_cifar10.py'

model = dict(backbone=dict(dcn=dict(num_groups=4, duplicate=False)))
