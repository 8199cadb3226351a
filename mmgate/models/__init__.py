"""Models of mmgate; importing this registers every class in ``mmgate``."""
from .backbones import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
