"""Generates the notebooks of this folder (outputs cleared), so they are reproducible.

    python notebooks/build.py            # rewrites notebooks/*.ipynb
    python notebooks/build.py --out DIR  # writes them elsewhere (the tests compare the two)

Every notebook starts with the same two cells: one that puts the root of the repository checkout
on ``sys.path`` for the research harness (``experiments/``, which pip does not install), cloning
and installing the repository first when the project is not importable (e.g. on Colab), and the
single parameter ``TINY`` that switches between
a seconds-long configuration (what the tests execute, ``JAXPRECOND_NOTEBOOK_TINY=1``) and the
full one.
"""

from __future__ import annotations

import argparse
import pathlib
import textwrap

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = pathlib.Path(__file__).resolve().parent

INSTALL = """\
# pip installs jaxprecond and its neural fields (as jaxprecond_fields); the research harness
# (experiments/, whose image loading these notebooks use) runs from a checkout of the repository.
# This cell puts the checkout this notebook sits in on sys.path; on a fresh runtime (e.g. Colab)
# it clones REPO_URL and installs that clone (with the extras the notebooks use) first.
REPO_URL = "https://github.com/REPLACE-WITH-OWNER/jaxprecond"  # the project's git repository

import pathlib
import sys

here = pathlib.Path.cwd().resolve()
ROOT = next((p for p in (here, *here.parents) if (p / "experiments" / "harness").is_dir()),
            here / "jaxprecond")
try:
    import jaxprecond  # noqa: F401
    import jaxprecond_fields  # noqa: F401
except ImportError:
    if not ROOT.is_dir():
        !git clone -q --depth 1 {REPO_URL} {ROOT}
    %pip install -q "{ROOT}[experiments]"
    # If pip upgraded jax on this runtime, restart the runtime once and run all cells again.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
"""

TINY = """\
# The one parameter: TINY = True runs a seconds-long configuration (what the tests execute),
# False the full one. Set it here, or export JAXPRECOND_NOTEBOOK_TINY=1 before starting Jupyter.
import os

TINY = os.environ.get("JAXPRECOND_NOTEBOOK_TINY", "0") == "1"
print("configuration:", "tiny" if TINY else "full")
"""

FIND_IMAGE = """\
# The paper's image is the DIV2K "lion"; where this repository's shared data holds it we use it,
# otherwise scikit-image's bundled astronaut (no download). Both are resized to SIZE x SIZE.
import pathlib

from experiments.tasks.image_data import load_image, pixel_coords

LION = "shared/data/images/div2k_fourier_features_test/image_014.jpg"
candidates = [pathlib.Path(prefix) / LION for prefix in ("..", "../..")]
IMAGE_PATH = next((str(p) for p in candidates if p.is_file()), None)
image = load_image(IMAGE_PATH, SIZE)  # float32 in [0, 1], shape (SIZE, SIZE, 3)
coords = pixel_coords(SIZE, SIZE)     # (SIZE * SIZE, 2) in [-1, 1], row-major
pixels = image.reshape(-1, 3)
print("image:", IMAGE_PATH or "scikit-image astronaut", image.shape)
"""

