# Dense-MobileNetV2-1.4: dense-mobilenetv2-1.0_1xb64-cos300e_in1k.py at width
# 1.4 (48-channel stem, 1792-channel last conv). Not in the paper's table.
_base_ = './dense-mobilenetv2-1.0_1xb64-cos300e_in1k.py'

model = dict(
    backbone=dict(widen_factor=1.4),
    head=dict(in_channels=1792))
