"""Train a NeRF with any registered optimizer: ``python -m experiments.nerf``.

The paper's protocol (its Table 1, supplement Tables 5-6): a radiance field (GARF's 8x256
Gaussian field, sigma 0.1, or ``--activation relu_pe``) trained on random batches of 2048 pixel
rays, 128 stratified samples a ray, no hierarchical sampling, MSE on colour; reported: the
training PSNR (raw and smoothed as TensorBoard does), the test-view PSNR and SSIM, and the
iterations and optimizer time to reach ``--target-psnr`` (smoothed training PSNR). The examples
the harness shuffles are the training pixels (one epoch = one pass over every ray).

``--preset paper`` is the paper's scale (full resolution, 2048 rays, 128 samples, 8x256 field,
200K iterations; ESGD lr 1 decayed exponentially to 0.01; Adam 1e-4 decayed to 5e-6), for a GPU.
``--preset cpu`` (default) is a reduced scale for a laptop CPU. Explicit flags override the
preset. Examples::

    python -m experiments.nerf                                    # the synthetic spheres
    python -m experiments.nerf --scene ../shared/data/nerf/lego --optimizer adam
    python -m experiments.nerf --scene ../shared/data/nerf/fern --preset paper --target-psnr 25.38
    python -m experiments.nerf --out runs/nerf/gaussian-esgd --resume --iterations 4000
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import pathlib
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from experiments.harness import cli, entry
from experiments.harness.config import RunConfig, check_positive
from experiments.harness.errors import UsageError
from experiments.harness.metrics import psnr
from experiments.harness.train import SUMMARY_KEYS as HARNESS_SUMMARY_KEYS
from experiments.harness.train import write_summary
from experiments.tasks.field_factory import make_radiance_field
from experiments.tasks.nerf_data import Scene, load_scene, orbit_poses, scene_summary
from experiments.tasks.nerf_render import Rays, render_image, render_rays

NAME = "nerf"
ACTIVATIONS = ("gaussian", "relu_pe")
DEFAULT_OUT = "runs/nerf"
PRESETS = ("cpu", "paper")
#: TensorBoard's smoothing weight used for the "smoothed" training PSNR (the paper read its
#: Table 1-6 iterations off TensorBoard curves smoothed with 0.8-0.9).
SMOOTHING = 0.9
#: Keys of a NeRF run's ``summary.json`` beyond the harness's.
NERF_SUMMARY_KEYS = (
    "test_psnr", "test_ssim", "train_psnr", "train_psnr_smoothed", "target_psnr",
    "iterations_to_target", "optimizer_seconds_to_target",
)
SUMMARY_KEYS = (*NERF_SUMMARY_KEYS, *HARNESS_SUMMARY_KEYS)

#: Scale of each preset: image scale, rays, samples, iterations, field depth and width,
#: test views rendered at the end (``None``: all).
PRESET_SCALE: dict[str, dict[str, Any]] = {
    "paper": {"image_scale": 1.0, "rays": 2048, "samples": 128, "iterations": 200_000,
              "depth": 8, "width": 256, "test_views": None},
    "cpu": {"image_scale": 0.125, "rays": 256, "samples": 32, "iterations": 2000,
            "depth": 4, "width": 64, "test_views": 4},
}
#: The paper's learning rates: (initial, final of the exponential decay) per optimizer and
#: activation (supplement 7.8.1, 7.8.3, 7.8.4); other optimizers take the registry's constant.
PAPER_LR: dict[tuple[str, str], tuple[float, float]] = {
    ("esgd", "gaussian"): (1.0, 0.01),
    ("esgd_reference", "gaussian"): (1.0, 0.01),
    ("adam", "gaussian"): (1e-4, 5e-6),
    ("esgd", "relu_pe"): (0.1, 5e-3),
    ("esgd_reference", "relu_pe"): (0.1, 5e-3),
    ("adam", "relu_pe"): (1e-3, 1e-4),
}


@dataclasses.dataclass(frozen=True)
class NerfConfig(RunConfig):
    """A NeRF run: the harness's settings (``steps`` = iterations, ``batch_size`` = rays) plus
    the scene and its sampling.

    Attributes:
      scene: a Blender or LLFF scene directory; ``None`` for the synthetic spheres.
      image_scale: factor the images are resized by.
      samples: stratified samples per ray.
      ndc: LLFF in normalised device coordinates instead of inverse depth.
      llff_hold: LLFF test split every N-th frame (``None``: the last 10%, the paper's code).
      test_views: test views rendered for the final metrics (``None``: all).
      target_psnr: smoothed training PSNR whose iterations and optimizer time are reported.
      preset: the preset the settings came from (for the record).
    """

    TASK_KEYS: ClassVar[tuple[str, ...]] = ("scene", "image_scale", "samples", "ndc",
                                            "llff_hold")

    task: str = NAME
    out: str = DEFAULT_OUT
    scene: str | None = None
    image_scale: float = 0.125
    samples: int = 32
    ndc: bool = False
    llff_hold: int | None = None
    test_views: int | None = 4
    target_psnr: float | None = None
    preset: str = "cpu"

    def check(self) -> None:
        check_positive("samples", self.samples)
        check_positive("test_views", self.test_views, allow_none=True)
        check_positive("llff_hold", self.llff_hold, allow_none=True)
        if not 0 < self.image_scale <= 1:
            raise UsageError(f"--image-scale {self.image_scale}: expected a factor in (0, 1]")
        if self.activation not in ACTIVATIONS:
            raise UsageError(f"--activation {self.activation!r}: expected one of "
                             f"{', '.join(ACTIVATIONS)} (the radiance fields)")


def _apply_field(model: Any, params: Any, points: jax.Array, dirs: jax.Array) -> Any:
    return model.apply({"params": params}, points, dirs)


class NerfTask:
    """Fit a radiance field to a :class:`~experiments.tasks.nerf_data.Scene`; the examples
    are the training pixels (their rays), a batch is ``rays`` of them with fresh jitter."""

    name = NAME
    metric_name = "psnr"
    metric_label = "PSNR"
    metric_unit = "dB"

    def __init__(self, scene: Scene, model: Any, *, samples: int, seed: int = 0,
                 test_views: int | None = None, eval_chunk: int = 4096):
        self.scene = scene
        self.model = model
        self.samples = samples
        self.seed = seed
        self.eval_chunk = eval_chunk
        rays = scene.rays(scene.train_poses)
        self.origins = rays.origins.reshape(-1, 3)
        self.directions = rays.directions.reshape(-1, 3)
        self.pixels = scene.train_images.reshape(-1, 3)
        self.num_examples = self.pixels.shape[0]
        n_test = len(scene.test_images) if test_views is None else min(test_views,
                                                                        len(scene.test_images))
        # Evenly spread test views when only some are rendered.
        self.test_index = np.unique(np.linspace(0, len(scene.test_images) - 1, n_test).round()
                                    .astype(int))
        self.field = functools.partial(_apply_field, model)

    def fingerprint(self) -> dict[str, Any]:
        return {"scene_sha256": self.scene.fingerprint(),
                "shape": list(self.scene.train_images.shape)}

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        # The stratified jitter is a function of the batch, so a resumed run draws the same.
        rng = np.random.default_rng([self.seed, int(indices[0]), int(indices[-1]), len(indices)])
        return {"origins": self.origins[indices], "directions": self.directions[indices],
                "pixels": self.pixels[indices],
                "jitter": rng.random((len(indices), self.samples), dtype=np.float32)}

    def init_params(self, key: jax.Array) -> Any:
        return self.model.init(key, jnp.zeros((1, 3)), jnp.ones((1, 3)))["params"]

    def render_batch(self, params: Any, batch: dict[str, jax.Array]) -> jax.Array:
        """Colours ``(R, 3)`` of a training batch (stratified samples)."""
        s = self.scene
        out = render_rays(self.field, params, Rays(batch["origins"], batch["directions"]),
                          batch["jitter"], num_samples=self.samples, near=s.near, far=s.far,
                          inverse_depth=s.inverse_depth, background=s.background)
        return out["rgb"]

    def loss_fn(self, params: Any, batch: dict[str, jax.Array]) -> jax.Array:
        return jnp.mean((self.render_batch(params, batch) - batch["pixels"]) ** 2)

    def metric_from_loss(self, loss: float) -> float:
        return psnr(loss)

    def render_views(self, params: Any, poses: np.ndarray) -> dict[str, np.ndarray]:
        """Full renders ``(N, H, W, 3)`` (and depth, opacity) of cameras ``poses``."""
        s = self.scene
        return render_image(self.field, params, s.rays(poses), num_samples=self.samples,
                            near=s.near, far=s.far, inverse_depth=s.inverse_depth,
                            background=s.background, chunk=self.eval_chunk)

    def evaluate(self, params: Any) -> dict[str, float]:
        """Mean PSNR and SSIM (``dm_pix.ssim``) over the rendered test views."""
        import dm_pix

        target = self.scene.test_images[self.test_index]
        pred = np.clip(self.render_views(params, self.scene.test_poses[self.test_index])["rgb"],
                       0.0, 1.0)
        mse = np.mean((pred - target) ** 2, axis=(1, 2, 3))
        ssim = np.asarray(dm_pix.ssim(jnp.asarray(pred), jnp.asarray(target)))
        return {"psnr": float(np.mean([psnr(float(m)) for m in mse])),
                "ssim": float(np.mean(ssim)), "mse": float(np.mean(mse)),
                "views": len(self.test_index)}

    def write_outputs(self, params: Any, out_dir: pathlib.Path) -> list[str]:
        """``test_K.png``: render | ground truth | error map for each rendered test view;
        ``orbit.gif``: 12 frames around the scene (:func:`nerf_data.orbit_poses`)."""
        from experiments.harness.plots import save_rgb

        index = self.test_index
        pred = np.clip(self.render_views(params, self.scene.test_poses[index])["rgb"], 0, 1)
        names = []
        for k, (p, t) in enumerate(zip(pred, self.scene.test_images[index], strict=True)):
            err = np.abs(p - t).mean(-1, keepdims=True)
            err = np.repeat(np.clip(err / max(float(err.max()), 1e-6), 0, 1), 3, axis=-1)
            name = f"test_{index[k]:03d}.png"
            save_rgb(out_dir / name, np.concatenate([p, t, err], axis=1))
            names.append(name)
        frames = np.clip(self.render_views(params, orbit_poses(self.scene))["rgb"], 0, 1)
        save_gif(out_dir / "orbit.gif", frames)
        return [*names, "orbit.gif"]


def save_gif(path: pathlib.Path, frames: np.ndarray, duration_ms: int = 150) -> None:
    """Write ``(N, H, W, 3)`` frames in [0, 1] as a looping GIF."""
    from PIL import Image

    images = [Image.fromarray((255 * f + 0.5).astype(np.uint8)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)


def smoothed(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """TensorBoard's smoothing: a debiased exponential moving average with ``weight``."""
    out, last, n = [], 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(out[-1] if out else math.nan)
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        out.append(last / (1 - weight**n))
    return out


def first_reach(rows: Sequence[dict[str, Any]], target: float | None,
                weight: float = SMOOTHING) -> tuple[int | None, list[float]]:
    """The first logged step whose smoothed training PSNR is ``>= target`` (``None`` if never),
    and the smoothed series."""
    values = [r["train_psnr"] if r.get("train_psnr") is not None else math.nan for r in rows]
    smooth = smoothed(values, weight)
    if target is None:
        return None, smooth
    for row, value in zip(rows, smooth, strict=True):
        if math.isfinite(value) and value >= target:
            return int(row["step"]), smooth
    return None, smooth


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """The NeRF task's flags (scene, scale, sampling, preset)."""
    data = parser.add_argument_group("scene and sampling")
    data.add_argument("--scene", default=None,
                      help="Blender (transforms_*.json) or LLFF (poses_bounds.npy) scene "
                           "directory (default: synthetic spheres rendered analytically)")
    data.add_argument("--preset", default="cpu", choices=None,
                      help="cpu (reduced scale, default) or paper (full resolution, 2048 rays, "
                           "128 samples, 8x256, 200K iterations, the paper's decays)")
    data.add_argument("--iterations", type=int, default=None,
                      help="training iterations (default: the preset's)")
    data.add_argument("--rays", type=int, default=None,
                      help="rays per iteration (default: the preset's; paper 2048)")
    data.add_argument("--samples", type=int, default=None,
                      help="stratified samples per ray (default: the preset's; paper 128)")
    data.add_argument("--image-scale", type=float, default=None,
                      help="resize factor of the images (default: the preset's; paper 1)")
    data.add_argument("--test-views", type=int, default=None,
                      help="test views rendered for the final metrics (default: the preset's)")
    data.add_argument("--ndc", action="store_true",
                      help="LLFF: sample in normalised device coordinates, not inverse depth")
    data.add_argument("--llff-hold", type=int, default=None,
                      help="LLFF test split every N-th frame (default: the last 10%%, as the "
                           "paper's code; NeRF uses 8)")


def parser(prog: str = "python -m experiments.nerf", description: str | None = None
           ) -> cli.OneLineParser:
    """The parser of ``python -m experiments.nerf``."""
    return entry.task_parser(add_data_args, prog, description, default_out=DEFAULT_OUT,
                             extra_args=_add_target_arg)


def _add_target_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target-psnr", dest="target", type=float, default=None,
                   help="smoothed training PSNR whose iterations and optimizer time are "
                        "reported (Table 1: lego 26.44, fern 25.38)")


