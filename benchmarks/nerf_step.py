"""NeRF step time: ESGD relative to Adam at the paper's scale, measured in one process.

The paper's NeRF setting (``python -m experiments.nerf --preset paper``): an 8x256 Gaussian
radiance field (sigma 0.1), 2048 rays a step, 128 stratified samples a ray, MSE on colour. The
task is built exactly as the NeRF task builds it (:class:`experiments.tasks.nerf.NerfTask` on the
synthetic spheres, rendered analytically: no data is needed, and a step costs the same on any
scene); Adam and ESGD run through its compiled train step (``jaxprecond.make_train_step``) at
the paper's initial learning rates. As :mod:`benchmarks.occupancy_step`: ESGD is timed on its
HVP steps and its plain steps, and the amortised ratio is that of a run of ``--run-steps``
steps (default the paper's 200K iterations) with the reference schedule.

Run: ``python -m benchmarks.nerf_step [--rays 2048 --samples 128 --steps 3 --rounds 3]``.
One gradient at this scale takes about 9 s on a laptop CPU (``docs/NERF.md``): for a GPU, or
pass smaller ``--rays --samples --depth --width --image-scale`` on a CPU.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import numpy as np

from benchmarks.occupancy_step import amortised, measure_task, print_ratios
from experiments.tasks import nerf
from experiments.tasks.field_factory import make_radiance_field
from experiments.tasks.nerf_data import load_scene

PAPER = nerf.PRESET_SCALE["paper"]


def measure(*, rays: int = PAPER["rays"], samples: int = PAPER["samples"],
            depth: int = PAPER["depth"], width: int = PAPER["width"],
            image_scale: float = PAPER["image_scale"], steps: int = 3,
            rounds: int = 3) -> dict[str, Any]:
    """Median seconds per step of Adam, ESGD's HVP step and ESGD's plain step (keys ``adam``,
    ``esgd_hvp``, ``esgd_plain``) on the synthetic scene, with the settings used (``config``)."""
    model = make_radiance_field("gaussian", depth, width)
    scene = load_scene(None, image_scale=image_scale)
    task = nerf.NerfTask(scene, model, samples=samples, seed=0, test_views=1)
    batch = jax.device_put(task.batch(np.arange(rays)))
    rates = (nerf.PAPER_LR[("adam", "gaussian")][0], nerf.PAPER_LR[("esgd", "gaussian")][0])
    times: dict[str, Any] = measure_task(task, batch, steps, rounds, learning_rates=rates)
    times["config"] = {"rays": rays, "samples": samples, "field": f"{depth}x{width} gaussian",
                       "image": f"{scene.width}x{scene.height} synthetic spheres",
                       "steps": steps, "rounds": rounds}
    return times


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rays", type=int, default=PAPER["rays"])
    p.add_argument("--samples", type=int, default=PAPER["samples"])
    p.add_argument("--depth", type=int, default=PAPER["depth"])
    p.add_argument("--width", type=int, default=PAPER["width"])
    p.add_argument("--image-scale", type=float, default=PAPER["image_scale"])
    p.add_argument("--steps", type=int, default=3, help="timed steps per round and optimizer")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--run-steps", type=int, default=PAPER["iterations"],
                   help="run length for the amortised ratio (default the paper's 200K)")
    args = p.parse_args(argv)
    t = measure(rays=args.rays, samples=args.samples, depth=args.depth, width=args.width,
                image_scale=args.image_scale, steps=args.steps, rounds=args.rounds)
    mean = amortised(t, args.run_steps)
    print(f"NeRF step, {args.rays} rays x {args.samples} samples, {t['config']['field']}, "
          f"{jax.devices()[0].device_kind}")
    print_ratios(t, mean, args.run_steps)


if __name__ == "__main__":
    main()
