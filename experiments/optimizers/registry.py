"""Optimizers selectable by name, with the paper's reference learning rates.

The registry maps a name to an :class:`OptimizerSpec`: a builder with the uniform signature
``builder(learning_rate, *, seed, axis_name, **options) -> optax.GradientTransformationExtraArgs``,
the default learning rate per activation, and whether the optimizer needs the full batch.

Adding an optimizer is one call::

    register(OptimizerSpec(
        "shampoo", lazy_builder("jaxprecond", "shampoo"),
        default_lr={"*": 0.1, "sine": 0.01}, description="Shampoo (v1 supplement, Alg. 4)"))

Reference learning rates (DESIGN.md "What the reference PyTorch code actually does" and the v1
supplement, Sec. 7.5-7.6):

========================  ==========================================  ============================
optimizer                 default lr                                   source
========================  ==========================================  ============================
adam                      1e-4; 5e-5 sine; 1e-3 relu, relu_pe          reference (relu: ours)
sgd                       1.0                                           ours (NeRF SGD starts at 2)
esgd                      0.15; 0.1 relu, relu_pe                      reference
esgd_reference            0.15; 0.1 relu, relu_pe                      reference
esgd_max                  0.15; 0.1 relu, relu_pe                      ours (same as ESGD)
adahessian_e              0.15                                          reference
adahessian_j              0.15                                          reference
adahessian_jacobi         0.15                                          ours (same as AdaHessian)
preconditioned_sgd        0.15; 0.1 relu, relu_pe                      ours (ESGD's, no momentum)
preconditioned_sgd_e      0.15; 0.1 relu, relu_pe                      ours (ESGD's, no momentum)
========================  ==========================================  ============================

"ours" marks values the paper does not give; they were chosen to match the nearest reference
setting, and ``--lr`` overrides any of them. ``sinc`` uses the Gaussian values.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

import optax

from experiments.harness.errors import UsageError

Builder = Callable[..., optax.GradientTransformationExtraArgs]


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """One registered optimizer.

    Attributes:
      name: the name used by ``--optimizer``.
      build: ``build(learning_rate, *, seed, axis_name, **options)``; ``learning_rate`` may be a
        float or an optax schedule.
      default_lr: activation -> learning rate; the key ``"*"`` is the fallback.
      full_batch_only: the optimizer needs the same batch every step (e.g. L-BFGS); the harness
        then uses the full data set as the batch unless ``--batch-size`` says otherwise, and
        rejects a smaller batch.
      uses_curvature: the update evaluates Hessian-vector products through ``obj_fn``.
      description: one line for ``--help`` and reports.
      task_options: ``task_options(task) -> dict`` of builder options the optimizer needs from
        the task (e.g. K-FAC's registered loss and an example batch); ``None`` if none.
      make_step: replaces ``jaxprecond.make_train_step`` (same signature and contract) for
        optimizers whose update needs more than ``obj_fn`` (e.g. K-FAC takes the batch).
    """

    name: str
    build: Builder
    default_lr: Mapping[str, float]
    full_batch_only: bool = False
    uses_curvature: bool = False
    description: str = ""
    task_options: Callable[[Any], dict[str, Any]] | None = None
    make_step: Callable[..., Any] | None = None

    def lr_for(self, activation: str) -> float:
        """The default learning rate for a field with this activation."""
        if activation in self.default_lr:
            return float(self.default_lr[activation])
        if "*" in self.default_lr:
            return float(self.default_lr["*"])
        raise KeyError(f"optimizer {self.name!r} has no default learning rate for {activation!r}")


REGISTRY: dict[str, OptimizerSpec] = {}


def register(spec: OptimizerSpec, *, overwrite: bool = False) -> OptimizerSpec:
    """Add ``spec`` to the registry; refuses to replace a name unless ``overwrite``."""
    if spec.name in REGISTRY and not overwrite:
        raise ValueError(f"optimizer {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    """Registered optimizer names, in registration order."""
    return list(REGISTRY)


def get(name: str) -> OptimizerSpec:
    """The spec registered as ``name``; :class:`UsageError` listing the names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"--optimizer {name!r}: expected one of {', '.join(names())}"
        ) from None


