"""Pure functions behind kerasreg's layers.

Each layer is a thin wrapper whose `call` validates the mode and delegates here
(as timm pairs `drop_path` with `DropPath`). Functions take tensors and an
explicit `seed` (a `keras.random.SeedGenerator` or an integer) and use only
`keras.ops` / `keras.random`, so they run on every Keras backend.
"""
