# ResNet-50 with Gaussian-based pooling, the cheaper placement
# (pool_placement='pre'): the strided stem conv is kept, its max-pool becomes
# a 3x3/2 Gaussian pool, and the input of stages 2-4 is pooled 2x2/2 before
# their first block, whose convs then all run at stride 1.
# 27.64M params / 3.88 GMACs, below ResNet-50's 4.11 (the first 1x1 conv
# of each strided stage runs on the pooled input); no published number for
# this placement.
_base_ = './resnet50_gausspool_8xb32_in1k.py'

model = dict(backbone=dict(pool_placement='pre'))
