# ResNet-50 with max-entropy pooling (Kobayashi, ICCV 2019, "Global feature
# guided local pooling"; the estimator Gaussian-based pooling builds on) in the
# seed's placement: y = sum x_i exp(l x_i) / sum exp(l x_j) per window, with
# l = sigmoid(MLP(GAP(x))) per sample and channel.
_base_ = './resnet50_gausspool_8xb32_in1k.py'

model = dict(backbone=dict(pool_cfg=dict(_delete_=True, type='MaxEntPool2d')))
