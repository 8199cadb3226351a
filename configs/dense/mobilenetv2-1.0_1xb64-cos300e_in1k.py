# Baseline of the paper's table 1: MMPretrain's MobileNetV2-1.0 with the
# same recipe as dense-mobilenetv2-1.0_1xb64-cos300e_in1k.py.
# 3.50M parameters, 315M FLOPs; paper: 27.70 % top-1 error.
_base_ = './dense-mobilenetv2-1.0_1xb64-cos300e_in1k.py'

model = dict(
    backbone=dict(
        _delete_=True, type='MobileNetV2', widen_factor=1.0,
        out_indices=(7, )))
