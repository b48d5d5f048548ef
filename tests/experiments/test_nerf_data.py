"""NeRF scene loaders: Blender and LLFF on tiny file sets written here and on the shared
scenes, the analytic synthetic scene, and every bad input as one-line UsageErrors."""

import json
import math
import pathlib

import numpy as np
import pytest
from PIL import Image

from experiments.harness.errors import UsageError
from experiments.tasks.nerf_data import (
    average_pose,
    llff_poses,
    load_scene,
    look_at,
    render_spheres,
    synthetic_scene,
)

ANGLE = 0.69


def _rgba(value: float, alpha: float, size=(8, 8)) -> Image.Image:
    a = np.zeros((*size, 4), np.uint8)
    a[..., :3] = round(255 * value)
    a[..., 3] = round(255 * alpha)
    return Image.fromarray(a, "RGBA")


def _blender(root: pathlib.Path, n_train=3, n_test=2, size=(8, 8)) -> pathlib.Path:
    for split, n in (("train", n_train), ("test", n_test), ("val", 1)):
        (root / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for k in range(n):
            _rgba(0.2, 0.5 if k == 0 else 1.0, size).save(root / split / f"r_{k}.png")
            pose = look_at(np.array([4.0 * math.cos(k), 4.0 * math.sin(k), 1.0]))
            frames.append({"file_path": f"./{split}/r_{k}", "transform_matrix": pose.tolist()})
        (root / f"transforms_{split}.json").write_text(
            json.dumps({"camera_angle_x": ANGLE, "frames": frames}))
    return root


def test_blender_loader_on_a_tiny_scene(tmp_path):
    scene = load_scene(str(_blender(tmp_path / "b")))
    assert scene.kind == "blender" and (scene.near, scene.far) == (2.0, 6.0)
    assert scene.train_images.shape == (3, 8, 8, 3) and scene.test_images.shape == (2, 8, 8, 3)
    assert scene.focal == pytest.approx(0.5 * 8 / math.tan(0.5 * ANGLE), rel=1e-6)
    # RGBA over white: 0.2 at alpha 0.5 -> 0.2 * 0.5 + 0.5 (to 8-bit rounding).
    np.testing.assert_allclose(scene.train_images[0], 51 / 255 * 128 / 255 + 1 - 128 / 255,
                               atol=1e-6)
    np.testing.assert_allclose(scene.train_images[1], 51 / 255, atol=1e-6)
    np.testing.assert_allclose(scene.train_poses[1], look_at(np.array(
        [4 * math.cos(1), 4 * math.sin(1), 1.0])), atol=1e-6)
    half = load_scene(str(tmp_path / "b"), image_scale=0.5)
    assert half.train_images.shape == (3, 4, 4, 3)
    assert half.focal == pytest.approx(scene.focal / 2, rel=1e-6)


def _llff(root: pathlib.Path, n=10, size=(6, 8), full=(600, 800), focal=500.0):
    """Cameras on a line looking down -z (OpenGL), stored in LLFF's [down, right, back] order."""
    (root / "images_8").mkdir(parents=True)
    rows = []
    rng = np.random.default_rng(0)
    poses = []
    for k in range(n):
        c2w = look_at(np.array([0.3 * k, 0.1 * k, 5.0]), np.array([0.3 * k, 0.1 * k + 1.0, 0.0]),
                      up=(0.0, 1.0, 0.0))
        poses.append(c2w)
        x, y, z, t = c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3]
        raw = np.stack([-y, x, z, t, np.array([full[0], full[1], focal])], axis=1)
        rows.append(np.concatenate([raw.ravel(), [2.0 + k * 0.1, 20.0]]))
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
            root / "images_8" / f"im{k:03d}.png")
    np.save(root / "poses_bounds.npy", np.asarray(rows))
    return root, np.asarray(poses)


def test_llff_loader_on_a_tiny_scene(tmp_path):
    root, opengl = _llff(tmp_path / "l")
    scene = load_scene(str(root))
    assert scene.kind == "llff" and scene.inverse_depth and not scene.ndc
    # The paper's code: the last 10% of the frames are the test split.
    assert scene.train_images.shape == (9, 6, 8, 3) and scene.test_images.shape == (1, 6, 8, 3)
    first = np.asarray(Image.open(root / "images_8" / "im009.png"), np.float32) / 255
    np.testing.assert_allclose(scene.test_images[0], first, atol=1e-6)
    assert scene.focal == pytest.approx(500.0 * 8 / 800)
    # Reordered to OpenGL, scaled by 1 / (0.75 min bound), recentred: the relative pose of two
    # cameras is the original one with its translation scaled.
    poses = np.concatenate([scene.train_poses, scene.test_poses])
    scale = 1 / (0.75 * 2.0)
    rel = np.linalg.inv(poses[0]) @ poses[5]
    ref = np.linalg.inv(opengl[0]) @ opengl[5]
    np.testing.assert_allclose(rel[:3, :3], ref[:3, :3], atol=1e-5)
    np.testing.assert_allclose(rel[:3, 3], scale * ref[:3, 3], atol=1e-5)
    np.testing.assert_allclose(average_pose(poses[:, :3]), np.eye(4), atol=1e-5)
    every_8th = load_scene(str(root), llff_hold=8)
    assert len(every_8th.test_images) == 2  # frames 0 and 8


