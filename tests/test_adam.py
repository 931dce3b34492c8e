"""FusedAdam: Keras's Adam formula and state, one fused kernel per variable."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from alae_tf.adam import FusedAdam

SETTINGS = {"learning_rate": 0.002, "beta_1": 0.0, "beta_2": 0.99, "epsilon": 1e-8}


def train(optimizer_class, steps=20, jit=False, **settings):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(12)])
    optimizer = optimizer_class(**{**SETTINGS, **settings})
    optimizer.build(model.trainable_variables)
    x = tf.random.stateless_normal([32, 12], seed=[1, 2])

    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - x))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

    for _ in range(steps):
        step()
    return model, optimizer


@pytest.mark.parametrize("settings", [{}, {"beta_1": 0.9, "beta_2": 0.999, "learning_rate": 0.01}])
def test_fused_adam_follows_keras_adam(settings):
    reference, reference_optimizer = train(keras.optimizers.Adam, **settings)
    fused, fused_optimizer = train(FusedAdam, **settings)
    untrained = train(FusedAdam, steps=0)[0]
    assert any(np.abs(a.numpy() - b.numpy()).max() > 1e-2 for a, b in zip(fused.weights, untrained.weights))
    for a, b in zip(reference.weights + reference_optimizer.variables, fused.weights + fused_optimizer.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)  # float32 rounding order


def test_fused_adam_under_xla_matches_the_plain_step():
    plain, jitted = train(FusedAdam)[0], train(FusedAdam, jit=True)[0]
    for a, b in zip(plain.weights, jitted.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_checkpoints_load_across_keras_adam_and_fused_adam(tmp_path):
    model, optimizer = train(keras.optimizers.Adam, steps=3)
    path = tf.train.Checkpoint(model=model, optimizer=optimizer).save(str(tmp_path / "ckpt"))
    fresh, fused = train(FusedAdam, steps=0)
    tf.train.Checkpoint(model=fresh, optimizer=fused).restore(path).assert_existing_objects_matched()
    assert int(fused.iterations.numpy()) == 3
    for a, b in zip(optimizer.variables, fused.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_amsgrad_is_refused():
    with pytest.raises(ValueError, match="no amsgrad"):
        FusedAdam(amsgrad=True)


def test_the_step_scalars_are_made_once_per_apply_not_once_per_variable():
    """Keras's Adam makes the step's beta powers inside each variable's update (2 Pow ops per
    variable in the graph, ~10 ops with the casts); FusedAdam makes them once per apply."""
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16), keras.layers.Dense(12)])  # 4 variables
    optimizer = FusedAdam(**SETTINGS)
    optimizer.build(model.trainable_variables)

    @tf.function
    def apply(grads):
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

    graph = apply.get_concrete_function([tf.TensorSpec(v.shape) for v in model.trainable_variables]).graph
    ops = [op.type for op in graph.get_operations()]
    assert ops.count("ResourceApplyAdam") == 4 and ops.count("Pow") == 2