TRAIN_HELPERS = """\
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxprecond
import jaxprecond_fields as fields


def mse_loss(model):
    \"\"\"loss_fn(params, batch) -> mean squared error, the paper's image loss.\"\"\"
    def loss_fn(params, batch):
        pred = model.apply({"params": params}, batch["coords"])
        return jnp.mean((pred - batch["pixels"]) ** 2)
    return loss_fn


def psnr(mse):
    return -10.0 * np.log10(mse)


def fit(field, tx, *, lr_name="", seed=0, on_epoch=None):
    \"\"\"Trains fields.make(field) on the image with the optax transform tx.

    Mini-batches of BATCH pixels from a fresh permutation each epoch; returns the full-image
    PSNR after every epoch, the final reconstruction and params.
    \"\"\"
    model = fields.make(field, width=WIDTH, depth=DEPTH)
    params = model.init(jax.random.key(seed), jnp.zeros((1, 2)))["params"]  # same init for all
    step = jaxprecond.make_train_step(mse_loss(model), tx)
    opt_state = tx.init(params)
    params, opt_state = step.place(params), step.place(opt_state)
    predict = jax.jit(lambda p: model.apply({"params": p}, coords))
    rng = np.random.default_rng(seed)
    steps_per_epoch = len(coords) // BATCH
    history = {"epoch": [0], "psnr": [psnr(float(jnp.mean((predict(params) - pixels) ** 2)))]}
    start = time.perf_counter()
    for epoch in range(1, EPOCHS + 1):
        order = rng.permutation(len(coords))[: steps_per_epoch * BATCH]
        for idx in order.reshape(steps_per_epoch, BATCH):
            batch = step.shard({"coords": coords[idx], "pixels": pixels[idx]})
            params, opt_state, metrics = step(params, opt_state, batch)
        recon = predict(params)
        history["epoch"].append(epoch)
        history["psnr"].append(psnr(float(jnp.mean((recon - pixels) ** 2))))
        if on_epoch is not None:
            on_epoch(model, params, batch)
    seconds = time.perf_counter() - start
    print(f"{field:9s} {lr_name:14s} final PSNR {history['psnr'][-1]:6.2f} dB "
          f"({EPOCHS} epochs, {seconds:.1f} s with compilation)")
    recon = np.clip(np.asarray(recon).reshape(SIZE, SIZE, 3), 0.0, 1.0)
    return {"history": history, "recon": recon, "params": params, "model": model}
"""


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str, **metadata):
    cell = new_code_cell(textwrap.dedent(text).strip("\n"))
    cell.metadata.update(metadata)
    return cell


def preamble(title_md: str) -> list:
    return [
        md(title_md),
        code(INSTALL),
        code(TINY, tags=["parameters"]),
    ]


