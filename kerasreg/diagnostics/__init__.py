"""Training-pipeline diagnostics: sanity checks, bias/variance, learning curves.

- `sanity_check` / `SanityReport`: initial loss, regularization,
  learning-rate bracket and tiny-subset overfit, on clones of the model; one
  typed `CheckResult` per check (`InitialLossResult`, ...; the sweep's
  `SweepRun`s and the fits' `FitAttempt`s are in `kerasreg.diagnostics.sanity`).
- `bias_variance` / `BiasVarianceResult`: bootstrap estimates of bias^2,
  variance and noise (squared error) or Domingos' 0-1 loss decomposition.
- `plot_history`: training vs validation curves with the gap shaded
  (needs matplotlib, imported only when plotting).
"""

from kerasreg.diagnostics.bias_variance import BiasVarianceResult, bias_variance
from kerasreg.diagnostics.plots import plot_history, smooth
from kerasreg.diagnostics.sanity import (
    CheckResult,
    InitialLossResult,
    LearningRateBracketResult,
    RegularizationResult,
    SanityReport,
    TinyOverfitResult,
    sanity_check,
)

__all__ = [
    "BiasVarianceResult",
    "CheckResult",
    "InitialLossResult",
    "LearningRateBracketResult",
    "RegularizationResult",
    "SanityReport",
    "TinyOverfitResult",
    "bias_variance",
    "plot_history",
    "sanity_check",
    "smooth",
]
