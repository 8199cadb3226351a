"""mmgate's MMEngine extensions (training-loop side)."""
from .amp import OPTIM_WRAPPERS, CPUAmpOptimWrapper, mmcv_ops_in_fp32

__all__ = ['OPTIM_WRAPPERS', 'CPUAmpOptimWrapper', 'mmcv_ops_in_fp32']
