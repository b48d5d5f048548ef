"""The companion paper's L-BFGS claims on speech and video, ``python -m experiments.paper.signals``.

Saratchandran, Chng et al. (ICCV 2023; ``../shared/paper/curvature_aware_coordinate_networks_
intro.txt``) claim that sine- and Gaussian-activated coordinate networks train faster with
full-batch L-BFGS than with Adam, and ReLU ones (with or without positional encoding) slower,
"on image, audio, video, shape and neural radiance field reconstruction tasks". This driver runs
that comparison on audio and video (issue 22, part 2): for each signal one comparison grid
(:mod:`experiments.compare`) under ``OUT/<signal name>``, fields ``sine gaussian relu_pe``,
optimizers ``lbfgs adam esgd muon`` (Muon as the 2026 baseline), seeds 0-4::

    python -m experiments.paper.signals --out runs/signals --resume --no-progress

Every optimizer trains on the full batch, as the companion's Fig. 1 and ``experiments.paper.
companion fig1`` compare full-batch Adam with full-batch L-BFGS: ``--batch-size`` defaults to
the signal's number of samples, so one epoch is one iteration. Learning rates are the registry's
(Adam 5e-5 sine, 1e-4 Gaussian, 1e-3 ReLU+PE; ESGD 0.15 / 0.1 ReLU+PE; Muon 0.005 / 0.02
ReLU+PE; L-BFGS 1 with its line search).

Signals (``--signals``, default the two speech clips and ``bikes.mp4`` below): paths to audio
files (``.wav``, ``.flac``, ``.ogg``, ...; fitted by ``--task audio``) or video files (``.mp4``,
...; ``--task video``), or ``chirp`` / ``made-video`` for the generated signals (no file). A
signal's grid is named after its file's stem. Every path is checked before any training; a
missing one is an error naming it. The size of each signal, chosen so the whole 180-run grid
fits a shared 2-core CPU (about 6 hours at 200 iterations, measured: :data:`GRID_ESTIMATE`):
audio ``--audio-duration`` 0.5 s resampled to ``--audio-rate`` 16 kHz (8,000 samples; the
first 0.5 s of both clips is speech), video
``--video-frames`` 8 at ``--video-size`` 24x56 (10,752 pixels, bikes' aspect ratio). Every
other flag is a flag of ``python -m experiments.compare`` (``--epochs``, the iterations, default
:data:`ITERATIONS`; ``--depth``/``--width``, default 5x256; ``--seeds``; ``--resume``; ...).

``video-patches`` (issue 22, part 3) is the companion's patch split on video: the clip cut into
``--blocks T H W`` frame-blocks, one small field per block, all trained at once with full-batch
L-BFGS under ``jax.vmap`` (the same :mod:`experiments.tasks.patches` code the image ``patches``
of :mod:`experiments.paper.companion` uses), against one Adam field on the whole clip (full batch,
through the video task); seconds to ``--target-psnr`` of the stitched clip, per seed, in
``OUT/patches.json``::

    python -m experiments.paper.signals video-patches --seeds 0 1 2 3 4 \\
        --out runs/signals/video_patches

``lbfgs-probe`` asks why L-BFGS loses to Adam on a sine field on speech here, where the
companion has it win: on one clip (default Side_Left), sine field, the same full-batch 200
iterations and 5 seeds, L-BFGS keeps 100 curvature pairs (PyTorch's ``torch.optim.LBFGS``
default; optax's is 10), and L-BFGS and Adam fit a 3x64 field instead of 5x256 (the companion
notes Adam may win as the network grows); grids in ``OUT/<probe>/<clip>``::

    python -m experiments.paper.signals lbfgs-probe --out runs/signals/lbfgs_probe

:func:`reproduction_section` renders the ``signals`` section of ``docs/REPRODUCTION.md`` from
the archived grids (``docs/reproduction/runs/signals/<signal>/ACT-OPT/seedS``) and, if present,
``video_patches/patches.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from experiments import compare
from experiments.harness import cli
from experiments.harness.errors import UsageError
from experiments.harness.grid import field_label

AUDIO_DIR = "../shared/data/audio"
VIDEO_PATH = "../shared/data/video/bikes.mp4"
SIGNALS = (f"{AUDIO_DIR}/Front_Center.wav", f"{AUDIO_DIR}/Side_Left.wav", VIDEO_PATH)
#: Names that stand for the generated signals (no file).
GENERATED = {"chirp": "audio", "made-video": "video"}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mov", ".mkv", ".gif", ".m4v")
ACTIVATIONS = ("sine", "gaussian", "relu_pe")
OPTIMIZERS = ("lbfgs", "adam", "esgd", "muon")
SEEDS = (0, 1, 2, 3, 4)
DEFAULT_OUT = "runs/signals"
ARCHIVE = "docs/reproduction/runs/signals"
#: Full-batch iterations (epochs) of every run.
ITERATIONS = 200
AUDIO_DURATION = 0.5
AUDIO_RATE = 16000
VIDEO_FRAMES = 8
VIDEO_SIZE = "24x56"
#: The compare report's target (the section races to the grid's common target instead).
REPORT_TARGET = 30.0
#: The companion's expectation per field: does L-BFGS reach the target before Adam?
EXPECTED = {"sine": True, "gaussian": True, "relu_pe": False}
#: The default grid's cost, from single runs timed on this machine (30 full-batch iterations of a
#: 5x256 field, seed 0, under ``nice`` beside the lion/DIV2K grids: load average 10-12 on the 2
#: cores). Seconds per iteration on Front_Center (8,000 samples): L-BFGS 0.56 sine, 0.72
#: Gaussian, 0.77 ReLU+PE; Adam 0.30; Muon 0.35; ESGD 1.56 while it refreshes every step (its
#: first 50), ~0.35 after. On bikes (10,752 pixels), sine: L-BFGS 1.59, Adam 0.39, ESGD 2.36
#: (refreshing). At 200 iterations that is ~400 s per (clip, field, seed) for the four
#: optimizers on audio and ~650 s on video: 30 x 400 + 15 x 650 = ~21,800 s, about 6 hours for
#: the 180 runs, plus compilation and evaluation (~10 s a run), at this load.
GRID_ESTIMATE = "about 6 hours for the 180 runs on the shared 2-core CPU (load average 10-12)"


@dataclasses.dataclass(frozen=True)
class Signal:
    """One signal of the comparison.

    Attributes:
      name: its grid's directory name (the file's stem, or the generated signal's name).
      kind: ``'audio'`` or ``'video'`` (the task that fits it).
      path: the file; ``None`` for a generated signal.
    """

    name: str
    kind: str
    path: str | None


def resolve_signals(names: Sequence[str]) -> list[Signal]:
    """The signals named by ``names`` (paths or :data:`GENERATED` names); :class:`UsageError`
    naming every missing file (and every path of an unknown kind), before any training."""
    out, missing, unknown = [], [], []
    for name in names:
        if name in GENERATED:
            out.append(Signal(name, GENERATED[name], None))
            continue
        path = pathlib.Path(name)
        suffix = path.suffix.lower()
        kind = ("audio" if suffix in AUDIO_SUFFIXES else
                "video" if suffix in VIDEO_SUFFIXES else None)
        if not path.is_file():
            missing.append(name)
        elif kind is None:
            unknown.append(name)
        else:
            out.append(Signal(path.stem, kind, str(path)))
    if missing:
        raise UsageError(f"--signals: no such file: {', '.join(missing)} (the speech clips and "
                         f"bikes.mp4 ship in ../shared/data; see its SOURCES.md) ; expected "
                         f"audio or video files, or {' / '.join(GENERATED)}")
    if unknown:
        raise UsageError(f"--signals {' '.join(unknown)}: unknown kind of file; expected an "
                         f"audio file ({', '.join(AUDIO_SUFFIXES)}) or a video file "
                         f"({', '.join(VIDEO_SUFFIXES)})")
    if len({s.name for s in out}) != len(out):
        raise UsageError(f"--signals {' '.join(names)}: two signals share a name; expected "
                         "distinct file stems (each grid is OUT/<stem>)")
    return out


def _pre_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--signals", nargs="+", default=list(SIGNALS), metavar="SIGNAL",
                   help="audio or video files, or chirp / made-video (default: "
                        + " ".join(SIGNALS) + ")")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"root of the per-signal grids (default {DEFAULT_OUT})")
    p.add_argument("--audio-duration", type=float, default=AUDIO_DURATION,
                   help=f"seconds of each audio clip, from its start (default {AUDIO_DURATION})")
    p.add_argument("--audio-rate", type=int, default=AUDIO_RATE,
                   help=f"resample audio to this many Hz (default {AUDIO_RATE})")
    p.add_argument("--video-frames", type=int, default=VIDEO_FRAMES,
                   help=f"frames of each video (default {VIDEO_FRAMES})")
    p.add_argument("--video-size", default=VIDEO_SIZE,
                   help=f"video frame size HxW (default {VIDEO_SIZE})")
    return p


#: compare flags the driver sets per signal (use the driver's own flags instead).
_OWNED = ("--task", "--audio", "--video", "--duration", "--sample-rate", "--frames", "--size")


def signal_args(signal: Signal, known: argparse.Namespace) -> list[str]:
    """The compare flags that fit ``signal``: its task, file, size and the full batch."""
    if signal.kind == "audio":
        from experiments.tasks.audio_data import num_samples

        count = num_samples(signal.path, known.audio_rate, known.audio_duration)
        return ["--task", "audio", *(["--audio", signal.path] if signal.path else []),
                "--duration", str(known.audio_duration), "--sample-rate", str(known.audio_rate),
                "--batch-size", str(count)]
    from experiments.tasks.video_data import check_selection, parse_size

    check_selection(known.video_frames, 1, 0)
    height, width = parse_size(known.video_size)
    return ["--task", "video", *(["--video", signal.path] if signal.path else []),
            "--frames", str(known.video_frames), "--size", known.video_size,
            "--batch-size", str(known.video_frames * height * width)]


def run(argv: Sequence[str] | None) -> int:
    """``video-patches ...`` or the grids: one compare grid per signal; the remaining flags go
    to each."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "video-patches":
        run_video_patches(video_patch_parser().parse_args(argv[1:]))
        return 0
    if argv and argv[0] == "lbfgs-probe":
        return run_probe(argv[1:])
    if "-h" in argv or "--help" in argv:
        _pre_parser().print_help()
        print("\nEvery other flag is a flag of python -m experiments.compare (see its --help); "
              "'video-patches --help' for the frame-block split; 'lbfgs-probe --help' for the "
              "probes of L-BFGS on a sine field.")
        return 0
    known, rest = _pre_parser().parse_known_args(argv)
    owned = [a for a in rest if a.split("=")[0] in _OWNED]
    if owned:
        raise UsageError(f"{' '.join(owned)}: set per signal by this driver; expected "
                         "--signals, --audio-duration, --audio-rate, --video-frames or "
                         "--video-size instead")
    signals = resolve_signals(known.signals)
    per_signal = [(s, signal_args(s, known)) for s in signals]  # every check before training
    for signal, data in per_signal:
        code = compare.drive(
            [*data, *rest, "--out", str(pathlib.Path(known.out) / signal.name)],
            prog="python -m experiments.paper.signals",
            title=f"{signal.name}: full-batch L-BFGS vs Adam, ESGD, Muon (companion paper)",
            task=signal.kind, activations=list(ACTIVATIONS), optimizers=list(OPTIMIZERS),
            seeds=list(SEEDS), epochs=ITERATIONS, target=REPORT_TARGET, timing_steps=0,
        )
        if code:
            return code
    return 0


