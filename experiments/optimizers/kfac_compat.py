"""kfac-jax 0.0.8 on current JAX: the one helper that needs replacing, isolated here.

kfac-jax 0.0.8 (the newest release) evaluates jaxprs with the ``get_bind_params`` API of
JAX <= 0.7; on newer JAX every curvature update fails ("too many values to unpack").
:func:`kfac_jax_module` imports kfac-jax and, only when the installed JAX needs it, replaces
``tag_graph_matcher.eval_jaxpr_eqn`` with :func:`eval_jaxpr_eqn`, which handles both APIs.
Delete this module (and import ``kfac_jax`` directly in :mod:`experiments.optimizers.kfac`) once
kfac-jax supports current JAX; ``test_kfac_matches_direct_computation_and_reuses_inverses``
checks the result either way.
"""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["eval_jaxpr_eqn", "kfac_jax_module"]


def eval_jaxpr_eqn(eqn: Any, in_values: list[Any]) -> list[Any]:
    """kfac-jax's ``tag_graph_matcher.eval_jaxpr_eqn`` for both ``get_bind_params`` APIs.

    JAX <= 0.7 returned ``(subfuns, params)``; newer JAX returns the params alone (with any
    ``subfuns`` inside). kfac-jax 0.0.8 unpacks a pair, which fails on JAX 0.10 ("too many values
    to unpack") whenever it evaluates a traced jaxpr, i.e. on every curvature update.
    """
    from jax.extend import source_info_util

    bind_params = eqn.primitive.get_bind_params(eqn.params)
    subfuns: tuple[Any, ...] = ()
    if isinstance(bind_params, tuple):
        subfuns, bind_params = bind_params
    with source_info_util.user_context(eqn.source_info.traceback):
        output = eqn.primitive.bind(*subfuns, *in_values, **bind_params)
    return list(output) if eqn.primitive.multiple_results else [output]


def _needs_bind_params_patch() -> bool:
    """Whether ``get_bind_params`` returns the params alone (kfac-jax 0.0.8 expects a pair)."""
    probe = jax.make_jaxpr(lambda x: x + 1.0)(1.0).jaxpr.eqns[0]
    return not isinstance(probe.primitive.get_bind_params(probe.params), tuple)


def kfac_jax_module():
    try:
        import kfac_jax
        from kfac_jax._src import tag_graph_matcher
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the 'kfac' baseline needs kfac-jax: pip install 'jaxprecond[experiments]' "
            "(or pip install kfac-jax)"
        ) from err
    if tag_graph_matcher.eval_jaxpr_eqn is not eval_jaxpr_eqn and _needs_bind_params_patch():
        tag_graph_matcher.eval_jaxpr_eqn = eval_jaxpr_eqn  # looked up at call time by tracer
    return kfac_jax
