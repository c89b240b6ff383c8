"""kerasreg callbacks: drop them into `model.fit(callbacks=[...])`."""
