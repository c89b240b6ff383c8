"""The AlexNet / ResNet multi-crop evaluation views of test-time augmentation."""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops


def _resize_short_side(images, short_side: int):
    h, w = images.shape[1], images.shape[2]
    if min(h, w) == short_side:
        return images
    factor = short_side / min(h, w)
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    return ops.cast(
        ops.image.resize(images, size, interpolation="bilinear", antialias=True),
        images.dtype,
    )


def tta_views(
    images,
    crop_size: tuple[int, int],
    crops: str = "ten",
    flips: bool = True,
    scales: Sequence[int] | None = None,
    padding: int = 0,
):
    """Every evaluation view of a batch, stacked view-major.

    For each scale (the image resized so its short side is that many pixels;
    `None`: as is), after reflect-padding by `padding` pixels, the views are
    the centre crop (`"center"`) or the four corners and the centre
    (`"five"`), each followed by its horizontal mirror when `flips` (always
    for `"ten"`).

    Returns:
        Tensor `(V, N, crop_h, crop_w, C)`, `V = scales * crops * (1 + flips)`.
    """
    ch, cw = int(crop_size[0]), int(crop_size[1])
    mirror = flips or crops == "ten"
    views = []
    for scale in scales or (None,):
        x = images if scale is None else _resize_short_side(images, int(scale))
        if padding:
            p = int(padding)
            x = ops.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
        h, w = x.shape[1], x.shape[2]
        if h < ch or w < cw:
            raise ValueError(
                f"The views are {ch}x{cw} crops but the (resized, padded) image "
                f"is only {h}x{w}. Use larger `scales` or `padding`."
            )
        top, left = (h - ch) // 2, (w - cw) // 2
        corners = [(top, left)]
        if crops in ("five", "ten"):
            corners += [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw)]
        for y0, x0 in corners:
            view = x[:, y0 : y0 + ch, x0 : x0 + cw, :]
            views.append(view)
            if mirror:
                views.append(ops.flip(view, axis=2))
    return ops.stack(views, axis=0)
