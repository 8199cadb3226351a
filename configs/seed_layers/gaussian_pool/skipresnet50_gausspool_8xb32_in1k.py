# SkipResNet-50 (gated blocks; Takeda et al., code
# github.com/takedarts/skipresnet) with Gaussian-based pooling (Kobayashi,
# NeurIPS 2019) in the author's placement (pool at every downsampling,
# pool_placement='post'). In the first block of stages 2-4 the gate mixes the full-size
# residual and projected input, then the 2x2/2 Gaussian pool follows the
# gate + ReLU; the projected stage input that later gates read is
# average-pooled 2x2/2 to match. No published number.
_base_ = './resnet50_gausspool_8xb32_in1k.py'

model = dict(backbone=dict(type='mmgate.PriorPoolSkipResNet'))