# --- why L-BFGS loses on a sine field here: two probes (part 2, "show why by experiment") ------

PROBE_SIGNAL = f"{AUDIO_DIR}/Side_Left.wav"
#: Where the probes' grids live under a signals root (not a signal).
PROBE_DIR = "lbfgs_probe"
#: ``torch.optim.LBFGS``'s ``history_size`` default (optax's ``memory_size`` default is 10).
PROBE_MEMORY = 100
#: The smaller field of the size probe.
PROBE_DEPTH, PROBE_WIDTH = 3, 64
#: Probe name -> (its optimizers, the compare flags that make it, what it changes).
PROBES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "memory100": (("lbfgs",), ("--opt-arg", f"memory_size={PROBE_MEMORY}"),
                  f"L-BFGS keeping {PROBE_MEMORY} curvature pairs (PyTorch's default history) "
                  "instead of optax's 10"),
    "small": (("lbfgs", "adam"), ("--depth", str(PROBE_DEPTH), "--width", str(PROBE_WIDTH)),
              f"a {PROBE_DEPTH}x{PROBE_WIDTH} field instead of 5x256 (the companion: \"as the "
              "network size grows, Adam may outperform L-BFGS in terms of training time\")"),
}


def run_probe(argv: Sequence[str]) -> int:
    """``lbfgs-probe``: the :data:`PROBES` grids on one clip, sine field, full batch."""
    if "-h" in argv or "--help" in argv:
        print("usage: python -m experiments.paper.signals lbfgs-probe [--signals CLIP] "
              "[--seeds S ...] [--out OUT] [compare flags]\n\nlbfgs-probe "
              + __doc__.split("``lbfgs-probe``", 1)[1].split("::", 1)[0].strip() + ".")
        return 0
    p = _pre_parser()
    p.set_defaults(signals=[PROBE_SIGNAL], out=f"{DEFAULT_OUT}/{PROBE_DIR}")
    known, rest = p.parse_known_args(list(argv))
    owned = [a for a in rest if a.split("=")[0] in (*_OWNED, "--depth", "--width", "--opt-arg",
                                                    "--activations", "--optimizers")]
    if owned:
        raise UsageError(f"{' '.join(owned)}: set by the probe; expected --signals, --seeds, "
                         "--out or another compare flag")
    per_signal = [(s, signal_args(s, known)) for s in resolve_signals(known.signals)]
    for name, (opts, flags, what) in PROBES.items():
        for signal, data in per_signal:
            code = compare.drive(
                [*data, *flags, *rest, "--out", str(pathlib.Path(known.out) / name / signal.name)],
                prog="python -m experiments.paper.signals lbfgs-probe",
                title=f"{signal.name}, probe {name}: {what}",
                task=signal.kind, activations=["sine"], optimizers=list(opts),
                seeds=list(SEEDS), epochs=ITERATIONS, target=REPORT_TARGET, timing_steps=0)
            if code:
                return code
    return 0


