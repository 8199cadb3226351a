# Kept for the published path: the config moved to configs/skipresnet/.
_base_ = ['./skipresnet/upernet_skipresnet101_8xb2-160k_ade20k-512x512.py']