def notebook_01() -> list:
    return preamble("""\
        # ESGD vs Adam on an image: the paper's demo

        *Preconditioners for the Stochastic Training of Neural Fields* (Chng, Saratchandran,
        Lucey; arXiv:2402.08784) show that a cheap diagonal curvature preconditioner, **ESGD**
        (equilibrated SGD: `D_i = ||H_i,:||`, estimated from Hessian-vector products), trains
        neural fields with Gaussian, sine or wavelet activations faster than Adam.

        This notebook fits a **Gaussian** and a **wavelet** field to an image with
        `jaxprecond.esgd` and `optax.adam` at the reference learning rates (ESGD 0.15, Adam 1e-4)
        and plots PSNR against epochs and the reconstructions side by side. It runs on a Colab
        CPU, GPU or TPU runtime and on a laptop.
        """) + [
        md("""\
        ## Configuration

        The full configuration is the paper's: 256x256 image, fields of 5 layers 256 wide,
        mini-batches of 512 pixels (one epoch = 128 steps). The tiny one only checks that
        everything runs; its numbers mean nothing.
        """),
        code("""\
        if TINY:  # the wavelet field trains exactly like the Gaussian one: tiny skips it
            SIZE, WIDTH, DEPTH, BATCH, EPOCHS = 32, 32, 3, 128, 3
            FIELDS = ("gaussian",)
        else:
            SIZE, WIDTH, DEPTH, BATCH, EPOCHS = 256, 256, 5, 512, 20
            FIELDS = ("gaussian", "wavelet")
        LEARNING_RATES = {"esgd": 0.15, "adam": 1e-4}  # the reference code's
        """),
        code(FIND_IMAGE),
        code(TRAIN_HELPERS),
        code("""\
        print("JAX devices:", jax.devices())
        """),
        md("""\
        ## Train

        `jaxprecond.esgd(0.15)` is an ordinary `optax.GradientTransformationExtraArgs`. It needs
        the loss itself, to take Hessian-vector products: `jaxprecond.make_train_step` passes it
        as the extra argument `obj_fn` and fuses the gradient and the HVP into one
        linearisation. With the reference settings ESGD takes an HVP on each of the first 50
        steps, then every 100 steps; the other steps cost one gradient, like Adam.
        """),
        code("""\
        runs = {}
        for field in FIELDS:
            runs[field, "ESGD"] = fit(field, jaxprecond.esgd(LEARNING_RATES["esgd"]),
                                      lr_name="ESGD lr 0.15")
            runs[field, "Adam"] = fit(field, optax.adam(LEARNING_RATES["adam"]),
                                      lr_name="Adam lr 1e-4")
        """),
        md("## PSNR against epochs"),
        code("""\
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(FIELDS), figsize=(5 * len(FIELDS), 3.5), squeeze=False)
        for ax, field in zip(axes[0], FIELDS):
            for name in ("ESGD", "Adam"):
                h = runs[field, name]["history"]
                ax.plot(h["epoch"], h["psnr"], marker=".", label=name)
            ax.set(title=f"{field} field", xlabel="epoch", ylabel="PSNR (dB)")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        plt.show()
        """),
        md("## Reconstructions"),
        code("""\
        fig, axes = plt.subplots(len(FIELDS), 3, figsize=(9, 3 * len(FIELDS)), squeeze=False)
        for row, field in zip(axes, FIELDS):
            row[0].imshow(image)
            row[0].set_title("target")
            for ax, name in zip(row[1:], ("ESGD", "Adam")):
                run = runs[field, name]
                ax.imshow(run["recon"])
                ax.set_title(f"{field}, {name}: {run['history']['psnr'][-1]:.2f} dB")
            for ax in row:
                ax.axis("off")
        fig.tight_layout()
        plt.show()
        """),
        md("""\
        ## What to expect

        In the full configuration ESGD should reach a given PSNR in fewer epochs than Adam on
        both fields, at a similar cost per step. For comparison, the paper reports the wavelet
        field on the DIV2K lion at epoch 10: **ESGD 29.36 dB vs Adam 26.61 dB**. Your numbers
        will differ with the image (the bundled astronaut when the lion is absent) and the
        seed; the tiny configuration's numbers mean nothing.

        Going further:

        - `jaxprecond.esgd(0.15, bias_correction="reference")` reproduces the reference code's
          bias correction, which divides by `1 - b2**t` at the total step count `t` rather than
          the number of refreshes and so takes 2-3x larger steps.
        - `jaxprecond.adahessian(0.15, preconditioner=...)` divides by the equilibration
          diagonal `||H_i,:||` (`"equilibrated"`), the Jacobi diagonal `|diag H|` (`"jacobi"`),
          published AdaHessian's `sqrt(mean (v*Hv)**2)`, equilibration in expectation
          (`"squared_hutchinson"`), or the reference AdaHessian(J)'s `sqrt(mean |Hv|)`
          (`"abs_hvp"`); `jaxprecond.esgd_max` and `jaxprecond.preconditioned_sgd` are the
          paper's other preconditioners.
        - `python -m experiments.compare` runs the paper's whole grid with reports and plots.
        """),
    ]


