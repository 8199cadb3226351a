# ResNet-50 with max-entropy pooling (Kobayashi, "Global Feature Guided Local
# Pooling", ICCV 2019; code github.com/tk1980/GFGP; the estimator
# Gaussian-based pooling builds on) in the author's placement (pool at every
# downsampling, pool_placement='post', see resnet50_gausspool_8xb32_in1k.py):
# y = sum x_i exp(l x_i) / sum exp(l x_j) per window, with
# l = sigmoid(MLP(GAP(x))) per sample and channel.
_base_ = './resnet50_gausspool_8xb32_in1k.py'

model = dict(backbone=dict(pool_cfg=dict(_delete_=True, type='MaxEntPool2d')))
