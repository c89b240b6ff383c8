"""Walking a model's layers: one recursive walker for the whole package.

Private plumbing (`mc_predict`, `transfer`, `add_weight_regularization`,
`SWA`'s BatchNormalization re-estimation): the names may change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

__all__ = ["is_leaf", "sublayers", "walk_layers"]


def sublayers(layer) -> list:
    """The layers directly inside `layer`: its public `.layers` list, if any.

    Models (functional, sequential, subclassed) and `keras.layers.Pipeline`
    have one; a plain layer has none.
    """
    return list(getattr(layer, "layers", None) or ())


def is_leaf(layer) -> bool:
    """Whether `layer` holds no other layers (no public `.layers`)."""
    return not sublayers(layer)


def walk_layers(root, *, expand: Callable[[object], bool] | None = None) -> Iterator:
    """Yields `root` and every layer nested in it, depth first, each once.

    The order is that of the `.layers` lists (a container before its
    layers), so a model's layers come in order with nested models expanded
    in place. A layer reached twice (shared by two nested models) is yielded
    the first time only.

    Args:
        root: A model or layer.
        expand: Whether to walk into a container; `None` walks into all.
            Defaults to `None`.
    """
    seen = set()

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        yield layer
        if layer is root or expand is None or expand(layer):
            for sub in sublayers(layer):
                yield from visit(sub)

    yield from visit(root)