def notebook_02() -> list:
    return preamble("""\
        # The activation matters: HVP sparsity, and where Adam wins

        ESGD and AdaHessian build their preconditioner from Hessian-vector products `Hv`. The
        paper (Chng et al., arXiv:2402.08784, Sec. 4.2) proves when that information exists:

        - **Theorem 4.2.** For a sine, Gaussian, wavelet or sinc activated neural field with the
          MSE loss, `Hv` is a *dense* vector for any non-zero `v`.
        - **Theorem 4.3.** For a ReLU or ReLU+PE (positional encoding) field, `Hv` is *sparse*.

        So a curvature preconditioner rescales (almost) every gradient component of a Gaussian
        field, but only a few components of a ReLU field: there it adds little, and Adam, which
        needs no HVP, wins. This notebook measures the sparsity per layer and reproduces the
        ReLU+PE counter-example.
        """) + [
        code("""\
        if TINY:
            SIZE, WIDTH, DEPTH, BATCH, EPOCHS = 32, 32, 3, 128, 3
        else:
            SIZE, WIDTH, DEPTH, BATCH, EPOCHS = 256, 256, 5, 512, 20
        DENSE_FIELDS = ("gaussian", "sine", "wavelet")
        SPARSE_FIELDS = ("relu", "relu_pe")
        """),
        code(FIND_IMAGE),
        code(TRAIN_HELPERS),
        md("""\
        ## HVP sparsity per layer

        `jaxprecond.diagnostics.hvp_sparsity(obj_fn, params, key)` takes one HVP with a
        Rademacher probe (as the paper) and returns, for every parameter array, the fraction of
        entries of `Hv` that are exactly zero. We measure it at initialisation on a mini-batch
        of BATCH pixels and group the arrays by layer (`dense_i`; a wavelet layer also has the
        `scale_i` map of its Gaussian window).
        """),
        code("""\
        def layer_sparsity(model, params, batch, key):
            \"\"\"Fraction of exact zeros of one Hv, per layer, weighted by parameter count.\"\"\"
            loss_fn = mse_loss(model)
            frac = jaxprecond.diagnostics.hvp_sparsity(lambda p: loss_fn(p, batch), params, key)
            layers = {}
            for name in frac:  # "dense_2" (and the wavelet's "scale_2") -> layer 2
                layer = int(name.split("_")[-1])
                zeros, size = layers.get(layer, (0.0, 0))
                for leaf_frac, leaf in zip(jax.tree.leaves(frac[name]),
                                           jax.tree.leaves(params[name])):
                    zeros, size = zeros + float(leaf_frac) * leaf.size, size + leaf.size
                layers[layer] = (zeros, size)
            return {f"layer {i}": zeros / size for i, (zeros, size) in sorted(layers.items())}


        rng = np.random.default_rng(0)
        idx = rng.choice(len(coords), BATCH, replace=False)
        probe_batch = {"coords": jnp.asarray(coords[idx]), "pixels": jnp.asarray(pixels[idx])}
        sparsity = {}
        for field in DENSE_FIELDS + SPARSE_FIELDS:
            model = fields.make(field, width=WIDTH, depth=DEPTH)
            params = model.init(jax.random.key(0), jnp.zeros((1, 2)))["params"]
            sparsity[field] = layer_sparsity(model, params, probe_batch, jax.random.key(1))
            print(f"{field:9s}",
                  "  ".join(f"{k}: {100 * v:5.1f}%" for k, v in sparsity[field].items()))
        """),
        code("""\
        import matplotlib.pyplot as plt

        layers = list(sparsity["gaussian"])
        names = DENSE_FIELDS + SPARSE_FIELDS
        width = 0.8 / len(names)
        fig, ax = plt.subplots(figsize=(8, 3.5))
        for i, field in enumerate(names):
            values = [100 * sparsity[field][layer] for layer in layers]
            ax.bar(np.arange(len(layers)) + (i - (len(names) - 1) / 2) * width, values, width,
                   label=field, hatch="//" if field in SPARSE_FIELDS else None)
        ax.set_xticks(np.arange(len(layers)), layers)
        ax.set(ylabel="exact zeros in Hv (%)",
               title="HVP sparsity at initialisation (Theorems 4.2 / 4.3)")
        ax.legend(ncol=len(names), fontsize=8)
        fig.tight_layout()
        plt.show()
        """),
        md("""\
        The sine, Gaussian and wavelet fields give (numerically) no zeros, as Theorem 4.2 says.
        The ReLU fields give exact zeros: the entry of `Hv` for a weight joining two units is
        zero unless some point of the batch activates both units, so the zeros concentrate in
        the hidden layers, grow as units die during training (the paper's Fig. 4 averages over
        training) and thin out with larger batches. The first layer of ReLU+PE sees every point
        through the encoding and is nearly dense. (A Gaussian field in float32 can show a
        handful of zeros from underflow, for units whose band misses every point of the batch:
        dense in exact arithmetic, negligible in practice.)

        ## The counter-example: ReLU+PE, where Adam wins

        We train a ReLU+PE field with ESGD and with Adam at the reference learning rates for this
        field (ESGD 0.1, Adam 1e-3) and follow the sparsity of `Hv` along training.
        """),
        code("""\
        def sparsity_log():
            log = []
            def on_epoch(model, params, batch):
                per_layer = layer_sparsity(model, params, batch, jax.random.key(len(log)))
                log.append(100 * np.mean(list(per_layer.values())))
            return log, on_epoch


        relu_pe = {}
        for name, tx, label in [("ESGD", jaxprecond.esgd(0.1), "ESGD lr 0.1"),
                                ("Adam", optax.adam(1e-3), "Adam lr 1e-3")]:
            log, on_epoch = sparsity_log()
            relu_pe[name] = fit("relu_pe", tx, lr_name=label, on_epoch=on_epoch)
            relu_pe[name]["sparsity"] = log
        """),
        code("""\
        fig, axes = plt.subplots(1, 4, figsize=(15, 3.5))
        for name, run in relu_pe.items():
            axes[0].plot(run["history"]["epoch"], run["history"]["psnr"], marker=".", label=name)
            axes[1].plot(range(1, EPOCHS + 1), run["sparsity"], marker=".", label=name)
        axes[0].set(title="ReLU+PE field", xlabel="epoch", ylabel="PSNR (dB)")
        axes[1].set(title="zeros in Hv along training", xlabel="epoch",
                    ylabel="mean over layers (%)")
        for ax in axes[:2]:
            ax.grid(alpha=0.3)
            ax.legend()
        for ax, name in zip(axes[2:], relu_pe):
            ax.imshow(relu_pe[name]["recon"])
            ax.set_title(f"{name}: {relu_pe[name]['history']['psnr'][-1]:.2f} dB")
            ax.axis("off")
        fig.tight_layout()
        plt.show()
        """),
        md("""\
        ## Why Adam wins here

        In the full configuration Adam should end above ESGD on the ReLU+PE field, the reverse
        of the Gaussian and wavelet fields of notebook 01 (the tiny configuration's numbers mean
        nothing). The paper's explanation (Sec. 4.2, after Theorem 4.3): with a sparse `Hv`,
        only a few gradient components get scaled by curvature, so the preconditioner "will not
        be adding much to the optimization process". Concretely, ESGD's running average of
        `(Hv)**2` stays at zero for every entry `Hv` never reaches, and there the step is set by
        the constant `eps` rather than by curvature.

        Adam needs no HVP: its second moment `E[g**2]` is a diagonal Gauss-Newton
        preconditioner (the paper's Sec. 4, Eq. 10; `jaxprecond.diagnostics.gauss_newton_diagonal`
        computes it exactly), available for every parameter with a gradient, which is why it
        remains the right choice for ReLU and ReLU+PE fields, and why it beats plain SGD.

        Rule of thumb from the paper: **smooth, non-piecewise-linear activations (sine, Gaussian,
        wavelet, sinc) -> ESGD; ReLU / ReLU+PE -> Adam.** Check a new architecture with
        `jaxprecond.diagnostics.hvp_sparsity` before reaching for a curvature preconditioner.
        """),
    ]


