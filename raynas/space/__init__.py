"""Search spaces (pure Python, no torch). Importing this package registers the built-in spaces."""
from raynas.space import (
    mbv3,  # noqa: F401  (registers "mbv3")
    nb201,  # noqa: F401  (registers "nb201")
    transformer,  # noqa: F401  (registers "transformer")
)
from raynas.space.base import SPACES, Arch, SearchSpace, build_space

__all__ = ["SPACES", "Arch", "SearchSpace", "build_space"]