def lazy_builder(module: str, attr: str, **fixed: Any) -> Builder:
    """A builder that imports ``module.attr`` on first use and calls it with ``fixed`` options.

    The registry can then name optimizers whose modules are heavy or optional; an import error
    surfaces when that optimizer is chosen, not when the registry is imported.
    """

    def build(learning_rate: Any, *, seed: int = 0, axis_name: str | None = None, **options: Any):
        fn = getattr(importlib.import_module(module), attr)
        kwargs = {**fixed, **options}
        params = inspect.signature(fn).parameters
        if "seed" in params:
            kwargs.setdefault("seed", seed)
        if "axis_name" in params:
            kwargs.setdefault("axis_name", axis_name)
        return fn(learning_rate, **kwargs)

    build.__name__ = f"build_{attr}"
    build.__doc__ = f"Builds {module}.{attr} (with {fixed})."
    build.target = (module, attr)  # type: ignore[attr-defined]
    build.fixed = dict(fixed)  # type: ignore[attr-defined]
    return build


def lazy_function(module: str, attr: str) -> Callable[..., Any]:
    """``module.attr``, imported on first call (for :class:`OptimizerSpec` hooks)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    call.__name__ = attr
    call.target = (module, attr)  # type: ignore[attr-defined]
    return call


def make_step_fn(name: str) -> Callable[..., Any]:
    """The train-step builder for optimizer ``name`` (``jaxprecond.make_train_step`` unless the
    spec names another)."""
    spec = get(name)
    if spec.make_step is not None:
        return spec.make_step
    from jaxprecond import make_train_step

    return make_train_step


def task_options(name: str, task: Any) -> dict[str, Any]:
    """Builder options optimizer ``name`` derives from ``task`` (empty for most)."""
    spec = get(name)
    return dict(spec.task_options(task)) if spec.task_options is not None else {}


def _optax_builder(fn: Callable[..., optax.GradientTransformation]) -> Builder:
    """Wrap a first-order optax alias so it accepts (and ignores) ``obj_fn``, seed, axis_name."""

    def build(learning_rate: Any, *, seed: int = 0, axis_name: str | None = None, **options: Any):
        del seed, axis_name  # deterministic; gradients are already averaged by the train step
        return optax.with_extra_args_support(fn(learning_rate, **options))

    build.__name__ = f"build_{fn.__name__}"
    build.target = ("optax", fn.__name__)  # type: ignore[attr-defined]
    return build


def build(
    name: str,
    learning_rate: float | optax.Schedule,
    *,
    seed: int = 0,
    axis_name: str | None = None,
    **options: Any,
) -> optax.GradientTransformationExtraArgs:
    """Build the optimizer registered as ``name``.

    Options its builder does not take, or whose values it rejects (``TypeError``/``ValueError``
    while building), raise :class:`UsageError` naming them. Command-line text is converted by
    :func:`check_options` (the harness does so before any work, see :func:`validate_options`).
    """
    spec = get(name)
    try:
        return spec.build(learning_rate, seed=seed, axis_name=axis_name, **options)
    except (TypeError, ValueError) as exc:
        error = _build_error(name, options, exc)
        if error is None:
            raise
        raise error from None


def _build_error(
    name: str, options: Mapping[str, Any], exc: Exception, keys: Mapping[str, str] | None = None
) -> UsageError | None:
    """The :class:`UsageError` for ``exc`` raised while building ``name`` with ``options``, or
    ``None`` when it is not about the options (re-raise it)."""
    if not options:
        return None
    keys = keys or {}
    given = ", ".join(f"{keys.get(k, k)}={_show(v)}" for k, v in options.items())
    if isinstance(exc, TypeError):
        if "argument" in str(exc) or "keyword" in str(exc):
            return UsageError(f"--opt-arg {given}: not accepted by optimizer {name!r} ({exc})")
        return None
    return UsageError(f"--opt-arg {given}: rejected by optimizer {name!r} ({exc})")


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


# --- --opt-arg: options checked against the builder's signature, text converted to its types ---
#
# A parameter's annotation is read as a set of alternatives: ``None``, ``bool``, ``int``,
# ``float``, ``str``, a ``Literal``'s choices, ``_ANY`` (anything: the text is read as a JSON
# literal, as before) and ``_OTHER`` (a type the command line cannot spell, e.g. a schedule or an
# array: ignored beside the others; alone, the default's type decides, else anything goes).

_ANY = "any"
_OTHER = "other"
_NONE_WORDS = ("none", "null")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")
# Builder arguments the harness sets itself (registry ``build`` passes them by keyword).
_HARNESS_ARGS = {"seed": "--seed", "axis_name": "--parallel (the harness sets it)"}


@dataclasses.dataclass(frozen=True)
class _Option:
    """One keyword the builder of an optimizer takes."""

    name: str
    alternatives: tuple[Any, ...]
    annotation: str  # as written, for messages ("" when there is none)
    default: Any = inspect.Parameter.empty


def builder_function(name: str) -> Callable[..., Any]:
    """The function behind optimizer ``name``'s builder: ``module.attr`` of a
    :func:`lazy_builder` (imported now) or of an optax alias, else the builder itself."""
    build_fn = get(name).build
    target = getattr(build_fn, "target", None)
    if target is not None:
        module, attr = target
        fn = getattr(importlib.import_module(module), attr, None)
        if callable(fn):
            return fn
    return build_fn


def _options_of(name: str) -> tuple[dict[str, _Option], str | None, bool]:
    """``(options, learning-rate parameter, takes **kwargs)`` of optimizer ``name``'s builder."""
    fn = builder_function(name)
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # no signature (a builtin): take anything
        return {}, None, True
    try:
        hints = typing.get_type_hints(inspect.unwrap(fn))
    except Exception:  # an annotation that does not resolve: read each one's text below
        hints = {}
    options: dict[str, _Option] = {}
    lr_param, open_kwargs = None, False
    for i, p in enumerate(params):
        if p.kind is p.VAR_KEYWORD:
            open_kwargs = True
            continue
        if i == 0 and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            lr_param = p.name  # the builder passes the learning rate positionally
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL) or p.name in _HARNESS_ARGS:
            continue
        if p.name in hints:
            alternatives = _alternatives(hints[p.name])
        elif isinstance(p.annotation, str):
            alternatives = _alternatives_of_text(p.annotation)
        elif p.annotation is not p.empty:
            alternatives = _alternatives(p.annotation)
        else:
            alternatives = ()
        if not any(a is not _OTHER for a in alternatives):  # nothing usable: the default's type
            default_type = type(p.default)
            alternatives = (default_type,) if default_type in (bool, int, float, str) else (_ANY,)
        annotation = p.annotation if isinstance(p.annotation, str) else _hint_text(p.annotation)
        options[p.name] = _Option(p.name, tuple(alternatives), annotation, p.default)
    return options, lr_param, open_kwargs


