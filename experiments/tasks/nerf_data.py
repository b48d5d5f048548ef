"""NeRF scenes: Blender synthetic, LLFF forward-facing, and a synthetic scene rendered analytically.

Every loader returns a :class:`Scene`: train and test images in ``[0, 1]`` with their OpenGL
camera-to-world matrices, one pinhole focal length, and how rays are sampled (near, far, inverse
depth, background). Conventions follow google/mipnerf's ``internal/datasets.py``:

- Blender (``transforms_{train,val,test}.json``): RGBA composited over white,
  ``focal = 0.5 W / tan(0.5 camera_angle_x)``, near 2, far 6, the matrices used as given.
- LLFF (``poses_bounds.npy``, N x 17: a 3x5 ``[R | t | (H, W, f)]`` per image and the near and
  far bounds): columns reordered ``[p1, -p0, p2, t]`` (LLFF's "down, right, back" to OpenGL's
  "right, up, back"), translations and bounds scaled by ``1 / (0.75 min bound)``, poses
  recentred on their average; the stored focal is for the full-size photos and is scaled to the
  image size used. Without NDC the paper's code (GARF, from BARF) samples depth 1 to infinity
  uniformly in inverse depth; its test split is the last 10% of the frames (NeRF's is every 8th:
  ``llff_hold=8``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pathlib
from typing import Any

import numpy as np

from experiments.harness.errors import UsageError
from experiments.tasks.nerf_render import Rays, camera_rays

SYNTHETIC = "synthetic"
BLENDER_NEAR, BLENDER_FAR = 2.0, 6.0
LLFF_NEAR, LLFF_FAR = 1.0, 1e10  # BARF/GARF: inverse depth from 1 to 0
LLFF_IMAGE_DIRS = ("images_8", "images_4", "images_2", "images")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclasses.dataclass
class Scene:
    """A NeRF scene ready for training.

    Attributes:
      name: what it is (a path or ``"synthetic"``).
      kind: ``"blender"``, ``"llff"`` or ``"synthetic"``.
      train_images: ``(N, H, W, 3)`` float32 in [0, 1].
      train_poses: ``(N, 4, 4)`` OpenGL camera-to-world.
      test_images: ``(M, H, W, 3)``.
      test_poses: ``(M, 4, 4)``.
      focal: focal length in pixels at this image size.
      near: first sample distance.
      far: last sample distance.
      inverse_depth: sample uniformly in inverse depth (LLFF without NDC).
      background: grey level behind the scene (1: white).
      ndc: rays in normalised device coordinates (then near 0, far 1).
      notes: what the loader did that a report should say (e.g. a partial test split).
    """

    name: str
    kind: str
    train_images: np.ndarray
    train_poses: np.ndarray
    test_images: np.ndarray
    test_poses: np.ndarray
    focal: float
    near: float
    far: float
    inverse_depth: bool = False
    background: float = 1.0
    ndc: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def width(self) -> int:
        return int(self.train_images.shape[2])

    def rays(self, poses: np.ndarray) -> Rays:
        """Rays ``(N, H, W, 3)`` of the given cameras at this scene's size (NDC if set)."""
        from experiments.tasks.nerf_render import ndc_rays

        out = [camera_rays(p, self.height, self.width, self.focal) for p in poses]
        rays = Rays(np.stack([r.origins for r in out]), np.stack([r.directions for r in out]))
        if self.ndc:
            rays = ndc_rays(rays, self.height, self.width, self.focal)
        return rays

    def fingerprint(self) -> str:
        """A short hash of the training images and poses."""
        h = hashlib.sha256()
        for a in (self.train_images, self.train_poses, self.test_poses):
            h.update(np.ascontiguousarray(a, np.float32).tobytes())
        return h.hexdigest()[:16]


