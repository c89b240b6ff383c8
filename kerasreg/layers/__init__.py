"""kerasreg layers: stochastic regularization, bottlenecks and augmentation."""
