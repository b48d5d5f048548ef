"""Occupancy data: meshes, their normalisation, the paper's point sampler, inside labels, a cache.

Conventions (paper Sec. 5.2, v2 text; DESIGN.md "Facts for the next tasks ... Occupancy"):

- **Frame.** A mesh is translated so the centre of its axis-aligned bounding box is the origin and
  scaled uniformly so its longest side is ``2 * PAD_SCALE`` = 1.9: it lies in [-0.95, 0.95]^3,
  inside the sampling cube [-1, 1]^3 with a margin of 0.05 on its longest axis.
- **Points.** ``n`` points: ``n // 3`` uniform in the cube; the rest near the surface: area-uniform
  surface samples perturbed by N(0, 0.1^2) (half of them) and N(0, 0.01^2) (the other half) per
  coordinate, clamped to the cube.
- **Labels.** Inside = ``|w| > 0.5`` for the generalised winding number ``w`` of the mesh (libigl's
  fast winding number, Barill et al. 2018), after ``trimesh.repair.fix_winding`` makes the faces
  of each connected piece consistently oriented. The absolute value makes a mesh whose faces all
  point inward (``dragon_10k_watertight.obj``) label like its flipped copy; the winding number is
  fractional only near holes, so open scans (``dragon.ply``, ``stanford-bunny.obj``) label
  correctly away from their holes.
- **The made shape.** With no mesh, :class:`TorusSphere` (a torus united with a sphere) gives
  exact labels from its formula and exact surface samples, so the demo and the tests need no file.
- **Pool.** The training set is one fixed sample by default (no resampling). ``pool=K`` samples K
  independent sets (different seeds) and trains on their union, shuffled, so a K-set pool gives
  the data the reference's per-epoch cycling of K resampled sets gives, over K times the steps
  per epoch (the harness shuffles one fixed example set, so the cycle becomes one larger epoch).
- **Evaluation.** Held-out sets drawn with their own seeds: ``eval_points`` uniform in the cube
  and ``eval_points`` near the surface at sigma 0.01.
- **Cache.** Sampled sets are cached as ``.npz`` keyed by the shape's hash and every sampling
  setting (written to a temporary file, then renamed: a crash never leaves a half-written file).

Everything is vectorised NumPy; 1M armadillo points sample and label in a few seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import tempfile
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from experiments.harness.errors import UsageError

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl")
PAD_SCALE = 0.95
UNIFORM_FRACTION = 1 / 3
SIGMAS = (0.1, 0.01)
EVAL_SIGMA = 0.01
#: Bumped whenever sampling or labelling changes, so old cache files are not reused.
CACHE_VERSION = 1
_STREAMS = {"train": 0, "eval_uniform": 1, "eval_surface": 2}


class Shape(Protocol):
    """What the sampler needs from a shape in the normalised frame."""

    def fingerprint(self) -> str:
        """A hash identifying the geometry (cache key, run fingerprint)."""
        ...

    def sample_surface(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` area-uniform points on the surface, float64 ``(n, 3)``."""
        ...

    def inside(self, points: np.ndarray) -> np.ndarray:
        """Boolean ``(n,)``: which ``points`` lie inside the shape."""
        ...

    def mesh(self) -> Any:
        """The shape as a ``trimesh.Trimesh`` (ground truth for pictures and Chamfer)."""
        ...


# --------------------------------------------------------------------------------------- meshes
def load_mesh(path: str | os.PathLike[str]) -> Any:
    """Load a triangle mesh (OBJ, PLY, OFF, STL) with trimesh, duplicate vertices merged.

    Raises:
      UsageError: the file is missing, is not a mesh trimesh can read, or has no faces.
    """
    import trimesh

    file = pathlib.Path(path)
    expected = f"expected a triangle mesh ({', '.join(s[1:].upper() for s in MESH_SUFFIXES)})"
    if not file.is_file():
        raise UsageError(f"--mesh {path}: no such file; {expected}")
    try:
        loaded = trimesh.load(file, force="mesh", process=True)
    except Exception as exc:  # trimesh raises many types on bad files
        raise UsageError(f"--mesh {path}: not a mesh ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); {expected}") from None
    faces = getattr(loaded, "faces", None)
    if not isinstance(loaded, trimesh.Trimesh):
        raise UsageError(f"--mesh {path}: not a mesh (read as {type(loaded).__name__}); {expected}")
    if faces is None or len(faces) == 0:
        raise UsageError(f"--mesh {path}: has no faces; {expected} with at least one face")
    return loaded