def make_config(args: argparse.Namespace, *, activation: str | None = None,
                optimizer: str | None = None, out: str | None = None) -> NerfConfig:
    """Resolve parsed flags and the preset into a :class:`NerfConfig`.

    Without ``--lr`` ESGD and Adam take the paper's exponential decays (:data:`PAPER_LR`) over
    the run's iterations (both presets); other optimizers the registry's constant rate.
    ``--rays`` is the batch size, ``--iterations`` the run's ``steps``.
    """
    preset = getattr(args, "preset", "cpu")
    if preset not in PRESETS:
        raise UsageError(f"--preset {preset!r}: expected one of {', '.join(PRESETS)}")
    scale = PRESET_SCALE[preset]

    def pick(key: str) -> Any:
        value = getattr(args, key, None)
        return scale[key] if value is None else value

    settings = cli.run_settings(args, activation=activation, optimizer=optimizer, out=out,
                                default_out=DEFAULT_OUT)
    iterations, rays = pick("iterations"), pick("rays")
    check_positive("iterations", iterations)
    check_positive("rays", rays)
    settings.update(steps=iterations, batch_size=rays,
                    depth=args.depth or scale["depth"], width=args.width or scale["width"])
    if args.batch_size is not None:
        raise UsageError("--batch-size: the NeRF task takes --rays")
    if args.log_every is None:
        settings["log_every"] = max(1, min(100, iterations // 50))
    if args.eval_every == 10:  # the harness's epoch-based default: NeRF evaluates at the end
        settings["eval_every"] = 0
    key = (settings["optimizer"], settings["activation"])
    if args.lr is None and key in PAPER_LR:
        start, final = PAPER_LR[key]
        settings.update(learning_rate=start, schedule="exponential",
                        final_lr=args.final_lr or final)
    test_views = getattr(args, "test_views", None)
    return NerfConfig(
        scene=args.scene, image_scale=pick("image_scale"), samples=pick("samples"),
        ndc=args.ndc, llff_hold=args.llff_hold,
        test_views=test_views if test_views is not None else scale["test_views"],
        target_psnr=getattr(args, "target", None), preset=preset, **settings,
    )


def report_settings(config: NerfConfig) -> dict[str, Any]:
    """The lines of a comparison report that describe the scene and sampling."""
    return {
        "scene": config.scene or "synthetic spheres (analytic)",
        "image scale": config.image_scale,
        "rays per step": config.batch_size,
        "samples per ray": config.samples,
        "iterations": config.steps,
        "preset": config.preset,
    }


#: What a comparison report says about the metrics.
REPORT_NOTES = (
    "Final PSNR is the mean PSNR of the rendered test views (bin-centre samples) at the end.",
    "Train PSNR is -10 log10 of the mean MSE of each log window of random ray batches.",
)


def prepare(config: NerfConfig) -> NerfTask:
    """Validate ``config`` and load its scene; every bad input raises :class:`UsageError`."""
    entry.check_config(config, NAME)
    model = make_radiance_field(config.activation, config.depth, config.width)
    scene = load_scene(config.scene, image_scale=config.image_scale, ndc=config.ndc,
                       llff_hold=config.llff_hold)
    task = NerfTask(scene, model, samples=config.samples, seed=config.seed,
                    test_views=config.test_views)
    if config.batch_size > task.num_examples:
        raise UsageError(f"--rays {config.batch_size}: more than the {task.num_examples} "
                         "training pixels; expected at most that")
    return task


def nerf_summary(task: NerfTask, config: NerfConfig, summary: dict[str, Any]) -> dict[str, Any]:
    """The NeRF metrics of a finished run, from its summary and ``metrics.csv``: test PSNR and
    SSIM, last raw and smoothed training PSNR, and iterations and optimizer seconds to
    ``target_psnr`` (the optimizer time is the measured optimizer seconds per step times the
    iterations; ``None`` when the target was not reached or not asked for)."""
    from experiments.harness.metrics import read_metrics

    rows = [r for r in read_metrics(pathlib.Path(config.out) / "metrics.csv")
            if r.get("train_psnr") is not None]
    reached, smooth = first_reach(rows, config.target_psnr)
    per_step = summary.get("optimizer_time_per_step_s")
    return {
        "test_psnr": summary.get("final_psnr"),
        "test_ssim": summary.get("final_eval_ssim"),
        "train_psnr": rows[-1]["train_psnr"] if rows else None,
        "train_psnr_smoothed": smooth[-1] if smooth else None,
        "smoothing": SMOOTHING,
        "target_psnr": config.target_psnr,
        "iterations_to_target": reached,
        "optimizer_seconds_to_target": (reached * per_step
                                        if reached is not None and per_step else None),
        "scene_info": scene_summary(task.scene),
    }


def finish(task: NerfTask, config: NerfConfig, summary: dict[str, Any]) -> dict[str, Any]:
    """The harness's summary of a finished run with the NeRF metrics (:func:`nerf_summary`)
    added, written back to ``summary.json``; :func:`run` and ``experiments.compare --task
    nerf`` both call it."""
    summary = {**nerf_summary(task, config, summary), **summary}
    write_summary(pathlib.Path(config.out), summary)
    return summary


def run(config: NerfConfig, **kwargs: Any) -> dict[str, Any]:
    """Train a NeRF as ``config`` says; returns the summary with the NeRF metrics (also
    written to ``summary.json``)."""
    return entry.run_task(prepare, config, finish=finish, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m experiments.nerf``; returns the exit code."""
    return entry.task_main(argv, parser=parser, doc=__doc__, make_config=make_config, run=run,
                           report=_report)


def _report(summary: dict[str, Any], config: NerfConfig) -> None:
    """The NeRF metrics of a finished run, one line."""
    reached = summary["iterations_to_target"]
    print(f"test PSNR {summary['test_psnr']:.2f} dB, SSIM {summary['test_ssim']:.3f}; "
          f"train PSNR {summary['train_psnr']:.2f} dB (smoothed "
          f"{summary['train_psnr_smoothed']:.2f})"
          + (f"; target {config.target_psnr} dB reached at iteration {reached}"
             if config.target_psnr is not None else ""))


if __name__ == "__main__":
    sys.exit(main())
