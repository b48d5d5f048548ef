"""The GPU run: step times at the paper's sizes and the lion on 5 seeds, in under 8 minutes.

``bash benchmarks/gpu.sh`` (``python -m benchmarks.gpu`` under a ``timeout``) runs, on one
accelerator and in one process, these stages, cheapest and most important first:

1. ``image_step``: :func:`benchmarks.step_time.measure`: every optimizer's step time against
   Adam's, 5x256 Gaussian field, batch 512 (ESGD, ESGD-max, the AdaHessians, preconditioned
   SGD, ESGD's safeguards, Shampoo, K-FAC, L-BFGS, Muon, Sophia), the curvature warm-up, and
   the HVP/gradient cost ratio.
2. ``occupancy_step``: :func:`benchmarks.occupancy_step.measure`: Adam vs ESGD at batch 50,000.
3. ``lion_vmapped``: :func:`benchmarks.lion_seeds.run_vmapped`: the lion (256x256, batch 512,
   128 steps an epoch) at 200 epochs for Adam and ESGD, 5 seeds at once with ``jax.vmap``, per
   activation (``--activations``, default wavelet and Gaussian): wall time, final training MSE
   and full-image PSNR per seed.
4. ``nerf_step``: :func:`benchmarks.nerf_step.measure`: Adam vs ESGD at the NeRF ``paper``
   preset (2048 rays x 128 samples, 8x256 field; synthetic scene, no data needed).
5. ``lion_sequential``: :func:`benchmarks.lion_seeds.run_sequential`: the same runs one seed
   after another, for the wall-time comparison and a seed-by-seed check of the vmapped runs.

``--budget-s`` (default 440) bounds the whole run: a stage starts only with its minimum time
left, a lion run stops after the epoch that shows it cannot finish (estimated from the epochs
timed so far; each lion stage's runs share the time left evenly, keeping the later stages'
minimum), and what did not fit is said in the doc. ``docs/gpu/results.json`` and ``docs/GPU.md``
(rendered from it) are rewritten after every stage and lion run, so a run killed part way keeps
what finished; with ``$OUT`` set, copies of both go there too. ``--tiny`` is the CPU test's
configuration (16x16 image, 2x16 field, 2 seeds, 2 epochs, a few timed steps); ``--render-only``
re-renders the doc from the results file (or the not-yet-run page when there is none).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import shlex
import shutil
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "docs" / "gpu" / "results.json"
DOC = REPO_ROOT / "docs" / "GPU.md"
SCHEMA = 1
#: When this page was last checked against the sessions' devices (the not-yet-run page says so).
NO_GPU_AS_OF = "2026-12-07"
#: In running order: cheapest and most important first. The NeRF step's compilation is the
#: least predictable cost (its ESGD step takes ~10x Adam's to compile on a CPU), so it runs
#: after the vmapped lion runs and before the sequential ones, which share what is left.
STAGES = ("image_step", "occupancy_step", "lion_vmapped", "nerf_step", "lion_sequential")
LION_STAGES = {"lion_vmapped": "vmapped", "lion_sequential": "sequential"}
#: Seconds a stage (or a lion run) needs left to start: only the lion's runs stop part way.
MIN_STAGE_S = {"image_step": 20.0, "occupancy_step": 15.0, "lion_vmapped": 15.0,
               "nerf_step": 45.0, "lion_sequential": 15.0}
#: Kept back from the budget for writing the results.
RESERVE_S = 5.0

#: The paper's sizes (``bash benchmarks/gpu.sh``).
FULL: dict[str, dict[str, Any]] = {
    "image_step": {"rounds": 5, "steps": 40, "warmup": 60, "warmup_rounds": 1,
                   "depth": None, "width": None, "batch": 512, "include_baselines": True,
                   "include_safeguards": True, "only": None},
    "occupancy_step": {"batch_size": 50_000, "steps": 3, "rounds": 3, "depth": None,
                       "width": None, "run_steps": 200 * 20},
    "nerf_step": {"rays": 2048, "samples": 128, "depth": 8, "width": 256, "image_scale": 1.0,
                  "steps": 3, "rounds": 3, "run_steps": 200_000},
    "lion": {"activations": ["wavelet", "gaussian"], "optimizers": ["adam", "esgd"],
             "seeds": 5, "epochs": 200, "size": 256, "depth": None, "width": None,
             "batch": 512, "opt_args": {}},
}
#: The CPU test's sizes: every stage and code path, in seconds. ESGD refreshes at steps 0-2,
#: then every 5 steps, so the 32 steps of a lion run take both branches of the refresh.
TINY: dict[str, dict[str, Any]] = {
    "image_step": {"rounds": 1, "steps": 2, "warmup": 2, "warmup_rounds": 1, "depth": 2,
                   "width": 16, "batch": 32, "include_baselines": True,
                   "include_safeguards": False, "only": ["esgd", "kfac"]},
    "occupancy_step": {"batch_size": 256, "steps": 1, "rounds": 1, "depth": 2, "width": 16,
                       "run_steps": 200 * 20},
    "nerf_step": {"rays": 16, "samples": 4, "depth": 2, "width": 8, "image_scale": 1 / 32,
                  "steps": 1, "rounds": 1, "run_steps": 200_000},
    "lion": {"activations": ["gaussian"], "optimizers": ["adam", "esgd"], "seeds": 2,
             "epochs": 2, "size": 16, "depth": 2, "width": 16, "batch": 16,
             "opt_args": {"esgd": {"warmup": 3, "update_interval": 5}}},
}


class Clock:
    """The run's budget: seconds since the start and a deadline."""

    def __init__(self, budget_s: float):
        self.start = time.perf_counter()
        self.budget_s = budget_s
        self.deadline = self.start + budget_s - RESERVE_S

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def environment(matmul_precision: str) -> dict[str, Any]:
    """Device, platform and versions."""
    import jax
    import jaxlib

    devices = jax.devices()
    return {
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
        "platform": devices[0].platform,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": platform.python_version(),
        "machine": platform.platform(),
        "matmul_precision": matmul_precision,
    }