def _alternatives(hint: Any) -> tuple[Any, ...]:
    """The alternatives of a resolved type hint."""
    if hint is Any or hint is object:
        return (_ANY,)
    if hint is None or hint is type(None):
        return (None,)
    origin = typing.get_origin(hint)
    if origin is Literal:
        return (tuple(typing.get_args(hint)),)
    if origin is Union or origin is types.UnionType:
        return tuple(a for arg in typing.get_args(hint) for a in _alternatives(arg))
    if origin is typing.Annotated:
        return _alternatives(typing.get_args(hint)[0])
    if hint in (bool, int, float, str):
        return (hint,)
    return (_OTHER,)


_NAMED = {"None": None, "bool": bool, "int": int, "float": float, "str": str, "Any": _ANY,
          "object": _ANY}


def _alternatives_of_text(text: str) -> tuple[Any, ...]:
    """The alternatives of an annotation that did not resolve, read from its text
    (``from __future__ import annotations``): ``float | None``, ``Literal['a', 'b']``, ..."""
    try:
        return _alternatives_of_node(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError):
        return (_OTHER,)


def _alternatives_of_node(node: ast.expr) -> tuple[Any, ...]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _alternatives_of_node(node.left) + _alternatives_of_node(node.right)
    if isinstance(node, ast.Constant):
        if node.value is None:
            return (None,)
        return _alternatives_of_text(node.value) if isinstance(node.value, str) else (_OTHER,)
    if isinstance(node, ast.Name):
        return (_NAMED.get(node.id, _OTHER),)
    if isinstance(node, ast.Subscript):
        head = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(
            node.value, "id", "")
        items = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head == "Literal":
            return (tuple(ast.literal_eval(item) for item in items),)
        if head in ("Optional", "Union"):
            return tuple(a for item in items for a in _alternatives_of_node(item)) + (
                (None,) if head == "Optional" else ())
        if head == "Annotated":
            return _alternatives_of_node(items[0])
    return (_OTHER,)


def _hint_text(hint: Any) -> str:
    """A resolved annotation, short: ``float | None``, ``Literal['a', 'b']``, ``Array | int``."""
    if hint is inspect.Parameter.empty:
        return ""
    if hint is None or hint is type(None):
        return "None"
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        parts = [_hint_text(arg) for arg in typing.get_args(hint)]
        return " | ".join(dict.fromkeys(parts))
    if origin is Literal:
        return f"Literal[{', '.join(repr(c) for c in typing.get_args(hint))}]"
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


