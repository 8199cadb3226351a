# Kept for the published path: the config moved to configs/skipresnet/.
_base_ = ['./skipresnet/resnext101-32x4d_8xb128-cos300e_in1k.py']