# --- stages -------------------------------------------------------------------------------------


def stage_image_step(cfg: dict[str, Any], clock: Clock, record: Callable[[], None]
                     ) -> dict[str, Any]:
    from benchmarks import step_time

    return step_time.measure(deadline=clock.deadline - 10.0, **cfg)


def stage_occupancy_step(cfg: dict[str, Any], clock: Clock, record: Callable[[], None]
                         ) -> dict[str, Any]:
    from benchmarks import occupancy_step

    options = {k: v for k, v in cfg.items() if k != "run_steps"}
    t = occupancy_step.measure(**options)
    return {"step_s": t, "run_steps": cfg["run_steps"],
            "esgd_amortised_s": occupancy_step.amortised(t, cfg["run_steps"]),
            "config": {"batch": cfg["batch_size"], "field": _field(cfg, 5, 256),
                       "steps": cfg["steps"], "rounds": cfg["rounds"]}}


def stage_nerf_step(cfg: dict[str, Any], clock: Clock, record: Callable[[], None]
                    ) -> dict[str, Any]:
    from benchmarks import nerf_step
    from benchmarks.occupancy_step import amortised

    options = {k: v for k, v in cfg.items() if k != "run_steps"}
    t = nerf_step.measure(**options)
    config = t.pop("config")
    return {"step_s": t, "run_steps": cfg["run_steps"],
            "esgd_amortised_s": amortised(t, cfg["run_steps"]), "config": config}


def stage_lion(cfg: dict[str, Any], clock: Clock, record: Callable[[], None],
               result: dict[str, Any], mode: str, reserve_s: float = 0.0) -> dict[str, Any]:
    """One run per activation and optimizer, all ``mode`` (``vmapped`` or ``sequential``), each
    appended to ``result['runs']`` and recorded as it finishes. The runs share the time left
    but ``reserve_s`` (the later stages' minimum) evenly; what one leaves goes to the next."""
    from benchmarks import lion_seeds
    from experiments.tasks.image_data import BUNDLED_IMAGE, load_image

    path, source = lion_seeds.lion_image()
    image = load_image(path, cfg["size"])
    result.update(image=source, image_path=path or BUNDLED_IMAGE, runs=[], skipped=[])
    plan = [(act, opt) for act in cfg["activations"] for opt in cfg["optimizers"]]
    for i, (act, opt) in enumerate(plan):
        share = (clock.left() - reserve_s) / (len(plan) - i)
        if share < MIN_STAGE_S[f"lion_{mode}"]:
            result["skipped"].append(f"{mode} {act} {opt}: its share of the budget would be "
                                     f"{max(share, 0):.0f} s")
            continue
        deadline = time.perf_counter() + share
        run = lion_seeds.SeedRun(act, opt, tuple(range(cfg["seeds"])), cfg["epochs"],
                                 cfg["size"], cfg["depth"], cfg["width"], cfg["batch"],
                                 tuple(sorted(cfg["opt_args"].get(opt, {}).items())))
        task = lion_seeds.make_task(image, run, path or BUNDLED_IMAGE)
        t0 = time.perf_counter()
        try:
            r = lion_seeds.RUNNERS[mode](task, run, deadline)
        except Exception as exc:  # noqa: BLE001 - one failed run must not lose the others
            r = {"mode": mode, "activation": act, "optimizer": opt,
                 "status": f"failed: {type(exc).__name__}: {exc}",
                 "traceback": traceback.format_exc(), "per_seed": []}
        r["seconds"] = time.perf_counter() - t0
        result["runs"].append(r)
        print(f"  lion {mode} {act} {opt}: {r['status']}, {r['seconds']:.1f} s", flush=True)
        record()
    return result