def _race(heading: str, by_opt: dict[str, list[Any]], *, setter: bool = False
          ) -> tuple[list[str], Any]:
    """``heading``'s race table (:func:`field_table`) under a line naming its common target
    (and, with ``setter``, the optimizer that set it); and the target."""
    rows, target = field_table(by_opt)
    at = ("no common target (no optimizer learned)" if target.value is None else
          f"common target {target.value:g} dB" + (f" (set by {target.setter})" if setter else ""))
    return [f"{heading}{', ' if setter else '; '}{at}:", "", *_HEADER, *rows, ""], target


def _probe_lines(root: pathlib.Path) -> list[str]:
    """The probes' subsection: per clip, the main grid's sine L-BFGS and Adam beside L-BFGS with
    :data:`PROBE_MEMORY` pairs, raced to their common target; and L-BFGS against Adam on the
    smaller field, with the same decomposition as the main tables. Empty without probes."""
    from experiments.harness import targets
    from experiments.harness.report import cells, read_results

    probe_root = root / PROBE_DIR
    if not probe_root.is_dir():
        return []
    lines = ["### Why L-BFGS loses on a sine field here: probes", "",
             "Two changes that could hand L-BFGS the companion's lead on a sine field, each over "
             f"{len(SEEDS)} seeds, on the same clip and full-batch iterations "
             "(`python -m experiments.paper.signals lbfgs-probe`).", ""]
    clips = sorted({p.name for probe in PROBES for p in (probe_root / probe).glob("*")
                    if p.is_dir()})
    for clip in clips:
        main, memory, small = (cells(read_results(d)) if d.is_dir() else {} for d in (
            root / clip, probe_root / "memory100" / clip, probe_root / "small" / clip))
        if ("sine", "lbfgs") in memory:
            probe = memory[("sine", "lbfgs")]
            config = probe[0].summary.get("config", {})
            by_opt = {
                **({"lbfgs (memory 10)": [targets.Run.of(r) for r in main[("sine", "lbfgs")]]}
                   if ("sine", "lbfgs") in main else {}),
                f"lbfgs (memory {PROBE_MEMORY})": [targets.Run.of(r) for r in probe],
                **({"adam": [targets.Run.of(r) for r in main[("sine", "adam")]]}
                   if ("sine", "adam") in main else {}),
            }
            table, _ = _race(f"{clip}, {PROBES['memory100'][2]}; "
                             f"{field_label(config.get('depth'), config.get('width'))}", by_opt)
            lines += table
        if ("sine", "lbfgs") in small and ("sine", "adam") in small:
            by_opt = {o: [targets.Run.of(r) for r in small[("sine", o)]]
                      for o in ("lbfgs", "adam")}
            table, target = _race(f"{clip}, {PROBES['small'][2]}", by_opt)
            text, _ = judge(by_opt, "sine", target)
            why = decompose(by_opt, target)
            lines += [*table, f"On the {PROBE_DEPTH}x{PROBE_WIDTH} field ({text}).", "",
                      *([why, ""] if why else [])]
    return lines


