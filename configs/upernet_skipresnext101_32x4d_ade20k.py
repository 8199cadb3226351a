# Kept for the published path: the config moved to configs/skipresnet/.
_base_ = ['./skipresnet/'
          'upernet_skipresnext101-32x4d_8xb2-160k_ade20k-512x512.py']