def load_scene(path: str | None, *, image_scale: float = 1.0, ndc: bool = False,
               llff_hold: int | None = None, synthetic_size: int = 256) -> Scene:
    """Load the scene at ``path`` (Blender or LLFF, told apart by their camera files).

    Args:
      path: a scene directory, or ``None`` for :func:`synthetic_scene`.
      image_scale: factor in ``(0, 1]`` the images are resized by (area averaging).
      ndc: LLFF only: sample in normalised device coordinates instead of inverse depth.
      llff_hold: LLFF test split: every ``llff_hold``-th frame (NeRF), or ``None`` for the last
        10% of the frames (the paper's code).
      synthetic_size: image side of the synthetic scene before ``image_scale`` (256, so the
        cpu preset's 0.125 gives 32x32).

    Raises:
      UsageError: naming the missing or malformed file, or the bad value.
    """
    if not 0 < image_scale <= 1:
        raise UsageError(f"--image-scale {image_scale}: expected a factor in (0, 1]")
    if path is None or path == SYNTHETIC:
        size = max(4, round(synthetic_size * image_scale))
        return synthetic_scene(size=size)
    root = pathlib.Path(path)
    if not root.is_dir():
        raise UsageError(f"--scene {path}: no such directory; expected a Blender scene "
                         "(transforms_*.json) or an LLFF scene (poses_bounds.npy)")
    if (root / "poses_bounds.npy").exists():
        return load_llff(root, image_scale=image_scale, ndc=ndc, hold=llff_hold)
    if (root / "transforms_train.json").exists():
        if ndc:
            raise UsageError("--ndc: only for LLFF scenes; a Blender scene is 360 degrees")
        return load_blender(root, image_scale=image_scale)
    raise UsageError(f"--scene {path}: has neither transforms_train.json (Blender) nor "
                     "poses_bounds.npy (LLFF)")


def _read_image(file: pathlib.Path, what: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not file.is_file():
        raise UsageError(f"{what}: image {file} is missing")
    try:
        with Image.open(file) as im:
            im.load()
            image = im.convert("RGBA") if im.mode in ("RGBA", "LA", "P") else im.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"{what}: image {file} is unreadable ({exc.__class__.__name__})") from None
    return np.asarray(image, np.float32) / 255.0