# --- the frame-block split (part 3) -------------------------------------------------------------

def video_patch_parser() -> cli.OneLineParser:
    """The parser of the ``video-patches`` subcommand."""
    from experiments.tasks import patches

    p = cli.OneLineParser(prog="python -m experiments.paper.signals video-patches")
    p.add_argument("--video", default=VIDEO_PATH, help="'' for the made video")
    p.add_argument("--frames", type=int, default=VIDEO_FRAMES)
    p.add_argument("--size", default=VIDEO_SIZE, help="frame size HxW")
    p.add_argument("--blocks", type=int, nargs=3, default=[2, 2, 2], metavar=("T", "H", "W"),
                   help="blocks along time, rows and columns (default 2 2 2)")
    patches.add_fit_args(p)
    p.add_argument("--out", default=f"{DEFAULT_OUT}/video_patches")
    return p


def run_video_patches(args: argparse.Namespace) -> dict[str, Any]:
    """Frame-block L-BFGS against one Adam field on the whole clip, per seed in ``OUT/seedS``;
    writes ``OUT/patches.json`` and ``OUT/patches_psnr_vs_time.png``."""
    import jax

    from experiments.tasks import patches
    from experiments.tasks import video as video_task
    from experiments.tasks.field_factory import make_field
    from experiments.tasks.video_data import check_selection, load_video, parse_size

    seeds = list(dict.fromkeys(args.seeds if args.seeds is not None else [args.seed]))
    out = pathlib.Path(args.out)
    settings = patches.settings_of(args)
    patches.check_finished_seeds(out, seeds, settings)
    check_selection(args.frames, 1, 0)
    height, width = parse_size(args.size)
    shape = (args.frames, height, width)
    try:
        patches.split_blocks(_zeros(shape), args.blocks)
    except UsageError as exc:
        raise UsageError(f"--blocks {' '.join(map(str, args.blocks))}: {exc}") from None
    if args.video and not pathlib.Path(args.video).is_file():
        raise UsageError(f"--video {args.video}: no such file; expected a video file (bikes.mp4 "
                         "ships in ../shared/data/video) or '' for the made video")
    clip = load_video(args.video or None, args.frames, (height, width))
    out.mkdir(parents=True, exist_ok=True)
    model = make_field(args.activation, args.patch_depth, args.patch_width)
    fit = patches.BlockFit(clip.frames, args.blocks, model)
    runs = []
    for seed in seeds:
        def adam(adam_out: pathlib.Path, seed: int = seed) -> dict[str, Any]:
            parsed = video_task.parser().parse_args([
                "--frames", str(args.frames), "--size", args.size,
                "--activation", args.activation, "--optimizer", "adam",
                "--depth", str(args.adam_depth), "--width", str(args.adam_width),
                "--batch-size", str(math.prod(shape)), "--epochs", str(args.adam_epochs),
                "--seed", str(seed), "--timing-steps", "0", "--no-progress", "--resume",
                "--out", str(adam_out), *(["--video", args.video] if args.video else []),
                *(["--lr", str(args.adam_lr)] if args.adam_lr else [])])
            return video_task.run(video_task.make_config(parsed))

        runs.append(patches.run_seed(
            fit, seed=seed, out=out / f"seed{seed}", iterations=args.iterations,
            eval_every=args.eval_every, target_psnr=args.target_psnr, settings=settings,
            adam_epochs=args.adam_epochs, adam=adam))
    params = fit.init(seeds[0])[0]
    blocks = "x".join(map(str, args.blocks))
    result = {
        "video": args.video, "frames": args.frames, "size": args.size, "blocks": args.blocks,
        "patch_field": f"{args.activation} depth {args.patch_depth} width {args.patch_width}",
        "adam_field": f"{args.activation} depth {args.adam_depth} width {args.adam_width}",
        "patch_params": sum(x.size for x in jax.tree.leaves(params)),
        "target_psnr": args.target_psnr, "seeds": seeds, "runs": runs,
    }
    patches.write_result(out, result, f"L-BFGS, {blocks} frame-block fields")
    return result


