"""Fit a 3D binary occupancy field to a mesh: ``python -m experiments.occupancy``.

Points in [-1, 1]^3 -> one logit; BCE with logits on labelled points (paper Sec. 5.2): 1M points
by default, a third uniform in the cube and two thirds near the surface (see
:mod:`experiments.tasks.occupancy_data` for the frame, the sampler and the labels), batch 50,000
(20 steps an epoch), a 5x256 Gaussian field with sigma 0.09. The task's metric is the IoU at
probability 0.5 on 100k held-out uniform points (``iou``); ``iou_surface`` is the IoU on 100k
held-out points near the surface (sigma 0.01), and ``train_batch_iou`` the reference code's
number: the IoU on training points (a fixed batch-sized subset), for comparison with the paper's
plots only. At the end the field is meshed by marching cubes of its logits at level 0 on a
``--mesh-resolution``^3 grid: ``mesh.ply``, ``mesh.png`` (beside the ground truth) and
``mesh.json`` (Chamfer distance to the ground truth). Examples::

    python -m experiments.occupancy --epochs 5                     # the made torus+sphere
    python -m experiments.occupancy --mesh ../shared/data/meshes/armadillo.obj --optimizer adam
    python -m experiments.occupancy --out runs/occupancy/gaussian-esgd --resume --epochs 20
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pathlib
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.harness import cli, entry
from experiments.harness.config import RunConfig
from experiments.harness.errors import UsageError
from experiments.tasks import meshing
from experiments.tasks import occupancy_data as od
from experiments.tasks.field_factory import make_field

NAME = "occupancy"
DEFAULT_OUT = "runs/occupancy"
DEFAULT_BATCH = 50_000
#: The paper's Gaussian width for occupancy (the image task uses 0.05).
GAUSSIAN_SIGMA = 0.09
EVAL_CHUNK = 65536


@dataclasses.dataclass(frozen=True)
class OccupancyConfig(RunConfig):
    """A run of the occupancy task: the harness's settings plus the mesh and its sampling.

    Attributes:
      mesh: an OBJ, PLY, OFF or STL file; ``None`` for the made torus+sphere.
      points: training points per sampled set (the paper's 1M).
      pool: sampled sets trained on as one union (1: one fixed set, no resampling).
      eval_points: points in each held-out set (uniform; near-surface).
      data_seed: seed of the sampled sets (the same data for every ``--seed``).
      mesh_resolution: grid side for marching cubes at the end (output only).
      cache_dir: where sampled sets are cached (``None``: no cache).
    """

    TASK_KEYS: ClassVar[tuple[str, ...]] = ("mesh", "points", "pool", "eval_points", "data_seed")

    task: str = NAME
    out: str = DEFAULT_OUT
    batch_size: int = DEFAULT_BATCH
    mesh: str | None = None
    points: int = 1_000_000
    pool: int = 1
    eval_points: int = 100_000
    data_seed: int = 0
    mesh_resolution: int = 256
    cache_dir: str | None = None

    def sampling(self) -> od.SamplingSettings:
        """The sampling settings of this run."""
        return od.SamplingSettings(points=self.points, pool=self.pool,
                                   eval_points=self.eval_points, seed=self.data_seed)

    def check(self) -> None:
        self.sampling().check()
        if self.mesh_resolution < 2:
            raise UsageError(f"--mesh-resolution {self.mesh_resolution}: expected 2 or more")
        if self.mesh is not None and not pathlib.Path(self.mesh).is_file():
            od.load_mesh(self.mesh)  # raises the one-line error for a missing file
        num = self.points * self.pool
        if self.batch_size > num:
            raise UsageError(f"--batch-size {self.batch_size}: larger than the {num} training "
                             f"points (--points {self.points} x --pool {self.pool}); expected at "
                             f"most {num}")


def make_model(activation: str, depth: int | None = None, width: int | None = None) -> Any:
    """The occupancy field: one logit out; Gaussian layers with the paper's sigma 0.09."""
    extra = {"sigma": GAUSSIAN_SIGMA} if activation == "gaussian" else {}
    return make_field(activation, depth, width, out_features=1, **extra)


def iou(logits: np.ndarray, labels: np.ndarray) -> float:
    """Intersection over union of ``logits > 0`` (probability > 0.5) and ``labels > 0.5``;
    1 when both sets are empty."""
    pred = np.asarray(logits) > 0
    true = np.asarray(labels) > 0.5
    union = np.count_nonzero(pred | true)
    return float(np.count_nonzero(pred & true) / union) if union else 1.0


class OccupancyTask:
    """Fit ``model`` to the occupancy of ``shape``; the examples are the sampled points.

    The training points and labels live on the device (one copy, placed at construction); a
    batch is gathered there from the step's indices.
    """

    name = NAME
    metric_name = "iou"
    metric_label = "IoU"
    metric_unit = ""
    #: Evaluation keys the summary also holds as ``final_<key>``.
    final_keys = ("iou_surface", "train_batch_iou")

    def __init__(self, shape: od.Shape, data: dict[str, np.ndarray], model: Any,
                 settings: od.SamplingSettings, *, batch_size: int, mesh_resolution: int = 256):
        self.shape = shape
        self.data = data
        self.model = model
        self.settings = settings
        self.mesh_resolution = mesh_resolution
        self.num_examples = int(data["train_points"].shape[0])
        self._points = jax.device_put(data["train_points"])
        self._labels = jax.device_put(data["train_labels"])
        # The reference's "IoU" is the training batch's: ours is a fixed batch-sized subset.
        pick = np.random.default_rng(settings.seed).choice(
            self.num_examples, size=min(batch_size, self.num_examples), replace=False)
        self._train_subset = np.sort(pick)
        self._collections: dict[str, Any] = {}

    def fingerprint(self) -> dict[str, Any]:
        return {"shape_sha256": self.shape.fingerprint(),
                "sampling_key": self.settings.key(self.shape.fingerprint())}

    def batch(self, indices: np.ndarray) -> dict[str, jax.Array]:
        idx = jnp.asarray(indices)
        return {"points": jnp.take(self._points, idx, axis=0),
                "labels": jnp.take(self._labels, idx, axis=0)}

    def init_params(self, key: jax.Array) -> Any:
        variables = self.model.init(key, jnp.zeros((1, 3), jnp.float32))
        self._collections = {k: v for k, v in variables.items() if k != "params"}
        return variables["params"]

    def apply(self, params: Any, points: jax.Array) -> jax.Array:
        """Logits at ``points`` (N, 3), shape (N,)."""
        return self.model.apply({"params": params, **self._collections}, points)[..., 0]

    def loss_fn(self, params: Any, batch: dict[str, jax.Array]) -> jax.Array:
        logits = self.apply(params, batch["points"])
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, batch["labels"]))

    def metric_from_loss(self, loss: float) -> None:
        return None  # the BCE does not determine the IoU

    @functools.cached_property
    def _logits(self) -> Any:
        return jax.jit(self.apply)

    def logits(self, params: Any, points: np.ndarray) -> np.ndarray:
        """Logits at host ``points`` in fixed-size chunks (one compilation)."""
        return meshing.evaluate_chunked(functools.partial(self._logits, params), points,
                                        EVAL_CHUNK)

    def evaluate(self, params: Any) -> dict[str, float]:
        d = self.data
        sub = self._train_subset
        return {
            "iou": iou(self.logits(params, d["eval_uniform_points"]), d["eval_uniform_labels"]),
            "iou_surface": iou(self.logits(params, d["eval_surface_points"]),
                               d["eval_surface_labels"]),
            "train_batch_iou": iou(self.logits(params, d["train_points"][sub]),
                                   d["train_labels"][sub]),
        }

    def extract(self, params: Any, resolution: int | None = None) -> Any:
        """The field's mesh: marching cubes of its logits at level 0 (``None`` if empty)."""
        res = resolution or self.mesh_resolution
        values = meshing.grid_values(functools.partial(self._logits, params), res,
                                     chunk=EVAL_CHUNK)
        return meshing.extract_mesh(values, 0.0)

    def write_outputs(self, params: Any, out_dir: pathlib.Path) -> list[str]:
        mesh = self.extract(params)
        truth = self.shape.mesh()
        files = []
        info: dict[str, Any] = {"mesh_resolution": self.mesh_resolution,
                                "frame": "bounding-box centre at 0, longest side 1.9"}
        if mesh is not None:
            meshing.write_ply(mesh, out_dir / "mesh.ply")
            files.append("mesh.ply")
            info.update(vertices=len(mesh.vertices), faces=len(mesh.faces),
                        chamfer=meshing.chamfer_distance(mesh, truth))
        else:
            info.update(vertices=0, faces=0, chamfer=None)
        meshing.render_meshes(out_dir / "mesh.png", [mesh, truth],
                              [f"field ({self.mesh_resolution}^3 marching cubes)",
                               "ground truth"])
        (out_dir / "mesh.json").write_text(json.dumps(info, indent=2) + "\n")
        return [*files, "mesh.png", "mesh.json"]


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """The occupancy task's data flags."""
    data = parser.add_argument_group("data")
    data.add_argument("--mesh", default=None,
                      help="OBJ, PLY, OFF or STL mesh (default: a made torus+sphere)")
    data.add_argument("--points", type=int, default=1_000_000,
                      help="training points: 1/3 uniform, 2/3 near the surface (default 1000000)")
    data.add_argument("--pool", type=int, default=1,
                      help="independently sampled sets trained on as one union (default 1: one "
                           "fixed set, no resampling)")
    data.add_argument("--eval-points", type=int, default=100_000,
                      help="points in each held-out set, uniform and near-surface (default "
                           "100000)")
    data.add_argument("--data-seed", type=int, default=0,
                      help="seed of the sampled points (default 0, the same for every --seed)")
    data.add_argument("--mesh-resolution", type=int, default=256,
                      help="marching-cubes grid side for mesh.ply (default 256; the paper's 512)")
    data.add_argument("--cache-dir", default=None,
                      help=f"cache of sampled sets (default {od.default_cache_dir()})")
    data.add_argument("--no-cache", action="store_true", help="sample without the cache")


