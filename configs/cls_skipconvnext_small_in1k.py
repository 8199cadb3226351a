# Kept for the published path: the config moved to configs/skipconvnext/.
_base_ = ['./skipconvnext/skipconvnext-small_8xb128-cos300e_in1k.py']
