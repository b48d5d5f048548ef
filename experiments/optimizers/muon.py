"""Muon (``optax.contrib.muon``) for neural fields, with the partition of parameters we use.

Muon replaces the momentum of a weight matrix by its nearest semi-orthogonal matrix (five
Newton-Schulz iterations), so every singular direction of the update moves by the same amount;
parameters that are not matrices go to a fallback AdamW. ``optax.contrib.muon`` (0.2.8) labels
*every* 2-D leaf ``'muon'`` by default, which for a coordinate field includes

* the first layer, a ``2 x width`` kernel (``(2 + 4L) x width`` with positional encoding): its
  rank is at most 2, orthogonalising it sets both singular values of the update to one, and
  optax's width scaling ``sqrt(max(1, fan_out / fan_in))`` then multiplies it by
  ``sqrt(width / 2)`` (about 11 at width 256);
* the head, a ``width x 3`` kernel.

Muon's authors keep embeddings and the output head on AdamW and orthogonalise the hidden
matrices only (Jordan, modded-nanogpt). We do the same by default (``partition='hidden'``): Muon
for the square hidden kernels (``fan_in == fan_out``: every hidden layer of our MLP fields, both
linear maps of a wavelet layer), the fallback AdamW for the first layer, the head and every bias.
``partition='all_2d'`` gives optax's default rule.

Learning rates are ours (McGinnis et al., arXiv 2512.14366, was not available to us as text, so
no number here is taken from it): see the registry.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import optax

__all__ = ["PARTITIONS", "muon", "muon_labels"]

Partition = Literal["hidden", "all_2d"]
PARTITIONS: tuple[str, ...] = ("hidden", "all_2d")


def muon_labels(params: Any, partition: Partition = "hidden") -> Any:
    """``'muon'`` or ``'adam'`` for every leaf of ``params``.

    Args:
      params: the field's parameters.
      partition: ``'hidden'``: square 2-D kernels only; ``'all_2d'``: every 2-D leaf (optax's
        default).

    Returns:
      A pytree of labels like ``params``.
    """
    if partition not in PARTITIONS:
        raise ValueError(f"partition={partition!r}; expected one of {PARTITIONS}")

    def label(x: Any) -> str:
        if x.ndim != 2:
            return "adam"
        if partition == "all_2d" or x.shape[0] == x.shape[1]:
            return "muon"
        return "adam"

    return jax.tree.map(label, params)


def muon(
    learning_rate: optax.ScalarOrSchedule,
    *,
    adam_learning_rate: optax.ScalarOrSchedule | None = 1e-3,
    partition: Partition = "hidden",
    beta: float = 0.95,
    ns_steps: int = 5,
    nesterov: bool = True,
    weight_decay: float = 0.0,
    **options: Any,
) -> optax.GradientTransformationExtraArgs:
    """``optax.contrib.muon`` with the field partition of :func:`muon_labels`.

    Args:
      learning_rate: Muon's learning rate (matrices), a float or a schedule.
      adam_learning_rate: the fallback AdamW's learning rate (first layer, head, biases);
        ``None`` uses ``learning_rate`` as optax does.
      partition: ``'hidden'`` (default) or ``'all_2d'``, see :func:`muon_labels`.
      beta, ns_steps, nesterov, weight_decay: as ``optax.contrib.muon`` (its defaults).
      **options: any other ``optax.contrib.muon`` argument.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` (extra arguments such as ``obj_fn`` are
      accepted and ignored).
    """
    if partition not in PARTITIONS:
        raise ValueError(f"partition={partition!r}; expected one of {PARTITIONS}")
    dims = None
    if partition == "hidden":
        def dims(params: Any) -> Any:
            labels = muon_labels(params, partition)
            return jax.tree.map(
                lambda lab: optax.contrib.MuonDimensionNumbers() if lab == "muon" else None,
                labels)
    tx = optax.contrib.muon(
        learning_rate, beta=beta, ns_steps=ns_steps, nesterov=nesterov,
        weight_decay=weight_decay, adam_learning_rate=adam_learning_rate,
        muon_weight_dimension_numbers=dims, **options,
    )
    return optax.with_extra_args_support(tx)