def _resize(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-average resize of ``(N, h, w, C)`` float images (PIL's box filter)."""
    from PIL import Image

    if images.shape[1:3] == (height, width):
        return images
    out = [np.stack([np.asarray(Image.fromarray(im[..., c], mode="F").resize(
        (width, height), Image.Resampling.BOX)) for c in range(im.shape[-1])], axis=-1)
        for im in images]
    return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)


def _scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    return max(1, round(height * scale)), max(1, round(width * scale))


def load_blender(root: pathlib.Path, *, image_scale: float = 1.0) -> Scene:
    """A Blender synthetic scene: train split from ``transforms_train.json``, test from
    ``transforms_test.json``; RGBA over white; near 2, far 6."""
    splits = {}
    notes: list[str] = []
    camera_angle = None
    for split in ("train", "test"):
        file = root / f"transforms_{split}.json"
        what = f"--scene {root}: {file.name}"
        if not file.is_file():
            raise UsageError(f"{what} is missing; expected transforms_train.json and "
                             "transforms_test.json")
        try:
            meta = json.loads(file.read_text())
            angle = float(meta["camera_angle_x"])
            frames = meta["frames"]
            paths = [str(f["file_path"]) for f in frames]
            poses = np.asarray([f["transform_matrix"] for f in frames], np.float64)
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{what} is malformed ({exc.__class__.__name__}: {exc}); expected "
                             "camera_angle_x and frames with file_path and transform_matrix"
                             ) from None
        if not paths or poses.shape[1:] != (4, 4) or not np.isfinite(poses).all():
            raise UsageError(f"{what} is malformed: expected frames with 4x4 transform_matrix")
        if not 0 < angle < math.pi:
            raise UsageError(f"{what}: camera_angle_x {angle}: expected an angle in (0, pi)")
        camera_angle = angle if camera_angle is None else camera_angle
        files = [(root / p).with_suffix(".png") if not p.lower().endswith(".png") else root / p
                 for p in paths]
        if split == "test":  # a scene may ship a subset of its test views (lego here: every 8th)
            present = [k for k, f in enumerate(files) if f.is_file()]
            if present and len(present) < len(files):
                notes.append(f"test: the {len(present)} of {len(files)} frames of "
                             f"{file.name} whose image is present")
                files, poses = [files[k] for k in present], poses[present]
        images = [_read_image(f, what) for f in files]
        shapes = {im.shape for im in images}
        if len(shapes) != 1:
            raise UsageError(f"{what}: the {len(images)} images have different sizes "
                             f"{sorted(s[:2] for s in shapes)}; expected one size")
        stack = np.stack(images)
        if "w" in meta and "h" in meta and (int(meta["h"]), int(meta["w"])) != stack.shape[1:3]:
            raise UsageError(f"{what}: the images are {stack.shape[2]}x{stack.shape[1]} but the "
                             f"file says w={meta['w']}, h={meta['h']}")
        if stack.shape[-1] == 4:
            stack = stack[..., :3] * stack[..., 3:] + (1.0 - stack[..., 3:])
        splits[split] = (stack, poses.astype(np.float32))
    (train, train_poses), (test, test_poses) = splits["train"], splits["test"]
    if train.shape[1:] != test.shape[1:]:
        raise UsageError(f"--scene {root}: train images are {train.shape[1:3]} but test images "
                         f"{test.shape[1:3]}; expected one size")
    height, width = train.shape[1:3]
    new_h, new_w = _scaled_size(height, width, image_scale)
    focal = 0.5 * width / math.tan(0.5 * camera_angle) * new_w / width
    return Scene(str(root), "blender", _resize(train, new_h, new_w), train_poses,
                 _resize(test, new_h, new_w), test_poses, focal, BLENDER_NEAR, BLENDER_FAR,
                 notes=notes)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def average_pose(poses: np.ndarray) -> np.ndarray:
    """The ``(4, 4)`` average camera of ``(N, 3, 4)`` poses: mean centre, mean viewing axis,
    mean up vector orthogonalised (LLFF's ``poses_avg``)."""
    center = poses[:, :3, 3].mean(0)
    z = _normalize(poses[:, :3, 2].sum(0))
    up = poses[:, :3, 1].sum(0)
    x = _normalize(np.cross(up, z))
    y = _normalize(np.cross(z, x))
    out = np.eye(4)
    out[:3] = np.stack([x, y, z, center], axis=1)
    return out


