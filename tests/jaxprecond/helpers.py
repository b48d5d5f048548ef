"""Small models shared by the jaxprecond tests."""

import jax
import jax.numpy as jnp


def mlp_init(key, sizes=(2, 6, 5, 1)):
    params = []
    keys = jax.random.split(key, len(sizes) - 1)
    for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True):
        kw, kb = jax.random.split(k)
        params.append({"w": jax.random.normal(kw, (m, n)) / jnp.sqrt(m),
                       "b": 0.1 * jax.random.normal(kb, (n,))})
    return params


def mlp_apply(params, x, act):
    for layer in params[:-1]:
        x = act(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def gaussian(z):
    return jnp.exp(-0.5 * z**2 / 0.5**2)


def mse_loss(act):
    def loss(params, batch):
        x, y = batch
        return jnp.mean((mlp_apply(params, x, act) - y) ** 2)

    return loss


def regression_batch(key, n=32, d_in=2):
    kx, ky = jax.random.split(key)
    x = jax.random.uniform(kx, (n, d_in), minval=-1, maxval=1)
    y = jnp.sin(3 * x[:, :1]) * jnp.cos(2 * x[:, 1:2]) + 0.1 * jax.random.normal(ky, (n, 1))
    return x, y
