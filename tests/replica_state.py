"""What the 1-vs-2-replica tests compare: every weight, and every optimizer variable.

Adam cancels a uniform scale of the gradients (m / sqrt(v)), so the weights alone barely show a
loss that each replica forgot to divide by the replica count: a review's mutation (no division)
moved the MLP's weights by 2.5e-6 against the tests' atol of 2e-6, and passed the VAE's test.
Adam's m and v (m = the last gradient where beta_1 = 0, as ALAE trains) show it 2x and 4x."""

import numpy as np


def training_state(model) -> dict[str, list[np.ndarray]]:
    """{"weights": every weight, "optimizer": every variable of every optimizer} of a trained model."""
    optimizers = model.checkpointed_optimizers()
    return {"weights": [v.numpy().copy() for v in model.weights],
            "optimizer": [v.numpy().copy() for key in sorted(optimizers) for v in optimizers[key].variables]}


def relative_difference(one: list[np.ndarray], two: list[np.ndarray]) -> float:
    """|two - one| / |one| over all the arrays together."""
    difference = sum(float(np.sum((b.astype(np.float64) - a) ** 2)) for a, b in zip(one, two, strict=True))
    return (difference / sum(float(np.sum(a.astype(np.float64) ** 2)) for a in one)) ** 0.5


def assert_same_training_state(one: dict, two: dict, rtol=2e-5, atol=2e-6, optimizer_rtol=1e-4) -> None:
    """Weights within rtol / atol; each optimizer variable within `optimizer_rtol` of its own
    largest magnitude (v holds squared gradients, far below any fixed atol)."""
    assert len(one["weights"]) == len(two["weights"]) and len(one["optimizer"]) == len(two["optimizer"])
    for a, b in zip(one["weights"], two["weights"]):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)
    assert any(np.abs(a).max() > 0 for a in one["optimizer"])  # the optimizers were used
    for a, b in zip(one["optimizer"], two["optimizer"]):
        scale = float(np.abs(a).max())
        np.testing.assert_allclose(b, a, rtol=optimizer_rtol, atol=optimizer_rtol * scale)
