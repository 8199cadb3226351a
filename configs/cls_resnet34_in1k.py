# Kept for the published path: the config moved to configs/skipresnet/.
_base_ = ['./skipresnet/resnet34_8xb128-cos300e_in1k.py']