def _zeros(shape: Sequence[int]) -> Any:
    import numpy as np

    return np.zeros((*shape, 1), np.float32)


# --- the reproduction section ------------------------------------------------------------------

QUOTE = ("\"The convergence rate of the sine-network trained with L-BFGS is significantly faster "
         "than the one trained with Adam [...] the ReLU-network trained with Adam has faster "
         "convergence rate than the one trained with L-BFGS\"; \"sine-/Gaussian-activated "
         "coordinate networks are up to 5 times faster when trained with L-BFGS over Adam. We "
         "present results on image, audio, video, shape and neural radiance field "
         "reconstruction tasks\" (`curvature_aware_coordinate_networks_intro.txt`, Sec. 1)")


def _range(values: Sequence[float], spec: str) -> str:
    if not values:
        return "—"
    mid = statistics.median(values)
    if len(values) == 1:
        return format(mid, spec)
    return f"{mid:{spec}} ({min(values):{spec}}-{max(values):{spec}})"


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


#: The header of every race table of the section.
_HEADER = ("| optimizer | seeds | final PSNR (dB) | seconds to target | iterations to target "
           "| seeds that reached it |", "|---|---|---|---|---|---|")


def field_table(by_opt: dict[str, list[Any]]) -> tuple[list[str], Any]:
    """The table of one signal and field (``by_opt``: optimizer -> :class:`targets.Run`), raced
    to their common target; returns its lines and the target."""
    from experiments.harness import targets

    target = targets.common_target(by_opt)
    lines = []
    placings = {p.optimizer: p for p in targets.race(by_opt, target.value)}
    for opt, runs in by_opt.items():
        hits = [targets.reach(r, target.value) for r in runs]
        hit = [h for h in hits if h is not None]
        p = placings[opt]
        seconds = ("not reached" if p.seconds is None else
                   f"{p.seconds:.1f} ({p.seconds_range[0]:.1f}-{p.seconds_range[1]:.1f})"
                   if p.seconds_range else f"{p.seconds:.1f}")
        steps = ("not reached" if p.steps is None else
                 f"{p.steps:g} ({min(h.step for h in hit)}-{max(h.step for h in hit)})")
        lines.append(f"| {opt} | {len(runs)} | {_range(_finite([r.final for r in runs]), '.2f')} "
                     f"| {seconds} | {steps} | {p.reached}/{p.seeds} |")
    return lines, target


