"""The callback tests use the session's one MirroredStrategy (see the toolkit)."""

from tests.toolkit import mirrored_strategy  # noqa: F401
