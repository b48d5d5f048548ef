"""From a field back to a mesh: grid evaluation, marching cubes, PLY, pictures, Chamfer distance.

The grid covers the normalised frame's cube [-1, 1]^3 with ``resolution`` samples per axis
(corners included); marching cubes (scikit-image) returns vertices in voxel units, which
:func:`extract_mesh` maps back to that frame.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Points per call of the jitted field when evaluating a grid (fixed, so it compiles once).
GRID_CHUNK = 65536
#: Faces drawn per mesh in a picture (larger meshes are decimated for drawing only).
RENDER_FACES = 20000


def grid_points(resolution: int, bound: float = 1.0) -> np.ndarray:
    """The ``resolution^3`` grid points of ``[-bound, bound]^3``, float32 ``(resolution^3, 3)``,
    in ``'ij'`` order: index ``(i, j, k)`` is at ``(x_i, y_j, z_k)``."""
    axis = np.linspace(-bound, bound, resolution, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    return grid.reshape(-1, 3)


def evaluate_chunked(fn: Callable[[Any], Any], points: np.ndarray,
                     chunk: int = GRID_CHUNK) -> np.ndarray:
    """``fn`` (a jitted map ``(chunk, d) -> (chunk, ...)``) over ``points`` in fixed-size chunks,
    the last padded with zeros, so ``fn`` compiles once; returns NumPy ``(n, ...)``."""
    n = points.shape[0]
    chunk = min(chunk, n)
    out = []
    for start in range(0, n, chunk):
        part = points[start:start + chunk]
        valid = part.shape[0]
        if valid < chunk:
            part = np.concatenate([part, np.zeros((chunk - valid, *part.shape[1:]), part.dtype)])
        out.append(np.asarray(fn(part))[:valid])
    return np.concatenate(out)


def grid_values(fn: Callable[[Any], Any], resolution: int, *, bound: float = 1.0,
                chunk: int = GRID_CHUNK) -> np.ndarray:
    """Scalar field ``fn`` (points ``(m, 3)`` -> ``(m,)`` or ``(m, 1)``) on the grid of
    :func:`grid_points`, shape ``(resolution,) * 3``."""
    values = evaluate_chunked(fn, grid_points(resolution, bound), chunk)
    return values.reshape(resolution, resolution, resolution)


def extract_mesh(values: np.ndarray, level: float = 0.0, *, bound: float = 1.0) -> Any:
    """Marching cubes of ``values`` (a grid of :func:`grid_values`, larger = inside) at ``level``.

    Returns:
      A ``trimesh.Trimesh`` in the normalised frame with outward normals, or ``None`` when the
      level set does not cross the grid (an empty or full field).
    """
    import trimesh
    from skimage.measure import marching_cubes

    values = np.asarray(values, np.float32)
    if not (np.nanmin(values) < level < np.nanmax(values)):
        return None
    step = 2 * bound / (values.shape[0] - 1)
    verts, faces, _, _ = marching_cubes(values, level=level, spacing=(step,) * 3)
    # scikit-image orients faces for values increasing outward; ours increase inward: flip.
    return trimesh.Trimesh(verts - bound, faces[:, ::-1], process=False)


def write_ply(mesh: Any, path: str | pathlib.Path) -> None:
    """Write ``mesh`` (a ``trimesh.Trimesh``) as binary PLY."""
    pathlib.Path(path).write_bytes(mesh.export(file_type="ply"))


def _for_drawing(mesh: Any, faces: int = RENDER_FACES) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.asarray(mesh.vertices, np.float64)
    tris = np.asarray(mesh.faces, np.int64)
    if len(tris) > faces:
        try:
            import igl

            vertices, tris, _, _ = igl.decimate(vertices, tris, faces)
        except Exception:  # non-manifold input: draw a random subset of faces instead
            keep = np.random.default_rng(0).choice(len(tris), faces, replace=False)
            tris = tris[keep]
    return np.asarray(vertices), np.asarray(tris)


def render_meshes(path: str | pathlib.Path, meshes: Sequence[Any | None],
                  titles: Sequence[str], *, elev: float = 20.0, azim: float = -60.0,
                  size: float = 4.0) -> None:
    """Draw ``meshes`` side by side, shaded, headless (matplotlib 3D), to a PNG at ``path``.

    A ``None`` mesh draws an empty panel saying so. Large meshes are decimated for drawing.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    fig = plt.figure(figsize=(size * len(meshes), size))
    light = np.array([0.3, -0.5, 0.8])
    light /= np.linalg.norm(light)
    for i, (mesh, title) in enumerate(zip(meshes, titles, strict=True)):
        ax = fig.add_subplot(1, len(meshes), i + 1, projection="3d")
        ax.set_title(title, fontsize=10)
        for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
            setter(-1, 1)
        ax.set_box_aspect((1, 1, 1))
        ax.set_axis_off()
        if mesh is None or len(mesh.faces) == 0:
            ax.text2D(0.5, 0.5, "no surface", ha="center", transform=ax.transAxes)
            continue
        v, f = _for_drawing(mesh)
        tri = v[f]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
        shade = 0.25 + 0.75 * np.abs(normal @ light)
        colors = np.clip(shade[:, None] * np.array([0.75, 0.8, 0.9]), 0, 1)
        # y up in the picture: draw (x, z, y) so the usual y-up meshes stand upright.
        ax.add_collection3d(Poly3DCollection(tri[:, :, [0, 2, 1]], facecolors=colors,
                                             edgecolors="none", linewidths=0))
        ax.view_init(elev=elev, azim=azim)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def chamfer_distance(a: Any, b: Any, n: int = 30000, seed: int = 0) -> float:
    """Symmetric Chamfer distance between two meshes' surfaces:
    ``(mean_a d(a, B) + mean_b d(b, A)) / 2`` over ``n`` area-uniform samples of each (Euclidean
    distance to the nearest sample of the other, SciPy KD-tree), in the meshes' units."""
    import trimesh
    from scipy.spatial import cKDTree

    pa, _ = trimesh.sample.sample_surface(a, n, seed=seed)
    pb, _ = trimesh.sample.sample_surface(b, n, seed=seed + 1)
    da, _ = cKDTree(pb).query(pa)
    db, _ = cKDTree(pa).query(pb)
    return float((da.mean() + db.mean()) / 2)