def _expected(alternatives: tuple[Any, ...]) -> str:
    """What a value of these alternatives looks like, in words."""
    words: list[str] = []
    choices = [c for a in alternatives if isinstance(a, tuple) for c in a]
    if choices:
        words.append("one of " + ", ".join(repr(c) for c in choices))
    if int in alternatives and float not in alternatives:
        words.append("an integer")
    if float in alternatives:
        words.append("a number")
    if bool in alternatives and not {int, float} & set(alternatives):
        words.append("true or false")
    if str in alternatives:
        words.append("a string")
    if None in alternatives:
        words.append("None")
    if len(words) < 2:
        return words[0] if words else "a value"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _literal(text: str) -> Any:
    """Text read as a JSON literal when it is one (numbers, true, null, lists), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class _NoMatch(Exception):
    pass


def _convert(text: str, alternatives: tuple[Any, ...]) -> Any:
    """``text`` as a value of one of ``alternatives``; :class:`_NoMatch` if it is none."""
    s = text.strip()
    if _ANY in alternatives:
        if None in alternatives and s.lower() in _NONE_WORDS:
            return None
        return _literal(s)
    for alt in alternatives:  # a Literal's choices first: "none" may be one of them
        if isinstance(alt, tuple):
            for choice in alt:
                if s == (choice if isinstance(choice, str) else json.dumps(choice)):
                    return choice
    if None in alternatives and s.lower() in _NONE_WORDS:
        return None
    if int in alternatives:
        try:
            return int(s)
        except ValueError:
            pass
    if float in alternatives:
        try:
            return float(s)
        except ValueError:
            pass
    if bool in alternatives:
        if s.lower() in _TRUE_WORDS:
            return True
        if s.lower() in _FALSE_WORDS:
            return False
    if str in alternatives:
        return s
    if all(a is _OTHER for a in alternatives):
        return _literal(s)
    raise _NoMatch


def check_options(
    name: str, options: Mapping[str, Any], *, keys: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Check ``options`` (``--opt-arg`` text) against optimizer ``name``'s builder.

    Every key must be a keyword of the function behind the builder (e.g. ``jaxprecond.esgd``;
    any key if it takes ``**options``, whose values are then read as JSON literals), other than
    the learning rate, ``seed`` and ``axis_name`` which the harness sets. Text values are
    converted to the parameter's annotated type (``float``, ``int``, ``bool``, ``str``,
    ``Literal[...]`` choices, ``X | None`` with ``none``; the default's type where the annotation
    says nothing usable); values that are not text (a config built in code) pass unchanged.

    Args:
      name: a registered optimizer.
      options: option name -> value.
      keys: option name -> how the command line spelled it (e.g. ``esgd.clip``), for messages.

    Returns:
      The options with converted values.

    Raises:
      UsageError: an unknown key or a value that does not convert, naming it and what is
        expected.
    """
    if not options:
        return {}
    keys = keys or {}
    known, lr_param, open_kwargs = _options_of(name)
    out: dict[str, Any] = {}
    for key, value in options.items():
        spelled = keys.get(key, key)
        if key == lr_param or key == "learning_rate":
            raise UsageError(f"--opt-arg {spelled}={_show(value)}: the learning rate is set by "
                             "--lr (and --schedule), not by --opt-arg")
        if key in _HARNESS_ARGS:
            raise UsageError(f"--opt-arg {spelled}={_show(value)}: {key} is set by "
                             f"{_HARNESS_ARGS[key]}, not by --opt-arg")
        option = known.get(key)
        if option is None:
            if not open_kwargs:
                accepted = ", ".join(known) if known else "none (it takes no options)"
                raise UsageError(f"--opt-arg {spelled}={_show(value)}: optimizer {name!r} has "
                                 f"no option {key!r}; expected one of {accepted}")
            out[key] = _literal(value.strip()) if isinstance(value, str) else value
            continue
        if not isinstance(value, str):
            out[key] = value
            continue
        try:
            out[key] = _convert(value, option.alternatives)
        except _NoMatch:
            if option.annotation:
                about = f"parameter {key}: {option.annotation}"
            else:
                about = f"parameter {key}, default {option.default!r}"
            raise UsageError(f"--opt-arg {spelled}={value!r}: expected "
                             f"{_expected(option.alternatives)} (optimizer {name!r}, {about})"
                             ) from None
    return out


