"""Exact diagnostics on problems with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprecond import diagnostics
from tests.jaxprecond.helpers import gaussian, mlp_init, mse_loss, regression_batch


def test_hessian_row_norms_and_diagonal_of_a_quadratic():
    a = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, -2.0], [0.0, -2.0, 5.0]])
    obj = lambda p: 0.5 * p["x"] @ a @ p["x"]
    params = {"x": jnp.ones(3)}
    np.testing.assert_allclose(diagnostics.hessian(obj, params), a, rtol=1e-6)
    np.testing.assert_allclose(diagnostics.hessian_diagonal(obj, params)["x"], jnp.diag(a))
    np.testing.assert_allclose(diagnostics.hessian_row_norms(obj, params)["x"],
                               np.linalg.norm(np.asarray(a), axis=1), rtol=1e-6)


def test_condition_numbers():
    h = jnp.diag(jnp.array([1.0, -10.0, 100.0]))
    assert float(diagnostics.condition_number(h)) == pytest.approx(100.0)
    assert np.isinf(float(diagnostics.condition_number(jnp.diag(jnp.array([1.0, 0.0])))))
    # A diagonal Hessian is perfectly equilibrated by its own |diagonal|.
    assert float(diagnostics.preconditioned_condition_number(h, jnp.abs(jnp.diag(h)))) == (
        pytest.approx(1.0))
    obj = lambda x: 0.5 * x @ h @ x
    kappas = diagnostics.condition_numbers(obj, jnp.ones(3))
    assert float(kappas["hessian"]) == pytest.approx(100.0)
    assert float(kappas["equilibration"]) == pytest.approx(1.0, rel=1e-5)
    assert float(kappas["jacobi"]) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        diagnostics.condition_number(jnp.ones((2, 3)))


def test_hvp_sparsity_relu_sparse_gaussian_dense():
    params = mlp_init(jax.random.PRNGKey(0), sizes=(2, 64, 64, 1))
    batch = regression_batch(jax.random.PRNGKey(1), n=4)
    key = jax.random.PRNGKey(2)
    dense = diagnostics.hvp_sparsity(lambda p: mse_loss(gaussian)(p, batch), params, key)
    sparse = diagnostics.hvp_sparsity(lambda p: mse_loss(jax.nn.relu)(p, batch), params, key)
    assert max(float(x) for x in jax.tree.leaves(dense)) == 0.0
    # With 4 points some hidden ReLU units are dead for every point: their rows of the HVP are 0.
    assert float(sparse[1]["w"]) > 0.05
    assert all(0.0 <= float(x) <= 1.0 for x in jax.tree.leaves(sparse))


def test_gauss_newton_diagonal():
    x = jax.random.normal(jax.random.PRNGKey(0), (20, 4))
    y = jax.random.normal(jax.random.PRNGKey(1), (20,))
    residual = lambda p: x @ p - y
    p = jnp.zeros(4)
    # For linear least squares 0.5 ||r||^2 the Gauss-Newton matrix is the Hessian X^T X.
    obj = lambda q: 0.5 * jnp.sum(residual(q) ** 2)
    np.testing.assert_allclose(diagnostics.gauss_newton_diagonal(residual, p),
                               diagnostics.hessian_diagonal(obj, p), rtol=1e-5)
    # Adam's view: with the loss itself as a 1-vector residual, diag(J^T J) = g * g.
    g = jax.grad(obj)(p)
    np.testing.assert_allclose(
        diagnostics.gauss_newton_diagonal(lambda q: jnp.atleast_1d(obj(q)), p), g * g, rtol=1e-5)