def judge(by_opt: dict[str, list[Any]], field: str, target: Any) -> tuple[str, bool | None]:
    """The companion's claim for ``field``, L-BFGS against Adam seed by seed at ``target``
    (seconds to it; a seed that never reaches it is never): the text of the count and the
    verdict (``None``: not judged, the reason in the text)."""
    from experiments.harness import targets
    from experiments.paper.reproduction import MIN_SEEDS

    lb = {r.seed: r for r in by_opt.get("lbfgs", [])}
    ad = {r.seed: r for r in by_opt.get("adam", [])}
    missing = [o for o, d in (("lbfgs", lb), ("adam", ad)) if not d]
    if missing:
        return f"not run yet ({' and '.join(missing)} missing)", None
    seeds = sorted(set(lb) & set(ad))
    if len(seeds) < MIN_SEEDS:
        n = len(seeds)
        return f"not judged ({n} seed{'s' if n != 1 else ''}; a verdict needs {MIN_SEEDS})", None
    if target.value is None:
        return "not judged (no common target: no optimizer learned)", None

    def when(run: Any, k: int) -> float:
        hit = targets.reach(run, target.value)
        return math.inf if hit is None else (hit.time_s, hit.step)[k]

    first = sum(when(lb[s], 0) < when(ad[s], 0) for s in seeds)
    later = sum(when(lb[s], 0) > when(ad[s], 0) for s in seeds)
    fewer = sum(when(lb[s], 1) < when(ad[s], 1) for s in seeds)
    n = len(seeds)
    text = (f"ours, to the common target {target.value:g} dB: L-BFGS in less time on {first}/{n} "
            f"seeds, Adam on {later}/{n}; L-BFGS in fewer iterations on {fewer}/{n}")
    wins = first if EXPECTED[field] else later
    return text, wins > n / 2


