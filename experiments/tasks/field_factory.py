"""The field a task trains, built from its command-line settings.

:func:`make_field` is the coordinate MLP of the image and occupancy tasks (and the companion
paper's patch fields); :func:`make_radiance_field` the NeRF task's radiance field. Both take the
``--activation``, ``--depth`` and ``--width`` of a run (``None``: the field's default) and turn
a bad value into a one-line :class:`~experiments.harness.errors.UsageError` naming the flags.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from experiments.harness.errors import UsageError


def _build(maker: Callable[..., Any], activation: str, depth: int | None, width: int | None,
           overrides: dict[str, Any]) -> Any:
    """``maker(**overrides)`` with ``depth`` and ``width`` set where given; a ``ValueError``
    becomes a :class:`UsageError` naming the flags."""
    if depth is not None:
        overrides["depth"] = depth
    if width is not None:
        overrides["width"] = width
    try:
        return maker(**overrides)
    except ValueError as exc:
        raise UsageError(
            f"--activation {activation} --depth {depth} --width {width}: {exc}"
        ) from None


def make_field(activation: str, depth: int | None = None, width: int | None = None,
               out_features: int = 3, **extra: Any) -> Any:
    """``fields.make`` with the image head (or ``out_features``, and ``extra`` overrides such as
    a task's Gaussian ``sigma``); bad names or sizes raise :class:`UsageError`."""
    import fields

    names = tuple(fields.FIELD_NAMES)
    if activation not in names:
        raise UsageError(f"--activation {activation!r}: expected one of {', '.join(names)}")
    return _build(lambda **kw: fields.make(activation, **kw), activation, depth, width,
                  {"out_features": out_features, **extra})


def make_radiance_field(activation: str, depth: int | None = None,
                        width: int | None = None) -> Any:
    """``fields.make_radiance`` for the activation; bad sizes raise :class:`UsageError`.

    A field shallower than the paper's 8 layers moves its skip connection after the middle
    trunk layer (none below 3 layers), where the default skip would not exist.
    """
    import fields

    overrides: dict[str, Any] = {"activation": activation}
    if depth is not None and depth < 8:
        overrides["skips"] = (depth // 2,) if depth >= 3 else ()
    return _build(fields.make_radiance, activation, depth, width, overrides)