def parser(prog: str = "python -m experiments.occupancy", description: str | None = None,
           ) -> cli.OneLineParser:
    """The parser of ``python -m experiments.occupancy``."""
    return entry.task_parser(add_data_args, prog, description, default_out=DEFAULT_OUT,
                             eval_every=1)


def make_config(
    args: argparse.Namespace, *, activation: str | None = None, optimizer: str | None = None,
    out: str | None = None,
) -> OccupancyConfig:
    """Resolve parsed flags into an :class:`OccupancyConfig` (batch 50,000 by default; all the
    points for full-batch optimizers)."""
    settings = cli.run_settings(args, activation=activation, optimizer=optimizer, out=out,
                                default_out=DEFAULT_OUT, num_examples=args.points * args.pool,
                                default_batch_size=DEFAULT_BATCH)
    cache = None if args.no_cache else (args.cache_dir or str(od.default_cache_dir()))
    return OccupancyConfig(mesh=args.mesh, points=args.points, pool=args.pool,
                           eval_points=args.eval_points, data_seed=args.data_seed,
                           mesh_resolution=args.mesh_resolution, cache_dir=cache, **settings)


def report_settings(config: OccupancyConfig) -> dict[str, Any]:
    """The lines of a comparison report that describe the data."""
    return {
        "mesh": config.mesh or "made torus+sphere",
        "points": f"{config.points} x pool {config.pool} (1/3 uniform, 2/3 near the surface)",
        "batch": str(config.batch_size),
        "held-out sets": f"{config.eval_points} uniform, {config.eval_points} near-surface",
    }


