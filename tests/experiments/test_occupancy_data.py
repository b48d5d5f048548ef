"""Occupancy data: the made shape's labels, winding-number labels on meshes (flipped faces,
holes), the paper's sampler, the cache, marching cubes, Chamfer distance and bad mesh files."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from experiments.harness.errors import UsageError
from experiments.tasks import meshing
from experiments.tasks import occupancy_data as od

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("igl")


def torus_sphere_formula(p: np.ndarray) -> np.ndarray:
    """The made shape's inside test, written out independently of the module."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    torus = (np.sqrt(x**2 + y**2) - 0.5) ** 2 + z**2 < 0.2**2
    sphere = (x - 0.5) ** 2 + y**2 + (z - 0.3) ** 2 < 0.3**2
    return torus | sphere


def test_made_shape_labels_match_its_formula_exactly() -> None:
    data = od.make_dataset(od.TorusSphere(), od.SamplingSettings(points=30000, eval_points=5000))
    for split in ("train", "eval_uniform", "eval_surface"):
        points = data[f"{split}_points"].astype(np.float64)
        expected = torus_sphere_formula(points).astype(np.float32)
        np.testing.assert_array_equal(data[f"{split}_labels"], expected)
    # Both classes are well represented near the surface.
    assert 0.3 < data["eval_surface_labels"].mean() < 0.7


