"""mmgate: Gate-Module backbones for the OpenMMLab model zoo."""
from . import compat  # noqa: F401  (must run before anything builds models)
from .version import __version__

__all__ = ['__version__']