def normalise(mesh: Any) -> tuple[Any, np.ndarray, float]:
    """Centre the bounding box at the origin and scale the longest side to ``2 * PAD_SCALE``.

    Args:
      mesh: a ``trimesh.Trimesh``.

    Returns:
      ``(normalised copy, centre, scale)`` with ``normalised = (original - centre) * scale``.
    """
    lo, hi = np.asarray(mesh.bounds, np.float64)
    centre = (lo + hi) / 2
    extent = float(np.max(hi - lo))
    if not extent > 0:
        raise UsageError("--mesh: all vertices coincide; expected a mesh with a positive extent")
    scale = 2 * PAD_SCALE / extent
    out = mesh.copy()
    out.apply_translation(-centre)
    out.apply_scale(scale)
    return out, centre, scale


class MeshShape:
    """A normalised triangle mesh labelled by its generalised winding number."""

    def __init__(self, mesh: Any, *, source: str = "mesh"):
        import trimesh

        normalised, self.centre, self.scale = normalise(mesh)
        trimesh.repair.fix_winding(normalised)  # consistent orientation within each piece
        self._mesh = normalised
        self.source = source
        self.vertices = np.ascontiguousarray(normalised.vertices, np.float64)
        self.faces = np.ascontiguousarray(normalised.faces, np.int64)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> MeshShape:
        """Load, normalise and orient the mesh at ``path`` (see :func:`load_mesh`)."""
        return cls(load_mesh(path), source=str(path))

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.vertices.tobytes())
        digest.update(self.faces.tobytes())
        return digest.hexdigest()[:16]

    def sample_surface(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Area-weighted faces, uniform barycentric coordinates (vectorised)."""
        tri = self.vertices[self.faces]
        area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        face = rng.choice(len(area), size=n, p=area / area.sum())
        u, v = rng.random((2, n))
        flip = u + v > 1
        u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
        t = tri[face]
        return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])

    def winding_number(self, points: np.ndarray) -> np.ndarray:
        """libigl's fast generalised winding number at ``points`` (float64 ``(n,)``)."""
        import igl

        query = np.ascontiguousarray(points, np.float64)
        return np.asarray(igl.fast_winding_number(self.vertices, self.faces, query))

    def inside(self, points: np.ndarray) -> np.ndarray:
        return np.abs(self.winding_number(points)) > 0.5

    def mesh(self) -> Any:
        return self._mesh


@dataclasses.dataclass(frozen=True)
class TorusSphere:
    """The made shape: a torus about the z axis united with a sphere over its tube.

    Torus: ``(sqrt(x^2 + y^2) - R)^2 + z^2 < r^2``; sphere: ``|p - c| < s``. Both are exact signed
    distances, so the union's is their minimum; labels come from the formula, not a mesh.
    """

    major: float = 0.5
    minor: float = 0.2
    centre: tuple[float, float, float] = (0.5, 0.0, 0.3)
    radius: float = 0.3
    source: str = "made:torus+sphere"

    def fingerprint(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def torus_sdf(self, points: np.ndarray) -> np.ndarray:
        """Signed distance to the torus (negative inside)."""
        q = np.hypot(points[..., 0], points[..., 1]) - self.major
        return np.hypot(q, points[..., 2]) - self.minor

    def sphere_sdf(self, points: np.ndarray) -> np.ndarray:
        """Signed distance to the sphere (negative inside)."""
        return np.linalg.norm(points - np.asarray(self.centre), axis=-1) - self.radius

    def sdf(self, points: np.ndarray) -> np.ndarray:
        """Signed distance bound of the union (exact outside, negative inside)."""
        return np.minimum(self.torus_sdf(points), self.sphere_sdf(points))

    def inside(self, points: np.ndarray) -> np.ndarray:
        return self.sdf(np.asarray(points, np.float64)) < 0

    def _torus_surface(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # Area element of the torus is proportional to R + r cos(v): sample v by rejection.
        out = np.empty((0, 2))
        while len(out) < n:
            u = rng.uniform(0, 2 * np.pi, 2 * n)
            v = rng.uniform(0, 2 * np.pi, 2 * n)
            bound = self.major + self.minor
            keep = rng.random(2 * n) * bound < self.major + self.minor * np.cos(v)
            out = np.concatenate([out, np.stack([u[keep], v[keep]], axis=1)])
        u, v = out[:n].T
        ring = self.major + self.minor * np.cos(v)
        return np.stack([ring * np.cos(u), ring * np.sin(u), self.minor * np.sin(v)], axis=1)

    def _sphere_surface(self, n: int, rng: np.random.Generator) -> np.ndarray:
        d = rng.normal(size=(n, 3))
        return np.asarray(self.centre) + self.radius * d / np.linalg.norm(d, axis=1, keepdims=True)

    def sample_surface(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Area-uniform samples of the union's boundary: each part's surface, area-weighted,
        with the samples that fall inside the other part rejected."""
        area_t = 4 * np.pi**2 * self.major * self.minor
        area_s = 4 * np.pi * self.radius**2
        parts = []
        total = 0
        while total < n:
            m = 2 * (n - total) + 16
            k = rng.binomial(m, area_t / (area_t + area_s))
            t = self._torus_surface(k, rng)
            s = self._sphere_surface(m - k, rng)
            both = np.concatenate([t[self.sphere_sdf(t) >= 0], s[self.torus_sdf(s) >= 0]])
            both = both[rng.permutation(len(both))]
            parts.append(both)
            total += len(both)
        return np.concatenate(parts)[:n]

    def mesh(self) -> Any:
        """Marching cubes of the exact signed distance on a 128^3 grid."""
        from experiments.tasks.meshing import extract_mesh, grid_points

        res = 128
        values = self.sdf(grid_points(res).astype(np.float64)).reshape(res, res, res)
        return extract_mesh(-values, level=0.0)


def load_shape(mesh: str | None) -> Shape:
    """The shape of a run: the mesh file ``mesh`` or, with ``None``, the made shape."""
    return TorusSphere() if mesh is None else MeshShape.from_file(mesh)


# ------------------------------------------------------------------------------------- sampling
def sample_points(
    shape: Shape, n: int, rng: np.random.Generator, *,
    uniform_fraction: float = UNIFORM_FRACTION, sigmas: tuple[float, ...] = SIGMAS,
) -> np.ndarray:
    """The paper's sampler: ``int(n * uniform_fraction)`` uniform points in [-1, 1]^3, the rest
    surface samples perturbed by N(0, sigma^2), split evenly over ``sigmas``, clamped to the cube.

    Returns:
      float64 ``(n, 3)``, uniform points first, then each sigma's points in order.
    """
    n_uniform = int(n * uniform_fraction)
    n_near = n - n_uniform
    counts = [n_near // len(sigmas)] * len(sigmas)
    counts[-1] += n_near - sum(counts)
    parts = [rng.uniform(-1.0, 1.0, (n_uniform, 3))]
    surface = shape.sample_surface(n_near, rng)
    start = 0
    for sigma, count in zip(sigmas, counts, strict=True):
        near = surface[start:start + count] + rng.normal(0.0, sigma, (count, 3))
        parts.append(np.clip(near, -1.0, 1.0))
        start += count
    return np.concatenate(parts)


def labelled(shape: Shape, points: np.ndarray) -> dict[str, np.ndarray]:
    """``{'points': float32 (n, 3), 'labels': float32 (n,) in {0, 1}}``; the labels are those
    of the stored float32 points."""
    stored = points.astype(np.float32)
    return {"points": stored, "labels": shape.inside(stored.astype(np.float64)).astype(np.float32)}


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    """Everything that defines a sampled data set besides the shape.

    Attributes:
      points: training points per set.
      pool: number of independently sampled training sets, trained on as one union.
      eval_points: size of each held-out set (uniform; near-surface at ``EVAL_SIGMA``).
      seed: data seed (independent of the run's seed: all seeds of a comparison see one data set).
    """

    points: int = 1_000_000
    pool: int = 1
    eval_points: int = 100_000
    seed: int = 0

    def check(self) -> None:
        """Raise :class:`UsageError` naming the flag of a non-positive count."""
        for flag, value in (("points", self.points), ("pool", self.pool),
                            ("eval-points", self.eval_points)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise UsageError(f"--{flag} {value}: expected a positive integer")
        if self.seed < 0:
            raise UsageError(f"--data-seed {self.seed}: expected a non-negative integer")

    def key(self, shape_hash: str) -> str:
        """Cache key of these settings on the shape hashed ``shape_hash``."""
        text = json.dumps({**dataclasses.asdict(self), "shape": shape_hash,
                           "uniform_fraction": UNIFORM_FRACTION, "sigmas": SIGMAS,
                           "eval_sigma": EVAL_SIGMA, "pad": PAD_SCALE,
                           "version": CACHE_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def _rng(seed: int, stream: str, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAMS[stream], index]))


def make_dataset(shape: Shape, settings: SamplingSettings) -> dict[str, np.ndarray]:
    """Sample and label the training pool and the two held-out sets.

    Returns:
      ``train_points`` (``points * pool``, 3), ``train_labels``, ``eval_uniform_points``,
      ``eval_uniform_labels``, ``eval_surface_points``, ``eval_surface_labels`` (float32).
    """
    settings.check()
    train = [labelled(shape, sample_points(shape, settings.points, _rng(settings.seed, "train", k)))
             for k in range(settings.pool)]
    rng_u = _rng(settings.seed, "eval_uniform")
    uniform = labelled(shape, rng_u.uniform(-1.0, 1.0, (settings.eval_points, 3)))
    surface = labelled(shape, sample_points(shape, settings.eval_points,
                                            _rng(settings.seed, "eval_surface"),
                                            uniform_fraction=0.0, sigmas=(EVAL_SIGMA,)))
    return {
        "train_points": np.concatenate([t["points"] for t in train]),
        "train_labels": np.concatenate([t["labels"] for t in train]),
        "eval_uniform_points": uniform["points"], "eval_uniform_labels": uniform["labels"],
        "eval_surface_points": surface["points"], "eval_surface_labels": surface["labels"],
    }


def default_cache_dir() -> pathlib.Path:
    """``$JAXPRECOND_CACHE/occupancy``, else ``$XDG_CACHE_HOME`` or ``~/.cache``
    ``/jaxprecond/occupancy``."""
    root = os.environ.get("JAXPRECOND_CACHE")
    if root:
        return pathlib.Path(root) / "occupancy"
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "jaxprecond" / "occupancy"


def cached_dataset(
    shape: Shape, settings: SamplingSettings, cache_dir: str | os.PathLike[str] | None,
    *, build: Callable[[Shape, SamplingSettings], dict[str, np.ndarray]] = make_dataset,
) -> tuple[dict[str, np.ndarray], bool]:
    """:func:`make_dataset`, read from / written to ``cache_dir`` (``None``: no cache).

    A missing or unreadable cache file is rebuilt; the new file is written atomically.

    Returns:
      ``(data, hit)`` where ``hit`` says whether the cache supplied it.
    """
    settings.check()
    if cache_dir is None:
        return build(shape, settings), False
    directory = pathlib.Path(cache_dir)
    path = directory / f"occupancy-{settings.key(shape.fingerprint())}.npz"
    if path.is_file():
        try:
            with np.load(path) as stored:
                return {k: stored[k] for k in stored.files}, True
        except (OSError, ValueError, EOFError):
            pass  # corrupt or foreign: rebuild below
    data = build(shape, settings)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".occupancy-", suffix=".npz", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **data)
            os.replace(tmp, path)
        except BaseException:
            pathlib.Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(f"--cache-dir {directory}: not writable ({exc.strerror}); expected a "
                         "writable directory, or --no-cache") from None
    return data, False
