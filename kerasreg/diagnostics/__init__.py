"""Training-pipeline diagnostics: sanity checks, bias/variance, learning curves.

- `sanity_check` / `SanityReport`: initial loss, regularization, tiny-subset
  overfit and learning-rate bracket, on clones of the model.
- `bias_variance` / `BiasVarianceResult`: bootstrap estimates of bias^2,
  variance and noise (squared error) or Domingos' 0-1 loss decomposition.
- `plot_history`: training vs validation curves with the gap shaded
  (needs matplotlib, imported only when plotting).
"""

from kerasreg.diagnostics.bias_variance import BiasVarianceResult, bias_variance
from kerasreg.diagnostics.plots import plot_history, smooth
from kerasreg.diagnostics.sanity import (
    CheckResult,
    FitAttempt,
    InitialLossResult,
    LearningRateBracketResult,
    RegularizationResult,
    SanityReport,
    SweepRun,
    TinyOverfitResult,
    sanity_check,
)

__all__ = [
    "BiasVarianceResult",
    "CheckResult",
    "FitAttempt",
    "InitialLossResult",
    "LearningRateBracketResult",
    "RegularizationResult",
    "SanityReport",
    "SweepRun",
    "TinyOverfitResult",
    "bias_variance",
    "plot_history",
    "sanity_check",
    "smooth",
]