#: What a comparison report says about how the final IoU is measured.
REPORT_NOTES = (
    "Final IoU: probability > 0.5 against winding-number labels on held-out points uniform in "
    "[-1, 1]^3 (final_eval_iou_surface: near the surface, sigma 0.01; final_eval_train_batch_iou: "
    "a training batch, the reference code's number).",
)


def prepare(config: OccupancyConfig) -> OccupancyTask:
    """Validate ``config`` and load, sample and label its data; bad input raises
    :class:`UsageError` before any sampling."""
    entry.check_config(config, NAME)
    model = make_model(config.activation, config.depth, config.width)
    shape = od.load_shape(config.mesh)
    settings = config.sampling()
    data, _ = od.cached_dataset(shape, settings, config.cache_dir)
    return OccupancyTask(shape, data, model, settings, batch_size=config.batch_size,
                         mesh_resolution=config.mesh_resolution)


def run(config: OccupancyConfig, **kwargs: Any) -> dict[str, Any]:
    """Train an occupancy field as ``config`` says; returns the summary with ``final_iou``,
    ``final_iou_surface``, ``final_train_batch_iou`` and ``final_loss`` (see
    :func:`train.train`)."""
    return entry.run_task(prepare, config, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m experiments.occupancy``; returns the exit code."""
    return entry.task_main(argv, parser=parser, doc=__doc__, make_config=make_config, run=run)


if __name__ == "__main__":
    sys.exit(main())