def _times(ratios: Sequence[float]) -> str:
    """``"0.67x (0.50-0.80x)"``: the median ratio and its min-max."""
    mid = statistics.median(ratios)
    return (f"{mid:.2f}x" if len(ratios) == 1
            else f"{mid:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}x)")


def decompose(by_opt: dict[str, list[Any]], target: Any) -> str | None:
    """Why the race between L-BFGS and Adam to ``target`` ends as it does, from the same runs:
    time to the target is iterations to it times time per iteration, so on each seed where both
    got there, L-BFGS's iterations to it over Adam's and its seconds per iteration (up to it)
    over Adam's, medians over those seeds; and on how many seeds L-BFGS never got there, with
    its median final training PSNR (a stall, not a cost). ``None`` without both optimizers or a
    target."""
    from experiments.harness import targets

    lb = {r.seed: r for r in by_opt.get("lbfgs", [])}
    ad = {r.seed: r for r in by_opt.get("adam", [])}
    seeds = sorted(set(lb) & set(ad))
    if not seeds or target.value is None:
        return None
    iters, cost, time, never = [], [], [], []
    for s in seeds:
        a, b = targets.reach(lb[s], target.value), targets.reach(ad[s], target.value)
        if a is None:
            never.append(s)
        elif b is not None and min(a.step, b.step, a.time_s, b.time_s) > 0:
            iters.append(a.step / b.step)
            cost.append((a.time_s / a.step) / (b.time_s / b.step))
            time.append(a.time_s / b.time_s)
    parts = []
    if iters:
        parts.append(f"on the {len(iters)} seed{'s' * (len(iters) != 1)} where both got there, "
                     f"L-BFGS needed {_times(iters)} Adam's iterations at {_times(cost)} its "
                     "seconds per iteration (an L-BFGS iteration evaluates the loss and gradient "
                     "at least once, in its line search; an Adam iteration once): "
                     f"{_times(time)} its time")
    if never:
        finals = _finite([lb[s].train_psnr(-1) for s in never])
        parts.append(f"L-BFGS never got there on {len(never)}/{len(seeds)} seeds (final "
                     f"training PSNR {_range(finals, '.2f')} dB against the target "
                     f"{target.value:g}): it stalls, whatever an iteration costs")
    return ("Why (L-BFGS against Adam, the same runs): " + "; ".join(parts) + "."
            if parts else None)


def _claim(signal: str, field: str) -> str:
    if EXPECTED[field]:
        return (f"- Companion, {signal}, {field}: full-batch L-BFGS reaches the target in less "
                "time than Adam")
    return f"- Companion, {signal}, {field}: Adam reaches the target in less time than L-BFGS"


def _signal_names(root: pathlib.Path) -> list[str]:
    defaults = [pathlib.Path(s).stem for s in SIGNALS]
    present = sorted(p.name for p in root.iterdir()
                     if p.is_dir() and p.name not in ("video_patches", PROBE_DIR)
                     ) if root.is_dir() else []
    return defaults + [p for p in present if p not in defaults]


