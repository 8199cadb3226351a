# DenseResNet-34, N = 8: dense-resnet34-n6_1xb64-cos300e_in1k-160px.py with
# N = 8. 24.60M parameters; paper: 23.43 % top-1 error.
_base_ = './dense-resnet34-n6_1xb64-cos300e_in1k-160px.py'

model = dict(backbone=dict(num_connections=8))