def notebook_03() -> list:
    return preamble("""\
        # Using jaxprecond in your own pipeline

        jaxprecond's optimizers are plain Optax transforms, so they compose with everything
        Optax offers. This notebook shows:

        1. a custom loss (any twice-differentiable `loss_fn(params, batch)`),
        2. an Optax pipeline: a learning-rate schedule, `optax.clip_by_global_norm` and
           `optax.inject_hyperparams` around `jaxprecond.esgd`,
        3. `jaxprecond.make_train_step` with the batch sharded across **all devices** of the
           runtime (`parallel="sharded"`, which also works on one device) and with `pmap`,
        4. saving and restoring params and optimizer state with orbax-checkpoint.
        """) + [
        code("""\
        if TINY:
            SIZE, WIDTH, DEPTH, BATCH, EPOCHS = 32, 32, 3, 128, 3
        else:
            SIZE, WIDTH, DEPTH, BATCH, EPOCHS = 128, 256, 5, 512, 20
        """),
        code("""\
        import jax
        import jax.numpy as jnp
        import numpy as np
        import optax

        import jaxprecond
        import jaxprecond_fields as fields

        devices = jax.devices()
        print(f"{len(devices)} device(s):", devices)
        """),
        code(FIND_IMAGE),
        md("""\
        ## 1. A custom loss

        The transforms receive the loss as the extra argument `obj_fn` (params -> loss on this
        batch) and differentiate it twice, so any smooth loss works. Here: the Charbonnier loss
        `sqrt(r**2 + delta**2)`, a robust, smooth alternative to the MSE.
        """),
        code("""\
        model = fields.make("gaussian", width=WIDTH, depth=DEPTH)
        init_params = model.init(jax.random.key(0), jnp.zeros((1, 2)))["params"]


        def charbonnier_loss(params, batch, delta=1e-2):
            residual = model.apply({"params": params}, batch["coords"]) - batch["pixels"]
            return jnp.mean(jnp.sqrt(residual**2 + delta**2))
        """),
        md("""\
        ## 2. An Optax pipeline around ESGD

        `optax.inject_hyperparams` turns ESGD's learning rate into state you can read (and, for
        constants, change) between steps; the schedule is a warm-up followed by a cosine decay.
        Name ESGD's integer settings (`update_interval`, `warmup`, `seed`) in `static_args`:
        `inject_hyperparams` would otherwise turn every number into a (weakly typed) array in
        the state, which costs a recompilation after restoring a checkpoint (section 5).
        `axis_name` is only needed under `pmap` (section 4).
        """),
        code("""\
        steps_per_epoch = len(coords) // BATCH
        total_steps = EPOCHS * steps_per_epoch
        schedule = optax.warmup_cosine_decay_schedule(
            init_value=0.0, peak_value=0.15, warmup_steps=max(1, total_steps // 10),
            decay_steps=total_steps, end_value=0.015)


        def make_tx(axis_name=None):
            esgd = optax.inject_hyperparams(
                jaxprecond.esgd, static_args=("update_interval", "warmup", "seed", "axis_name"))
            return optax.chain(
                optax.clip_by_global_norm(1.0),
                esgd(learning_rate=schedule, update_interval=20, warmup=10, seed=0,
                     axis_name=axis_name),
            )


        tx = make_tx()
        """),
        md("""\
        ## 3. A train step sharded across every device

        `make_train_step(loss_fn, tx, parallel="sharded")` compiles one `jax.jit` step over a
        1-D mesh of all devices: params and optimizer state replicated (`step.place`), the batch
        split along its first axis (`step.shard`, so BATCH must divide by the device count).
        The curvature estimate then needs no explicit `pmean`: XLA reduces across devices.
        The metrics are the loss and whether the step was finite (non-finite steps are skipped).
        """),
        code("""\
        assert BATCH % len(devices) == 0, "the batch must split evenly across the devices"
        step = jaxprecond.make_train_step(charbonnier_loss, tx, parallel="sharded")
        params, opt_state = step.place(init_params), step.place(tx.init(init_params))

        rng = np.random.default_rng(0)
        batches = [rng.choice(len(coords), BATCH, replace=False) for _ in range(total_steps)]


        def run_steps(step, params, opt_state, indices):
            losses = []
            for idx in indices:
                batch = step.shard({"coords": coords[idx], "pixels": pixels[idx]})
                params, opt_state, metrics = step(params, opt_state, batch)
                losses.append(metrics["loss"])
            return params, opt_state, np.asarray(losses)


        half = total_steps // 2
        params, opt_state, losses = run_steps(step, params, opt_state, batches[:half])
        injected = opt_state[1]  # the chain's second transform: inject_hyperparams(esgd)
        print(f"after {half} steps: loss {losses[-1]:.4f}, "
              f"learning rate {float(injected.hyperparams['learning_rate']):.4f}")
        """),
        md("""\
        ## 4. The same with `pmap`

        `pmap` runs one replica per device. The curvature transforms then need the axis name so
        that each replica's HVP is averaged (`pmean`) like the gradient and the replicas never
        diverge: build the transform with `axis_name="batch"`, the default of `make_train_step`.
        On the same batches it follows the sharded run (up to float rounding).
        """),
        code("""\
        tx_pmap = make_tx(axis_name="batch")
        step_pmap = jaxprecond.make_train_step(charbonnier_loss, tx_pmap, parallel="pmap")
        p_params = step_pmap.place(init_params)
        p_state = step_pmap.place(tx_pmap.init(init_params))
        check = min(3, half)
        _, _, pmap_losses = run_steps(step_pmap, p_params, p_state, batches[:check])
        print("sharded:", losses[:check])
        print("pmap:   ", pmap_losses)
        np.testing.assert_allclose(pmap_losses, losses[:check], rtol=1e-4)
        """),
        md("""\
        ## 5. Checkpoint with orbax, restore, continue

        The optimizer state (moments, curvature estimate, step counts, the probes' PRNG key and
        the injected hyperparameters) is a pytree like the params, so orbax saves it as is.
        Restoring into abstract arrays (`jax.ShapeDtypeStruct`s with shardings) of the same
        structure puts the arrays back where the step wants them.
        """),
        code("""\
        import tempfile

        import orbax.checkpoint as ocp

        ckpt_dir = pathlib.Path(tempfile.mkdtemp()) / "checkpoint"
        state = {"params": params, "opt_state": opt_state}
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(ckpt_dir, state)
        checkpointer.wait_until_finished()

        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        restored = checkpointer.restore(ckpt_dir, abstract)
        print("saved to", ckpt_dir)
        """),
        code("""\
        # Continuing from the restored state gives exactly the same run as continuing directly.
        params, opt_state, losses_direct = run_steps(step, params, opt_state, batches[half:])
        r_params, r_state, losses_restored = run_steps(
            step, restored["params"], restored["opt_state"], batches[half:])
        np.testing.assert_array_equal(losses_direct, losses_restored)
        print(f"final loss {losses_direct[-1]:.4f} (direct), {losses_restored[-1]:.4f} (restored)")
        """),
        code("""\
        import matplotlib.pyplot as plt

        host_params = step.fetch(params)  # one un-replicated copy of NumPy arrays
        recon = np.clip(np.asarray(model.apply({"params": host_params}, coords)), 0, 1)
        mse = float(np.mean((recon - pixels) ** 2))
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
        axes[0].plot(np.concatenate([losses, losses_direct]))
        axes[0].axvline(half, color="gray", ls="--", label="checkpoint")
        axes[0].set(xlabel="step", ylabel="Charbonnier loss", yscale="log")
        axes[0].legend()
        axes[1].imshow(image)
        axes[1].set_title("target")
        axes[2].imshow(recon.reshape(SIZE, SIZE, 3))
        axes[2].set_title(f"reconstruction: {-10 * np.log10(mse):.2f} dB")
        for ax in axes[1:]:
            ax.axis("off")
        fig.tight_layout()
        plt.show()
        """),
        md("""\
        ## Notes

        - Any Optax transform works with `make_train_step` (`optax.adam`, `optax.contrib.sophia`
          with a jaxprecond estimator as `hessian_diagonal_fn`, ...). Outside it, call
          `tx.update(grads, state, params, obj_fn=lambda p: loss_fn(p, batch))` yourself.
        - ESGD refreshes its curvature under `jax.lax.cond`, so steps without a refresh pay no
          HVP. Under `vmap` the cond becomes a select (every step pays), and inside
          `optax.MultiSteps` the refresh schedule counts micro-steps.
        - Multi-host: call `jax.distributed.initialize(...)` first, then the same
          `parallel="sharded"` step; each process passes its part of the batch to `step.shard`.
        """),
    ]


NOTEBOOKS = {
    "01_esgd_vs_adam_image.ipynb": notebook_01,
    "02_activation_matters.ipynb": notebook_02,
    "03_use_in_your_pipeline.ipynb": notebook_03,
}


def build(name: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    }
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"  # stable ids: rebuilding gives identical files
    nbformat.validate(nb)
    return nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=HERE, help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in NOTEBOOKS:
        nbformat.write(build(name), args.out / name)
        print(args.out / name)


if __name__ == "__main__":
    main()