def test_llff_pose_reorder_alone():
    c2w = look_at(np.array([0.0, 0.0, 3.0]), up=(0.0, 1.0, 0.0))
    x, y, z, t = c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3]
    raw = np.stack([-y, x, z, t, np.array([6.0, 8.0, 5.0])], axis=1)
    row = np.concatenate([raw.ravel(), [1.0, 4.0]])
    poses, bounds, hwf = llff_poses(np.stack([row, row]))
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-6)  # one camera: its own average
    np.testing.assert_allclose(bounds[0], [1 / 0.75, 4 / 0.75])
    np.testing.assert_allclose(hwf, [6.0, 8.0, 5.0])


def test_synthetic_scene_is_rendered_exactly():
    scene = synthetic_scene(size=16, num_train=3, num_test=2)
    assert scene.train_images.shape == (3, 16, 16, 3) and scene.kind == "synthetic"
    coloured = (scene.train_images < 0.99).any(-1).mean()
    assert 0.1 < coloured < 0.9  # spheres and background both in view
    rays = scene.rays(scene.test_poses[:1])
    np.testing.assert_array_equal(render_spheres(rays)[0], scene.test_images[0])
    from experiments.tasks.nerf_data import Rays
    hit = render_spheres(Rays(np.array([[0.0, 0.0, 4.0]]), np.array([[0.0, 0.0, -1.0]])))
    np.testing.assert_allclose(hit[0], [0.85, 0.2, 0.15])  # the central red sphere


def _error(path, **kw) -> str:
    with pytest.raises(UsageError) as info:
        load_scene(str(path), **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_scenes(tmp_path):
    assert "no such directory" in _error(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    assert "neither transforms_train.json" in _error(tmp_path / "empty")
    assert "--image-scale 2" in _error(tmp_path / "empty", image_scale=2)

    b = _blender(tmp_path / "b")
    (b / "transforms_test.json").unlink()
    assert "transforms_test.json is missing" in _error(b)
    b = _blender(tmp_path / "b2")
    (b / "transforms_train.json").write_text("{not json")
    assert "transforms_train.json is malformed" in _error(b)
    b = _blender(tmp_path / "b3")
    (b / "train" / "r_1.png").unlink()
    assert "r_1.png is missing" in _error(b)
    b = _blender(tmp_path / "b4")
    _rgba(0.3, 1.0, (8, 6)).save(b / "train" / "r_2.png")
    assert "different sizes" in _error(b)
    b = _blender(tmp_path / "b5")
    meta = json.loads((b / "transforms_train.json").read_text())
    (b / "transforms_train.json").write_text(json.dumps({**meta, "w": 16, "h": 16}))
    assert "w=16, h=16" in _error(b)

    root, _ = _llff(tmp_path / "l1")
    (root / "images_8" / "im003.png").unlink()
    assert "holds 9 images but poses_bounds.npy has 10 poses" in _error(root)
    root, _ = _llff(tmp_path / "l2", full=(800, 600))
    assert "aspect ratio" in _error(root)
    root, _ = _llff(tmp_path / "l3")
    np.save(root / "poses_bounds.npy", np.zeros((10, 15)))
    assert "shape (10, 15); expected N x 17" in _error(root)
    root, _ = _llff(tmp_path / "l4")
    (root / "poses_bounds.npy").write_bytes(b"garbage")
    assert "poses_bounds.npy is unreadable" in _error(root)


def test_shared_lego(shared_data):
    scene = load_scene(str(shared_data / "nerf" / "lego"), image_scale=0.25)
    assert scene.train_images.shape == (100, 100, 100, 3)
    assert scene.focal == pytest.approx(0.25 * 0.5 * 400 / math.tan(0.5 * 0.6911112070083618),
                                        rel=1e-6)
    # Object on a white background; cameras on a sphere of radius about 4 around the origin.
    assert 0.5 < float(scene.train_images.mean()) < 1.0
    radii = np.linalg.norm(scene.train_poses[:, :3, 3], axis=-1)
    np.testing.assert_allclose(radii, 4.03, atol=0.05)
    assert len(scene.test_images) >= 1


def test_shared_fern(shared_data):
    scene = load_scene(str(shared_data / "nerf" / "fern"))
    assert scene.train_images.shape[1:] == (378, 504, 3)
    assert len(scene.train_images) + len(scene.test_images) == 20
    assert len(scene.test_images) == 2  # the last 10%
    # Forward-facing: every camera looks down about -z after recentring.
    axes = scene.train_poses[:, :3, 2]
    assert np.all(axes[:, 2] > 0.9)


def test_llff_in_ndc_and_ndc_refused_for_blender(tmp_path):
    """``--ndc`` (the option beside the paper's inverse-depth sampling): rays start on the near
    plane z = -1 of NDC and reach z = 1 at infinity; sampled over [0, 1], uniform in t; the
    same cameras and images as without it. A Blender scene refuses it in one line."""
    root, _ = _llff(tmp_path / "l")
    plain = load_scene(str(root))
    scene = load_scene(str(root), ndc=True)
    assert scene.ndc and not scene.inverse_depth and (scene.near, scene.far) == (0.0, 1.0)
    np.testing.assert_array_equal(scene.train_images, plain.train_images)
    np.testing.assert_array_equal(scene.train_poses, plain.train_poses)
    rays = scene.rays(scene.test_poses)
    np.testing.assert_allclose(rays.origins[..., 2], -1.0, atol=1e-5)
    np.testing.assert_allclose((rays.origins + rays.directions)[..., 2], 1.0, atol=1e-5)
    assert not np.allclose(rays.directions, plain.rays(plain.test_poses).directions)
    assert "--ndc: only for LLFF scenes" in _error(_blender(tmp_path / "b"), ndc=True)