def reproduction_section(root: pathlib.Path) -> tuple[list[str], list[str]]:
    """The ``signals`` section's markdown lines and claim lines, from the grids under ``root``
    (``<signal>/ACT-OPT/seedS``) and ``root/video_patches/patches.json``."""
    from experiments.harness import targets
    from experiments.harness.report import cells, read_results
    from experiments.paper.reproduction import _verdict

    lines = ["## The companion paper on audio and video: full-batch L-BFGS vs Adam, ESGD, Muon",
             "", f"What it says: {QUOTE}.", "",
             "Ours (`python -m experiments.paper.signals`): every optimizer on the full batch "
             "(one epoch = one iteration), as the companion's Fig. 1 and our image version "
             "(`companion fig1`) compare full-batch Adam with full-batch L-BFGS; registry "
             "learning rates. Per signal and field, each optimizer races to the grid's common "
             "target (the lowest median final training PSNR among the optimizers that learned, "
             "floored to 0.1 dB; `experiments.harness.targets`): median seconds and iterations "
             "to it over all seeds (a seed that never reaches it counts as never, so the median "
             "is 'not reached' unless half the seeds did), min-max over the seeds that did; "
             "final PSNR of the whole reconstruction, median (min-max). Seconds are training "
             "time without compilation on a 2-core CPU, one run at a time: compare within a "
             "table.", ""]
    claims = []
    for name in _signal_names(root):
        grid = cells(read_results(root / name)) if (root / name).is_dir() else {}
        if not grid:
            lines += [f"### {name}", "", "Not run yet.", ""]
            claims += [f"{_claim(name, f)}: not run yet" for f in ACTIVATIONS]
            continue
        first = next(iter(grid.values()))[0].summary
        config = first.get("config", {})
        what = (f"{config.get('audio') or config.get('video') or 'generated'}; "
                f"{field_label(config.get('depth'), config.get('width'))}, "
                f"{first.get('steps')} iterations")
        lines += [f"### {name}", "", f"What ran: {what}.", ""]
        fields = [f for f in ACTIVATIONS if any((f, o) in grid for o in OPTIMIZERS)]
        for field in ACTIVATIONS:
            by_opt = {o: [targets.Run.of(r) for r in grid[(field, o)]]
                      for o in OPTIMIZERS if (field, o) in grid}
            if field not in fields:
                claims.append(f"{_claim(name, field)}: not run yet")
                continue
            table, target = _race(field, by_opt, setter=True)
            lines += table
            why = decompose(by_opt, target)
            lines += [why, ""] if why else []
            text, ok = judge(by_opt, field, target)
            claims.append(f"{_claim(name, field)}: {text}" if ok is None else
                          f"{_claim(name, field)} ({text}): {_verdict(ok)}")
    lines += _probe_lines(root)
    patches_json = root / "video_patches" / "patches.json"
    lines += _video_patch_lines(patches_json)
    return lines, claims


def _video_patch_lines(path: pathlib.Path) -> list[str]:
    import json

    from experiments.tasks import patches

    lines = ["### Frame-block split on video (part 3)", ""]
    if not path.is_file():
        return lines + [f"Not run yet (no `{path}`). Run: `python -m experiments.paper.signals "
                        "video-patches --seeds 0 1 2 3 4 --out runs/signals/video_patches`.", ""]
    r = json.loads(path.read_text())
    runs = r["runs"]
    blocks = "x".join(map(str, r["blocks"]))
    lines += [
        f"What ran ({len(runs)} seed{'s' if len(runs) != 1 else ''}, {r['seeds']}): "
        f"`{pathlib.Path(r['video'] or 'made video').name}`, {r['frames']} frames of "
        f"{r['size']}, {blocks} (time x rows x columns) blocks, one {r['patch_field']} field "
        f"per block ({r['patch_params']} parameters in all), trained together with full-batch "
        f"L-BFGS (`jax.vmap` over blocks), against one {r['adam_field']} field with full-batch "
        f"Adam (lr {runs[0]['adam_one_field']['lr']}). Median over seeds, (min to max).", "",
        *patches.result_lines(runs, r["target_psnr"], "L-BFGS, frame-block fields",
                              "frame-block"),
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return cli.run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