def test_sampler_proportions_noise_and_clamping() -> None:
    shape = od.TorusSphere()
    n = 30000
    points = od.sample_points(shape, n, np.random.default_rng(0))
    assert points.shape == (n, 3)
    assert np.all(np.abs(points) <= 1.0)
    n_uniform = n // 3
    near_wide = points[n_uniform:n_uniform + (n - n_uniform) // 2]
    near_tight = points[n_uniform + (n - n_uniform) // 2:]
    # Distance to the surface: |sdf|; for a point p = s + N(0, s^2 I) it is about |N(0, s^2)|
    # along the normal, mean sigma * sqrt(2 / pi).
    for part, sigma in ((near_wide, 0.1), (near_tight, 0.01)):
        mean_dist = np.abs(shape.sdf(part)).mean()
        assert 0.5 * sigma < mean_dist < 1.2 * sigma, (sigma, mean_dist)
    # The uniform part fills the cube (each octant about 1/8).
    octants = np.unique((points[:n_uniform] > 0) @ np.array([1, 2, 4]), return_counts=True)[1]
    assert octants.size == 8 and np.all(np.abs(octants / n_uniform - 1 / 8) < 0.02)


def test_surface_samples_lie_on_the_made_shape_and_cover_both_parts() -> None:
    shape = od.TorusSphere()
    s = shape.sample_surface(20000, np.random.default_rng(1))
    np.testing.assert_allclose(shape.sdf(s), 0.0, atol=1e-12)
    on_sphere = np.abs(shape.sphere_sdf(s)) < 1e-9
    # Area fractions of the visible parts: the sphere's exposed area is a minority but present.
    assert 0.05 < on_sphere.mean() < 0.4


def _torus_mesh() -> object:
    return trimesh.creation.torus(major_radius=0.5, minor_radius=0.2, major_sections=96,
                                  minor_sections=48)


def _agree_away_from_surface(shape: od.MeshShape, points: np.ndarray, margin: float) -> None:
    """Winding labels equal the torus formula (in the mesh's original frame) except within
    ``margin`` of the surface, where the polygonal mesh and the exact torus differ."""
    original = points / shape.scale + shape.centre
    q = np.hypot(original[:, 0], original[:, 1]) - 0.5
    dist = np.hypot(q, original[:, 2]) - 0.2
    far = np.abs(dist) > margin
    assert far.sum() > 0.8 * len(points)
    np.testing.assert_array_equal(shape.inside(points)[far], (dist < 0)[far])


def test_winding_number_labels_agree_with_the_formula_on_a_mesh_of_the_shape() -> None:
    shape = od.MeshShape(_torus_mesh())
    assert np.all(np.abs(shape.vertices) <= od.PAD_SCALE + 1e-9)
    points = np.random.default_rng(0).uniform(-1, 1, (20000, 3))
    _agree_away_from_surface(shape, points, margin=0.01)
    assert 0.05 < shape.inside(points).mean() < 0.5


def test_inverted_and_partly_flipped_meshes_label_like_the_original() -> None:
    mesh = _torus_mesh()
    points = np.random.default_rng(2).uniform(-1, 1, (20000, 3))
    reference = od.MeshShape(mesh).inside(points)
    inverted = mesh.copy()
    inverted.invert()
    assert inverted.volume < 0
    np.testing.assert_array_equal(od.MeshShape(inverted).inside(points), reference)
    partly = mesh.copy()
    faces = partly.faces.copy()
    flip = np.random.default_rng(3).random(len(faces)) < 0.3
    faces[flip] = faces[flip][:, ::-1]
    partly = trimesh.Trimesh(partly.vertices, faces, process=False)
    assert not partly.is_winding_consistent
    np.testing.assert_array_equal(od.MeshShape(partly).inside(points), reference)


def test_a_mesh_with_holes_labels_right_away_from_them() -> None:
    mesh = _torus_mesh()
    # Cut a hole: drop the faces around one point of the tube.
    centre = mesh.triangles_center
    target = np.array([0.7, 0.0, 0.0])
    holed = trimesh.Trimesh(mesh.vertices,
                            mesh.faces[np.linalg.norm(centre - target, axis=1) > 0.08],
                            process=False)
    assert not holed.is_watertight
    shape = od.MeshShape(holed)
    points = np.random.default_rng(4).uniform(-1, 1, (20000, 3))
    # Away from the hole (0.25 in the original frame) the labels are the formula's.
    original = points / shape.scale + shape.centre
    away = np.linalg.norm(original - target, axis=1) > 0.25
    _agree_away_from_surface(shape, points[away], margin=0.01)


def test_shared_dragon_with_inward_faces_labels_like_its_flipped_copy(
    shared_data: pathlib.Path,
) -> None:
    path = shared_data / "meshes" / "dragon_10k_watertight.obj"
    mesh = od.load_mesh(path)
    assert mesh.volume < 0  # the file's faces point inward
    flipped = mesh.copy()
    flipped.invert()
    points = np.random.default_rng(5).uniform(-1, 1, (20000, 3))
    a = od.MeshShape(mesh)
    b = od.MeshShape(flipped)
    labels = a.inside(points)
    np.testing.assert_array_equal(labels, b.inside(points))
    assert 0.02 < labels.mean() < 0.5
    # The winding number is about -1 inside the inward mesh and +1 inside the flipped one.
    assert np.median(a.winding_number(points[labels])) < -0.9
    assert np.median(b.winding_number(points[labels])) > 0.9


def test_cache_reuses_and_rebuilds(tmp_path: pathlib.Path) -> None:
    shape = od.TorusSphere()
    settings = od.SamplingSettings(points=3000, eval_points=1000)
    calls = []

    def build(s: od.Shape, st: od.SamplingSettings) -> dict[str, np.ndarray]:
        calls.append(st)
        return od.make_dataset(s, st)

    first, hit = od.cached_dataset(shape, settings, tmp_path, build=build)
    assert not hit and len(calls) == 1
    second, hit = od.cached_dataset(shape, settings, tmp_path, build=build)
    assert hit and len(calls) == 1
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and not list(tmp_path.glob(".occupancy-*"))
    files[0].write_bytes(b"not an npz")
    _, hit = od.cached_dataset(shape, settings, tmp_path, build=build)
    assert not hit and len(calls) == 2
    other, hit = od.cached_dataset(shape, od.SamplingSettings(points=3000, eval_points=1000,
                                                              seed=1), tmp_path, build=build)
    assert not hit and len(list(tmp_path.glob("*.npz"))) == 2
    assert not np.array_equal(other["train_points"], first["train_points"])


def test_pool_is_a_union_of_independent_sets() -> None:
    shape = od.TorusSphere()
    one = od.make_dataset(shape, od.SamplingSettings(points=3000, eval_points=500))
    pool = od.make_dataset(shape, od.SamplingSettings(points=3000, pool=3, eval_points=500))
    assert pool["train_points"].shape == (9000, 3)
    np.testing.assert_array_equal(pool["train_points"][:3000], one["train_points"])
    assert not np.array_equal(pool["train_points"][3000:6000], one["train_points"])
    np.testing.assert_array_equal(pool["eval_uniform_points"], one["eval_uniform_points"])


def test_marching_cubes_of_a_sphere_has_the_right_radius() -> None:
    radius = 0.5
    values = meshing.grid_values(
        lambda p: 10.0 * (radius - np.linalg.norm(p, axis=-1)), 64, chunk=50000)
    mesh = meshing.extract_mesh(values, 0.0)
    r = np.linalg.norm(mesh.vertices, axis=1)
    np.testing.assert_allclose(r, radius, atol=2e-3)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.02)  # outward faces
    assert meshing.extract_mesh(np.ones((8, 8, 8)), 0.0) is None


def test_chamfer_distance_of_concentric_spheres() -> None:
    a = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    b = trimesh.creation.icosphere(subdivisions=4, radius=0.6)
    assert meshing.chamfer_distance(a, a, n=5000) < 0.02
    assert meshing.chamfer_distance(a, b, n=5000) == pytest.approx(0.1, abs=0.015)


def test_ply_round_trip_and_render(tmp_path: pathlib.Path) -> None:
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    meshing.write_ply(mesh, tmp_path / "m.ply")
    back = od.load_mesh(tmp_path / "m.ply")
    assert len(back.faces) == len(mesh.faces)
    meshing.render_meshes(tmp_path / "m.png", [mesh, None], ["sphere", "empty"])
    from PIL import Image

    with Image.open(tmp_path / "m.png") as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.min() < 200  # something was drawn


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("missing.obj", None, "no such file"),
    ("vertices.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n", "has no faces"),
    ("junk.ply", "\x00\x01garbage", "not a mesh"),
    ("notes.txt", "hello", "not a mesh"),
])
def test_bad_mesh_files_raise_one_line(tmp_path: pathlib.Path, name: str, content: str | None,
                                       expected: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError) as info:
        od.load_mesh(path)
    message = str(info.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_bad_sampling_settings() -> None:
    for settings, flag in ((od.SamplingSettings(points=0), "--points 0"),
                           (od.SamplingSettings(points=-5), "--points -5"),
                           (od.SamplingSettings(pool=0), "--pool 0"),
                           (od.SamplingSettings(eval_points=0), "--eval-points 0")):
        with pytest.raises(UsageError, match=flag):
            settings.check()


def test_shared_bunny_with_holes_labels_like_its_closed_copy(shared_data: pathlib.Path) -> None:
    holed = od.MeshShape.from_file(shared_data / "meshes" / "stanford-bunny.obj")
    closed = od.MeshShape.from_file(shared_data / "meshes" / "bunny_watertight.obj")
    assert not holed.mesh().is_watertight and closed.mesh().is_watertight
    # Both normalise to the same frame (the closed copy's bounding box is the scan's).
    np.testing.assert_allclose(holed.mesh().bounds, closed.mesh().bounds, atol=1e-3)
    points = np.random.default_rng(6).uniform(-1, 1, (20000, 3))
    labels = holed.inside(points)
    assert 0.05 < labels.mean() < 0.5
    agree = (labels == closed.inside(points)).mean()
    assert agree > 0.999, agree


def test_shared_dragon_scan_labels_agree_with_its_volume(shared_data: pathlib.Path) -> None:
    """``dragon.ply`` (listed in issue 12 as having holes): the file is not watertight as a
    whole (trimesh), but its 99,998-face dragon body is closed and the rest is a stray 2-face
    sliver, so the winding number is about 0 or 1 everywhere and the inside fraction of uniform
    points is the dragon's volume over the cube's 8 (measured: 1.7% and 0.129 / 8). A wrong
    inside test (ray parity through the sliver, a sign error) breaks one of the two."""
    shape = od.MeshShape.from_file(shared_data / "meshes" / "dragon.ply")
    points = np.random.default_rng(7).uniform(-1, 1, (40000, 3))
    w = shape.winding_number(points)
    assert np.all((np.abs(w) < 0.1) | (np.abs(np.abs(w) - 1) < 0.1))  # no point left unsure
    labels = shape.inside(points)
    volume = abs(shape.mesh().volume)
    assert 0.1 < volume < 0.16
    # Monte Carlo: 8 x the inside fraction has a standard error of about 0.005 here.
    assert 8 * labels.mean() == pytest.approx(volume, abs=0.02)


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".off", ".stl"])
def test_every_mesh_format_loads_and_labels_alike(tmp_path: pathlib.Path, suffix: str) -> None:
    """OBJ, PLY, OFF and STL (STL stores unshared vertices: loading merges them) give the same
    closed mesh, the same frame and the same labels."""
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    mesh.apply_translation([0.2, -0.1, 0.3])
    path = tmp_path / f"sphere{suffix}"
    mesh.export(path)
    shape = od.MeshShape.from_file(path)
    assert len(shape.faces) == len(mesh.faces) and shape.mesh().is_watertight
    np.testing.assert_allclose(shape.mesh().bounds, [[-0.95] * 3, [0.95] * 3], atol=0.05)
    points = np.random.default_rng(8).uniform(-1, 1, (5000, 3))
    np.testing.assert_array_equal(shape.inside(points), od.MeshShape(mesh).inside(points))