def llff_poses(poses_bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenGL camera-to-world poses from an LLFF ``poses_bounds`` array.

    Returns:
      ``(poses (N, 4, 4), bounds (N, 2), hwf (3,))``: poses reordered, scaled by
      ``1 / (0.75 min bound)`` and recentred; bounds scaled alike; the full-size height, width
      and focal as stored.
    """
    raw = poses_bounds[:, :15].reshape(-1, 3, 5).astype(np.float64)
    bounds = poses_bounds[:, 15:].astype(np.float64)
    hwf = raw[0, :, 4]
    poses = np.concatenate([raw[:, :, 1:2], -raw[:, :, 0:1], raw[:, :, 2:4]], axis=2)
    scale = 1.0 / (0.75 * bounds.min())
    poses[:, :, 3] *= scale
    bounds = bounds * scale
    full = np.tile(np.eye(4), (poses.shape[0], 1, 1))
    full[:, :3] = poses
    full = np.linalg.inv(average_pose(poses)) @ full
    return full, bounds, hwf


def load_llff(root: pathlib.Path, *, image_scale: float = 1.0, ndc: bool = False,
              hold: int | None = None) -> Scene:
    """An LLFF scene from ``poses_bounds.npy`` and the smallest of ``images_8``, ``images_4``,
    ``images_2``, ``images`` present (the images are sorted by name, one per pose)."""
    file = root / "poses_bounds.npy"
    what = f"--scene {root}: {file.name}"
    try:
        arr = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{what} is unreadable ({exc.__class__.__name__}); expected an N x 17 "
                         "float array") from None
    if arr.ndim != 2 or arr.shape[1] != 17 or arr.shape[0] < 2 or not np.isfinite(arr).all():
        raise UsageError(f"{what} has shape {arr.shape}; expected N x 17 finite values, N >= 2")
    if (arr[:, 15:] <= 0).any():
        raise UsageError(f"{what}: near/far bounds must be positive")
    image_dir = next((root / d for d in LLFF_IMAGE_DIRS if (root / d).is_dir()), None)
    if image_dir is None:
        raise UsageError(f"--scene {root}: no image folder; expected one of "
                         f"{', '.join(LLFF_IMAGE_DIRS)}")
    files = sorted(f for f in image_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) != arr.shape[0]:
        raise UsageError(f"--scene {root}: {image_dir.name} holds {len(files)} images but "
                         f"{file.name} has {arr.shape[0]} poses; expected one image per pose")
    images = [_read_image(f, f"--scene {root}")[..., :3] for f in files]
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise UsageError(f"--scene {root}: the images in {image_dir.name} have different sizes "
                         f"{sorted(s[:2] for s in shapes)}; expected one size")
    poses, bounds, (full_h, full_w, full_f) = llff_poses(arr)
    height, width = images[0].shape[:2]
    if abs(full_h / full_w - height / width) > 0.02 * (full_h / full_w):
        raise UsageError(f"--scene {root}: the images are {width}x{height} but {file.name} "
                         f"says {full_w:g}x{full_h:g}; expected the same aspect ratio")
    stack = np.stack(images)
    new_h, new_w = _scaled_size(height, width, image_scale)
    focal = float(full_f) * new_w / float(full_w)
    n = len(files)
    if hold is None:
        n_test = max(1, int(n * 0.1))
        test = np.arange(n - n_test, n)
    else:
        test = np.arange(0, n, hold)
    train = np.setdiff1d(np.arange(n), test)
    near, far = (0.0, 1.0) if ndc else (LLFF_NEAR, LLFF_FAR)
    return Scene(str(root), "llff", _resize(stack[train], new_h, new_w),
                 poses[train].astype(np.float32), _resize(stack[test], new_h, new_w),
                 poses[test].astype(np.float32), focal, near, far,
                 inverse_depth=not ndc, background=0.0 if ndc else 1.0, ndc=ndc)


#: The synthetic scene: spheres (centre, radius, RGB), seen from a sphere of cameras of radius 4
#: as the Blender scenes (near 2, far 6).
SPHERES: tuple[tuple[tuple[float, float, float], float, tuple[float, float, float]], ...] = (
    ((0.0, 0.0, 0.0), 0.6, (0.85, 0.2, 0.15)),
    ((0.8, 0.3, 0.2), 0.35, (0.15, 0.7, 0.25)),
    ((-0.5, -0.7, 0.3), 0.4, (0.2, 0.3, 0.9)),
    ((-0.3, 0.6, -0.6), 0.3, (0.95, 0.8, 0.1)),
)


def look_at(eye: np.ndarray, target: np.ndarray | None = None,
            up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """The ``(4, 4)`` OpenGL camera-to-world matrix of a camera at ``eye`` looking at
    ``target`` (default the origin; its -z axis towards the target, +y towards ``up``)."""
    target = np.zeros(3) if target is None else np.asarray(target, np.float64)
    back = _normalize(np.asarray(eye, np.float64) - target)
    right = _normalize(np.cross(np.asarray(up, np.float64), back))
    cam_up = np.cross(back, right)
    out = np.eye(4)
    out[:3] = np.stack([right, cam_up, back, eye], axis=1)
    return out


def render_spheres(rays: Rays, background: float = 1.0) -> np.ndarray:
    """Exact colour of the first sphere of :data:`SPHERES` each ray hits (``background`` else)."""
    o = np.asarray(rays.origins, np.float64)
    d = np.asarray(rays.directions, np.float64)
    best = np.full(o.shape[:-1], np.inf)
    color = np.full(o.shape, background)
    for centre, radius, rgb in SPHERES:
        oc = o - np.asarray(centre)
        a = np.sum(d * d, -1)
        b = np.sum(oc * d, -1)
        c = np.sum(oc * oc, -1) - radius**2
        disc = b * b - a * c
        t = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
        hit = (t > 0) & (t < best)
        best = np.where(hit, t, best)
        color[hit] = rgb
    return color.astype(np.float32)


def synthetic_scene(*, size: int = 32, num_train: int = 24, num_test: int = 4) -> Scene:
    """Coloured spheres rendered exactly through the same camera model (no file needed).

    Cameras at radius 4 on a spiral over the upper hemisphere (train) and between them (test),
    ``camera_angle_x = 0.69`` as lego, white background, near 2, far 6.
    """

    def poses(n: int, offset: float) -> np.ndarray:
        k = np.arange(n) + offset
        azimuth = 2 * np.pi * k * 0.618034
        elevation = np.deg2rad(10 + 60 * (k / max(n, 1)))
        eyes = 4.0 * np.stack([np.cos(elevation) * np.cos(azimuth),
                               np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=-1)
        return np.stack([look_at(e) for e in eyes]).astype(np.float32)

    focal = 0.5 * size / math.tan(0.5 * 0.6911112)
    train_poses, test_poses = poses(num_train, 0.0), poses(num_test, 0.5)

    def images(p: np.ndarray) -> np.ndarray:
        return np.stack([render_spheres(camera_rays(c, size, size, focal)) for c in p])

    return Scene(SYNTHETIC, SYNTHETIC, images(train_poses), train_poses, images(test_poses),
                 test_poses, focal, BLENDER_NEAR, BLENDER_FAR)


def orbit_poses(scene: Scene, n: int = 12) -> np.ndarray:
    """``(n, 4, 4)`` cameras for a turntable video: around the origin at the training cameras'
    mean distance and elevation (Blender, synthetic), or a small circle in the plane of the
    recentred forward-facing cameras (LLFF)."""
    angles = 2 * np.pi * np.arange(n) / n
    if scene.kind == "llff":
        radius = 0.5 * float(np.linalg.norm(scene.train_poses[:, :2, 3], axis=-1).mean())
        out = np.tile(np.eye(4), (n, 1, 1))
        out[:, 0, 3], out[:, 1, 3] = radius * np.cos(angles), radius * np.sin(angles)
        return out.astype(np.float32)
    centres = scene.train_poses[:, :3, 3].astype(np.float64)
    radius = float(np.linalg.norm(centres, axis=-1).mean())
    elevation = float(np.arcsin(np.clip(centres[:, 2] / np.linalg.norm(centres, axis=-1),
                                        -1, 1)).mean())
    eyes = radius * np.stack([np.cos(elevation) * np.cos(angles),
                              np.cos(elevation) * np.sin(angles),
                              np.full(n, np.sin(elevation))], axis=-1)
    return np.stack([look_at(e) for e in eyes]).astype(np.float32)


def scene_summary(scene: Scene) -> dict[str, Any]:
    """What a report says about the scene."""
    return {"scene": scene.name, "kind": scene.kind,
            "size": f"{scene.width}x{scene.height}", "train_views": len(scene.train_images),
            "test_views": len(scene.test_images), "focal": round(scene.focal, 3),
            "near": scene.near, "far": scene.far, "inverse_depth": scene.inverse_depth,
            "ndc": scene.ndc, "notes": scene.notes}
