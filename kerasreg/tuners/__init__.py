"""kerasreg tuners: coarse-to-fine search on keras-tuner.

Needs the optional dependency keras-tuner (`pip install kerasreg[tuner]`);
`import kerasreg` alone never imports it.
"""

try:
    import keras_tuner  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "kerasreg.tuners needs keras-tuner, an optional dependency. "
        "Install it with `pip install kerasreg[tuner]` "
        "(or `pip install keras-tuner tensorboard`)."
    ) from error

from kerasreg.tuners.coarse_to_fine import (
    CoarseToFineOracle,
    CoarseToFineSearch,
    trial_epochs,
    trial_stage,
)
from kerasreg.tuners.hypermodel import RegularizationHyperModel
from kerasreg.tuners.reporting import plot_search, search_table

__all__ = [
    "CoarseToFineOracle",
    "CoarseToFineSearch",
    "RegularizationHyperModel",
    "plot_search",
    "search_table",
    "trial_epochs",
    "trial_stage",
]