def validate_options(
    name: str,
    options: Mapping[str, Any],
    *,
    learning_rate: float = 1.0,
    keys: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """:func:`check_options`, then build the optimizer once with the converted options, so
    that the transform's own checks (e.g. ``clip=-1``) fail now, before any data or compilation.

    The trial build is skipped for optimizers whose options come partly from the task
    (``task_options``, e.g. K-FAC's loss and example batch); their options are checked when the
    run builds them.

    Returns:
      The converted options.

    Raises:
      UsageError: as :func:`check_options`, or the builder rejected the options.
    """
    converted = check_options(name, options, keys=keys)
    spec = get(name)
    if converted and spec.task_options is None:
        try:
            spec.build(learning_rate, seed=0, axis_name=None, **converted)
        except (TypeError, ValueError) as exc:
            error = _build_error(name, options, exc, keys)  # as typed on the command line
            if error is None:
                raise
            raise error from None
    return converted


def learning_rate_schedule(
    learning_rate: float,
    schedule: str,
    *,
    steps_per_epoch: int,
    decay_epochs: float,
    final_lr: float | None = None,
) -> float | optax.Schedule:
    """The learning rate, or a schedule over steps.

    ``constant``: ``learning_rate``. ``cosine``: cosine decay from ``learning_rate`` to
    ``final_lr`` over ``decay_epochs``. ``exponential``: geometric decay from ``learning_rate`` to
    ``final_lr`` over ``decay_epochs`` (as the paper's NeRF runs: "from 1 decayed to 0.01"), held
    after. ``final_lr`` defaults to ``learning_rate / 100``.
    """
    if schedule == "constant":
        return learning_rate
    final = learning_rate / 100 if final_lr is None else final_lr
    steps = max(1, round(decay_epochs * steps_per_epoch))
    if schedule == "cosine":
        return optax.cosine_decay_schedule(learning_rate, steps, alpha=final / learning_rate)
    if schedule == "exponential":
        return optax.exponential_decay(
            learning_rate,
            transition_steps=steps,
            decay_rate=final / learning_rate,
            end_value=final if final < learning_rate else None,
        )
    raise UsageError(f"--schedule {schedule!r}: expected constant, cosine or exponential")


_RELU = {"relu": 0.1, "relu_pe": 0.1}

register(OptimizerSpec(
    "adam", _optax_builder(optax.adam),
    default_lr={"*": 1e-4, "sine": 5e-5, "relu": 1e-3, "relu_pe": 1e-3},
    description="Adam (optax), the paper's baseline",
))
register(OptimizerSpec(
    "sgd", _optax_builder(optax.sgd), default_lr={"*": 1.0},
    description="plain SGD (optax)",
))
register(OptimizerSpec(
    "esgd", lazy_builder("jaxprecond", "esgd"), default_lr={"*": 0.15, **_RELU},
    uses_curvature=True, description="ESGD: equilibration preconditioner refreshed every 100 steps",
))
register(OptimizerSpec(
    "esgd_reference", lazy_builder("jaxprecond", "esgd", bias_correction="reference", clip=None),
    default_lr={"*": 0.15, **_RELU}, uses_curvature=True,
    description="ESGD as the papers' reference code runs it: bias correction 1 - b2^t over all "
                "steps, no clip",
))
register(OptimizerSpec(
    "esgd_max", lazy_builder("jaxprecond", "esgd_max"), default_lr={"*": 0.15, **_RELU},
    uses_curvature=True, description="ESGD-max: running max of (Hv)^2, Nesterov momentum",
))
register(OptimizerSpec(
    "adahessian_e", lazy_builder("jaxprecond", "adahessian", preconditioner="equilibrated"),
    default_lr={"*": 0.15}, uses_curvature=True,
    description="AdaHessian(E): equilibration preconditioner every step",
))
register(OptimizerSpec(
    "adahessian_j", lazy_builder("jaxprecond", "adahessian", preconditioner="abs_hvp"),
    default_lr={"*": 0.15}, uses_curvature=True,
    description="AdaHessian(J) as the reference code computes it: EMA of |Hv|",
))
register(OptimizerSpec(
    "adahessian_jacobi", lazy_builder("jaxprecond", "adahessian", preconditioner="jacobi"),
    default_lr={"*": 0.15}, uses_curvature=True,
    description="AdaHessian with the true Jacobi diagonal |diag H| (Hutchinson v*Hv)",
))
register(OptimizerSpec(
    "preconditioned_sgd", lazy_builder("jaxprecond", "preconditioned_sgd"),
    default_lr={"*": 0.15, **_RELU}, uses_curvature=True,
    description="SGD divided by the Jacobi diagonal |diag H| estimated every step, no momentum",
))
register(OptimizerSpec(
    "preconditioned_sgd_e",
    lazy_builder("jaxprecond", "preconditioned_sgd", preconditioner="equilibrated"),
    default_lr={"*": 0.15, **_RELU}, uses_curvature=True,
    description="SGD divided by the equilibration diagonal ||H_i,:|| estimated every step",
))

# --- Baselines: Shampoo (jaxprecond), K-FAC (kfac.py), L-BFGS (lbfgs.py) -----------------------
# kfac needs the task (its loss registration and an example batch: task_options) and a step that
# passes it the batch (make_step); the harness applies both. lbfgs needs the full batch (pass
# force=True to its builder to override outside the harness).
register(OptimizerSpec(
    "shampoo", lazy_builder("jaxprecond", "shampoo"),
    default_lr={"*": 0.1, "sine": 0.01},
    description="Shampoo (v1 supplement Alg. 4): L^-1/4 G R^-1/4, eigh roots",
))
register(OptimizerSpec(
    "kfac", lazy_builder("experiments.optimizers.kfac", "kfac"), default_lr={"*": 1e-4},
    description="K-FAC (kfac-jax, damping 0.1, inverses every 100 steps) fed to Adam",
    task_options=lazy_function("experiments.optimizers.kfac", "kfac_task_options"),
    make_step=lazy_function("experiments.optimizers.kfac", "make_kfac_step"),
))
register(OptimizerSpec(
    "lbfgs", lazy_builder("experiments.optimizers.lbfgs", "lbfgs"), default_lr={"*": 1.0},
    full_batch_only=True, description="L-BFGS (optax) with a zoom line search; full batch only",
))

# --- Optimizers optax ships now (issue 14): Muon (muon.py), Sophia with our estimators -------
# Learning rates are ours (none from McGinnis et al., arXiv 2512.14366, whose text we did not
# have): the best of a one-seed sanity sweep (lion 64x64, 3x64 field, batch 128, 10 epochs;
# Gaussian, sine, ReLU+PE) over Muon {0.005, 0.02, 0.05} and Sophia {1e-4, 1e-3}; wavelet and
# sinc take the "*" value. Muon's AdamW fallback (first layer, head, biases) runs at 1e-3.
# These rates are too high at the paper's size: on 256x256 images with 5x256 fields the sweep of
# benchmarks/time_to_quality.py (image_015 and coffee, 2 seeds each, docs/TIME_TO_QUALITY.md)
# finds Muon best at x0.03 (sine, wavelet), x0.1 (Gaussian) and x0.3 (ReLU+PE) of these, the
# registry rate ending 2.8-14.4 dB below the best. The default is kept on purpose (the beyond
# preset, occupancy and the audio/video grid run at it); at the paper's image size pass --lr
# (docs/TIME_TO_QUALITY.md says so beside the sweep).
_MUON_LR = {"*": 0.005, "relu": 0.02, "relu_pe": 0.02}
register(OptimizerSpec(
    "muon", lazy_builder("experiments.optimizers.muon", "muon"), default_lr=_MUON_LR,
    description="Muon (optax.contrib): orthogonalised hidden matrices, AdamW 1e-3 for the rest",
))
register(OptimizerSpec(
    "muon_all2d", lazy_builder("experiments.optimizers.muon", "muon", partition="all_2d"),
    default_lr=_MUON_LR,
    description="Muon with optax's default partition (first layer and head orthogonalised too)",
))
register(OptimizerSpec(
    "sophia_h", lazy_builder("experiments.optimizers.sophia", "sophia_h"),
    default_lr={"*": 1e-3, "sine": 1e-4}, uses_curvature=True,
    description="Sophia (optax.contrib) with jaxprecond.hutchinson_diagonal: clipped m/diag H",
))
register(OptimizerSpec(
    "sophia_e", lazy_builder("experiments.optimizers.sophia", "sophia_e"),
    default_lr={"*": 1e-3}, uses_curvature=True,
    description="Sophia's clipped update with the equilibration D^E = sqrt(EMA (Hv)^2)",
))