def _field(cfg: dict[str, Any], depth: int, width: int) -> str:
    return f"{cfg.get('depth') or depth}x{cfg.get('width') or width} gaussian"


# --- the run ------------------------------------------------------------------------------------


def write(results: dict[str, Any], results_path: pathlib.Path, doc_path: pathlib.Path) -> None:
    """Write the results file and the doc rendered from it (and copies to ``$OUT``)."""
    _write_atomic(results_path, json.dumps(results, indent=1, default=_json_default) + "\n")
    _write_atomic(doc_path, render(results, results_path))
    out = os.environ.get("OUT")
    if out:
        target = pathlib.Path(out)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(results_path, target / results_path.name)
        shutil.copyfile(doc_path, target / doc_path.name)


def _write_atomic(path: pathlib.Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a kill leaves the old or the new
    file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _json_default(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)


def run_all(config: dict[str, dict[str, Any]], *, budget_s: float, stages: Sequence[str],
            results_path: pathlib.Path, doc_path: pathlib.Path, tiny: bool,
            matmul_precision: str, command: str) -> dict[str, Any]:
    """Run ``stages`` under the budget, writing the results after each; returns them."""
    import jax

    clock = Clock(budget_s)
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command, "tiny": tiny, "budget_s": budget_s,
        "environment": environment(matmul_precision), "config": config,
        "stages": {},
    }
    env = results["environment"]
    print(f"devices: {env['devices']}; jax {env['jax']}, jaxlib {env['jaxlib']}; "
          f"matmul precision {matmul_precision}", flush=True)

    def record() -> None:
        results["elapsed_s"] = clock.elapsed()
        write(results, results_path, doc_path)

    record()
    runners = {"image_step": stage_image_step, "occupancy_step": stage_occupancy_step,
               "nerf_step": stage_nerf_step}
    with jax.default_matmul_precision(matmul_precision):
        for name in STAGES:
            if name not in stages:
                continue
            entry: dict[str, Any] = {"status": "running"}
            results["stages"][name] = entry
            left = clock.left()
            if left < MIN_STAGE_S[name]:
                entry["status"] = (f"skipped: {max(left, 0):.0f} s of the budget left, it "
                                   f"needs at least {MIN_STAGE_S[name]:.0f} s")
                print(f"{name}: {entry['status']}", flush=True)
                record()
                continue
            print(f"{name} ({clock.elapsed():.0f} s into the run) ...", flush=True)
            t0 = time.perf_counter()
            try:
                if name in LION_STAGES:
                    entry["result"] = {}
                    later = STAGES[STAGES.index(name) + 1:]
                    stage_lion(config["lion"], clock, record, entry["result"],
                               LION_STAGES[name],
                               sum(MIN_STAGE_S[n] for n in later if n in stages))
                else:
                    entry["result"] = runners[name](config[name], clock, record)
                entry["status"] = "done"
            except Exception as exc:  # noqa: BLE001 - a failed stage must not lose the others
                entry["status"] = f"failed: {type(exc).__name__}: {exc}"
                entry["traceback"] = traceback.format_exc()
                print(entry["traceback"], file=sys.stderr)
            entry["seconds"] = time.perf_counter() - t0
            print(f"{name}: {entry['status']} in {entry['seconds']:.1f} s", flush=True)
            record()
    results["finished"] = True
    record()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="See docs/GPU.md.")
    p.add_argument("--tiny", action="store_true",
                   help="the CPU test's tiny configuration (seconds, not the paper's sizes)")
    p.add_argument("--budget-s", type=float, default=440.0,
                   help="seconds for the whole run (default 440; gpu.sh kills at 465)")
    p.add_argument("--stages", default=",".join(STAGES),
                   help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument("--activations", default=None,
                   help="lion fields, comma-separated (default wavelet,gaussian)")
    p.add_argument("--seeds", type=int, default=None, help="lion seeds 0..N-1 (default 5)")
    p.add_argument("--epochs", type=int, default=None, help="lion epochs (default 200)")
    p.add_argument("--matmul-precision", default="highest",
                   choices=("default", "high", "highest"),
                   help="float32 matrix products: highest (default) is true float32, as on the "
                        "CPU and in PyTorch's default; default allows TF32 on NVIDIA GPUs")
    p.add_argument("--results", default=str(RESULTS), help="results JSON to write")
    p.add_argument("--doc", default=str(DOC), help="markdown page to render")
    p.add_argument("--render-only", action="store_true",
                   help="only render --doc from --results (the not-yet-run page without it)")
    args = p.parse_args(argv)
    results_path, doc_path = pathlib.Path(args.results), pathlib.Path(args.doc)
    if args.render_only:
        results = json.loads(results_path.read_text()) if results_path.is_file() else None
        doc_path.write_text(render(results, results_path))
        print(f"wrote {doc_path}")
        return 0
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        p.error(f"--stages: unknown {unknown}; expected some of {', '.join(STAGES)}")
    config = json.loads(json.dumps(TINY if args.tiny else FULL))
    lion = config["lion"]
    if args.activations:
        lion["activations"] = [a.strip() for a in args.activations.split(",") if a.strip()]
    if args.seeds is not None:
        lion["seeds"] = args.seeds
    if args.epochs is not None:
        lion["epochs"] = args.epochs
    command = "python -m benchmarks.gpu " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    results = run_all(config, budget_s=args.budget_s, stages=stages, results_path=results_path,
                      doc_path=doc_path, tiny=args.tiny, matmul_precision=args.matmul_precision,
                      command=command.strip())
    print(f"wrote {results_path} and {doc_path} ({results['elapsed_s']:.0f} s)")
    failed = [n for n, s in results["stages"].items() if s["status"].startswith("failed")]
    return 1 if failed else 0


# --- the doc ------------------------------------------------------------------------------------

INTRO = """\
# GPU run

One script measures on one GPU, in under 8 minutes, what the 2 shared CPU cores of this
project's sessions cannot: every optimizer's step time against Adam's at the paper's sizes, and
the lion at 200 epochs for Adam and ESGD on 5 seeds, trained one seed after another and all
seeds at once with `jax.vmap`. Run it from the repository root:

    bash benchmarks/gpu.sh        # timeout 465 python3 -m benchmarks.gpu --budget-s 440

Stages, cheapest and most important first (`python -m benchmarks.gpu --help`):

1. **Image step time** (`benchmarks/step_time.py`): 5x256 Gaussian field, batch 512; Adam, ESGD,
   ESGD-max, AdaHessian(E), AdaHessian(J), AdaHessian-Jacobi, preconditioned SGD, ESGD with each
   safeguard of `docs/ROBUSTNESS.md`, Shampoo, K-FAC, L-BFGS, Muon and Sophia (H and E); median
   step time and its ratio to Adam's, measured in one process with the optimizers interleaved;
   ESGD's curvature warm-up (an HVP every step) on its own; one HVP against one gradient.
2. **Occupancy step time** (`benchmarks/occupancy_step.py`): 5x256 Gaussian field (sigma 0.09),
   batch 50,000, Adam vs ESGD's HVP and plain steps, and ESGD amortised over 200 epochs x 20
   steps with the reference schedule (HVP on the first 50 steps, then every 100).
3. **The lion on 5 seeds, vmapped** (`benchmarks/lion_seeds.py`): 256x256, batch 512, 128 steps
   an epoch, 200 epochs (25,600 steps), Adam and ESGD at the registry's settings, wavelet and
   Gaussian fields (`--activations`), all 5 seeds at once with `jax.vmap` (one compiled epoch,
   parameters and optimizer states stacked, each seed its own initialisation, probe key and
   shuffle; ESGD's refresh stays a `cond`, not a `select` that would pay the HVP every step).
   Seed `s` is seed `s` of `python -m experiments.image`, and the numbers are those of
   `docs/REPRODUCTION.md`'s lion section (final training MSE: mean mini-batch loss of the last
   epoch; PSNR of the full-image reconstruction), which ran there on CPU through the harness.
4. **NeRF step time** (`benchmarks/nerf_step.py`): the `paper` preset of `experiments.nerf`,
   8x256 Gaussian radiance field, 2048 rays x 128 samples, on the synthetic scene (no data);
   the same three times and ESGD amortised over 200K iterations.
5. **The lion, sequential**: the same runs one seed after another (a compiled `jax.lax.scan`
   over each epoch), for the wall-time comparison with the vmapped runs and a seed-by-seed
   check that both give the same result.

The budget (`--budget-s`, 440 s) bounds the whole run: a stage starts only with its minimum time
left, a lion run stops after the epoch that shows it cannot finish (estimated from the epochs
timed so far; each lion stage's runs share the time left evenly, keeping the later stages'
minimum), and whatever did not fit is named below. `docs/gpu/results.json` and this page,
rendered from it, are rewritten after every stage and lion run, so a run killed part way keeps
what finished; with `$OUT` set, copies of both go there too. Matrix products run in true float32
(`--matmul-precision highest`, as on the CPU and in PyTorch's default), not TF32.
`tests/benchmarks/test_gpu.py` runs the whole script on the CPU in a tiny configuration
(`--tiny`: 16x16 image, 2x16 field, 2 seeds, 2 epochs), checks the results file and this page's
rendering, and that every vmapped seed matches its sequential run, so it cannot break unseen; no
test times anything.
"""


def render(results: dict[str, Any] | None, results_path: pathlib.Path | None = None) -> str:
    """The markdown page for ``results`` (the not-yet-run page for ``None``)."""
    lines = [INTRO]
    if results is None:
        lines += [
            "## Status: not run yet",
            "",
            f"No GPU has been lent to this project's sessions so far (as of {NO_GPU_AS_OF}): "
            "nothing on this page has run on a GPU. The tables (device, date, versions, each "
            "stage's numbers, and the lion's sequential vs vmapped wall times) appear here when "
            "`bash benchmarks/gpu.sh` runs on one; the project lead will run it when a device "
            "is lent and commit `docs/gpu/results.json` with this page.",
            "",
            "It needs a Python whose JAX sees the GPU (e.g. `jax[cuda12]`) with the "
            "experiments' packages (`pip install -e '.[experiments]'`); `PYTHON=...` picks it. "
            "A baseline whose optional package is missing is listed as not timed.",
            "",
            "Expected time on one H100 (our estimate from the sizes, not a measurement; the "
            "budget holds whatever the real numbers are): start-up and device ~10 s; image "
            "step times ~60-90 s (18 compilations, then milliseconds a step); occupancy ~10 s; "
            "the vmapped lion ~4 x 20 s (one compilation, then 25,600 latency-bound steps of "
            "~0.3-0.5 ms for all 5 seeds at once); NeRF ~30-60 s (mostly compiling its ESGD "
            "step, which takes ~10x Adam's on a CPU); the sequential lion the remaining "
            "~150-250 s, about 5 x the vmapped time per run, so some of its runs may finish "
            "fewer than 5 seeds (their 5-seed wall time is then extrapolated and marked so).",
            "",
        ]
        return "\n".join(lines)
    env = results["environment"]
    where = (str(results_path.relative_to(REPO_ROOT)) if results_path is not None
             and results_path.is_relative_to(REPO_ROOT) else "results.json")
    lines += ["## What ran", ""]
    if results.get("tiny"):
        lines += ["**Tiny configuration (`--tiny`): a check that the script runs, not the "
                  "paper's sizes. Its numbers mean nothing.**", ""]
    lines += [
        f"- Date: {results['date']}; command: `{results['command']}`; results: `{where}`.",
        f"- Device: {env['device_kind']} ({env['platform']}; all devices: "
        f"{', '.join(env['devices'])}).",
        f"- JAX {env['jax']}, jaxlib {env['jaxlib']}, Python {env['python']}, "
        f"{env['machine']}; matrix-product precision `{env['matmul_precision']}`.",
        f"- Budget {results['budget_s']:.0f} s; the run took "
        f"{results.get('elapsed_s', 0):.0f} s"
        + ("." if results.get("finished") else " before it was cut short (it did not finish)."),
    ]
    for name in STAGES:
        stage = results["stages"].get(name)
        if stage is None:
            status = "not run (not among --stages, or the run was cut short first)"
        elif stage["status"] == "running" and not results.get("finished"):
            status = "cut short while running (what it recorded is below)"
        else:
            status = stage["status"]
        took = f" in {stage['seconds']:.0f} s" if stage and "seconds" in stage else ""
        lines.append(f"- Stage `{name}`: {status}{took}.")
    lines.append("")
    for name, fn in (("image_step", _render_image), ("occupancy_step", _render_occupancy),
                     ("nerf_step", _render_nerf)):
        stage = results["stages"].get(name)
        if stage and stage.get("result"):
            lines += fn(stage["result"])
    lion = [results["stages"][n]["result"] for n in LION_STAGES
            if results["stages"].get(n, {}).get("result")]
    if lion:
        lines += _render_lion(lion, results["config"]["lion"])
    return "\n".join(lines)


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{1e3 * seconds:.3f}"


def _render_image(r: dict[str, Any]) -> list[str]:
    c = r["config"]
    out = [f"## Image step time ({c['field']}, batch {c['batch']})", "",
           f"{c['rounds']} rounds x {c['steps']} timed steps after {c['warmup']} untimed steps, "
           "optimizers interleaved; each step dispatched from Python and waited for, as the "
           f"harness runs it. {c['parameters']} parameters.", "",
           "| optimizer | median ms / step | mean ms / step | median / Adam's |",
           "|---|---|---|---|"]
    for name, t in r["step_s"].items():
        out.append(f"| {name} | {_ms(t)} | {_ms(r['mean_s'][name])} | {r['ratio'][name]:.2f} |")
    out.append("")
    if r["warmup_s"]:
        out += ["The curvature warm-up (the first 50 steps, an HVP each), from a fresh state:", "",
                "| optimizer | median ms / step | / Adam's step |", "|---|---|---|"]
        out += [f"| {name} | {_ms(t)} | {r['warmup_ratio'][name]:.2f} |"
                for name, t in r["warmup_s"].items()]
        out.append("")
    out.append(f"One gradient {_ms(r['grad_s'])} ms; gradient and HVP (one jvp of grad) "
               f"{_ms(r['hvp_s'])} ms: ratio {r['hvp_over_grad']:.2f}.")
    if r.get("skipped"):
        out.append(f"Not timed (the budget ran out while compiling): {', '.join(r['skipped'])}.")
    return [*out, ""]


def _render_two(title: str, r: dict[str, Any], setting: str) -> list[str]:
    t = r["step_s"]
    adam = t["adam"]
    rows = [("Adam", adam), ("ESGD, HVP step", t["esgd_hvp"]),
            ("ESGD, plain step", t["esgd_plain"]),
            (f"ESGD amortised over {r['run_steps']} steps", r["esgd_amortised_s"])]
    return [f"## {title}", "", setting, "",
            "| step | median ms | / Adam's |", "|---|---|---|",
            *[f"| {name} | {_ms(s)} | {s / adam:.2f} |" for name, s in rows], ""]


def _render_occupancy(r: dict[str, Any]) -> list[str]:
    c = r["config"]
    return _render_two(
        f"Occupancy step time ({c['field']}, batch {c['batch']})", r,
        f"The made torus+sphere; {c['rounds']} rounds x {c['steps']} timed steps of each "
        "kind; ESGD compiled once and refreshing every other step, each step filed under the "
        "branch it took; amortised with the reference schedule (HVP on the first 50 steps, "
        "then every 100).")


def _render_nerf(r: dict[str, Any]) -> list[str]:
    c = r["config"]
    return _render_two(
        f"NeRF step time ({c['rays']} rays x {c['samples']} samples, {c['field']})", r,
        f"{c['image']}, the task's train step (stratified samples, MSE on colour), Adam at "
        "1e-4 and ESGD at 1 (the paper's initial rates); "
        f"{c['rounds']} rounds x {c['steps']} timed steps of each kind, as for occupancy.")


def _mr(values: list[float], fmt: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    med = statistics.median(values)
    return f"{format(med, fmt)} ({format(min(values), fmt)} to {format(max(values), fmt)})"


def _agreed(vm: dict[str, Any] | None) -> str:
    """The vmapped run's ``schedules_agreed`` as a table cell (— without a schedule)."""
    value = None if vm is None else vm.get("schedules_agreed")
    return "—" if value is None else str(value)


def _render_lion(stages: list[dict[str, Any]], c: dict[str, Any]) -> list[str]:
    r = stages[0]
    runs = [run for stage in stages for run in stage.get("runs", [])]
    skipped = [s for stage in stages for s in stage.get("skipped", [])]
    field = f"{c['depth'] or 5}x{c['width'] or 256}"
    out = [f"## The lion on {c['seeds']} seeds, {c['epochs']} epochs", "",
           f"Image: {r['image']} at {c['size']}x{c['size']}; field {field}; batch {c['batch']}; "
           "the registry's learning rates" + (f"; options {c['opt_args']}"
                                              if c["opt_args"] else "")
           + ". Median over seeds (min to max). Compare `docs/REPRODUCTION.md`'s lion section "
           "(the same seeds and metrics, on CPU through the harness).", "",
           "| field | optimizer | lr | way | seeds | epochs | final training MSE | "
           "final PSNR (dB) | status |",
           "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        seeds = run.get("per_seed", [])
        epochs = sorted({s["epochs_done"] for s in seeds})
        out.append(
            f"| {run['activation']} | {run['optimizer']} | {run.get('learning_rate', '—')} | "
            f"{run['mode']} | {len(seeds)} | {', '.join(map(str, epochs)) or '—'} | "
            f"{_mr([s['final_train_mse'] for s in seeds], '.3g')} | "
            f"{_mr([s['final_psnr'] for s in seeds], '.2f')} | {run['status']} |")
    out.append("")
    out += ["### Sequential vs vmapped", "",
            "Wall time of training (compilation included, evaluation not). A sequential run "
            "that did not finish every seed within its share of the budget is extrapolated "
            "from its finished seeds (marked *est.*). Agreement: the largest difference between "
            "a seed's two runs (both complete), final PSNR and final training MSE (relative).",
            "",
            "| field | optimizer | sequential wall (s) | per seed (s) | vmapped wall (s) | "
            "vmapped / sequential | ms / step, sequential | ms / step, vmapped (all seeds) | "
            "max PSNR diff (dB) | max MSE diff (rel.) | refresh schedules agreed |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    by_key: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for run in runs:
        if run.get("per_seed"):
            by_key.setdefault((run["activation"], run["optimizer"]), {})[run["mode"]] = run
    for (act, opt), modes in by_key.items():
        seq, vm = modes.get("sequential"), modes.get("vmapped")
        seq_wall = per_seed = None
        est = ""
        if seq:
            done = [s for s in seq["per_seed"] if s["epochs_done"] == seq["epochs"]]
            if done:
                walls = seq["seed_wall_s"][:len(done)]
                per_seed = statistics.fmean(walls)
                seq_wall = sum(walls)
                if len(done) < c["seeds"]:
                    seq_wall = per_seed * c["seeds"]
                    est = f" est. ({len(done)} of {c['seeds']} run)"
        vm_complete = vm is not None and vm["status"] == "complete"
        vm_wall = vm["wall_s"] if vm_complete else None
        ratio = f"{vm_wall / seq_wall:.2f}" if vm_wall and seq_wall else "—"
        dpsnr = dmse = "—"
        if seq and vm_complete:
            pairs = [(a, b) for a in seq["per_seed"] for b in vm["per_seed"]
                     if a["seed"] == b["seed"] and a["epochs_done"] == b["epochs_done"]]
            if pairs:
                dpsnr = f"{max(abs(a['final_psnr'] - b['final_psnr']) for a, b in pairs):.2g}"
                dmse = "{:.2g}".format(max(abs(a["final_train_mse"] - b["final_train_mse"])
                                           / abs(b["final_train_mse"]) for a, b in pairs))
        steps = (seq or vm)["steps_per_epoch"]
        out.append(
            f"| {act} | {opt} | {'—' if seq_wall is None else f'{seq_wall:.1f}'}{est} | "
            f"{'—' if per_seed is None else f'{per_seed:.1f}'} | "
            f"{'—' if vm_wall is None else f'{vm_wall:.1f}'} | {ratio} | "
            f"{_ms(seq['epoch_s'] / steps) if seq else '—'} | "
            f"{_ms(vm['epoch_s'] / steps) if vm else '—'} | {dpsnr} | {dmse} | "
            f"{_agreed(vm)} |")
    out.append("")
    if skipped:
        out.append(f"Not run (budget): {'; '.join(skipped)}.")
        out.append("")
    return out


if __name__ == "__main__":
    sys.exit(main())
