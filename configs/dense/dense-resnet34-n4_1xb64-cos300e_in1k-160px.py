# DenseResNet-34, N = 4: dense-resnet34-n6_1xb64-cos300e_in1k-160px.py with
# N = 4. 23.38M parameters; paper: 23.60 % top-1 error.
_base_ = './dense-resnet34-n6_1xb64-cos300e_in1k-160px.py'

model = dict(backbone=dict(num_connections=4))
