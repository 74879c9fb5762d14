"""Weight-sharing supernets (torch). Importing this package registers the built-in supernets
(``nb201``, ``mbv3``, ``transformer``) and sampling rules (``uniform``, ``sandwich``, ``complexity``)."""
from raynas.supernet import mbv3, nb201, transformer  # noqa: F401  (register "mbv3", "nb201", "transformer")
from raynas.supernet.base import SUPERNETS, Supernet, build_supernet
from raynas.supernet.sampling import SAMPLERS, SamplingRule, Step, build_sampler, kd_loss

__all__ = ["SAMPLERS", "SUPERNETS", "SamplingRule", "Step", "Supernet", "build_sampler", "build_supernet",
           "kd_loss"]
