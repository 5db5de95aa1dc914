"""The paper's ResNet-1d: parameter count, shapes, BatchNorm modes, both convolutions."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug.model import (
    LATENT_DIM,
    Conv1d,
    ResNet1d,
    count_params,
    init_variables,
    n_classes_of,
)


def _shapes(n_classes: int) -> dict:
    # Abstract evaluation: the count needs shapes only, no computation.
    return jax.eval_shape(lambda key: init_variables(key, n_classes), jax.random.PRNGKey(0))


def test_parameter_count_matches_listing_1_1():
    variables = _shapes(20)
    assert count_params(variables["params"]) == 115_028
    # Running mean/var are not parameters: 7 BatchNorms, 4 of 64 channels and 3 of 128.
    assert "batch_stats" in variables
    assert count_params(variables["batch_stats"]) == 2 * (64 + 3 * 64 + 3 * 128)


def _init(n_classes: int) -> dict:
    return jax.jit(init_variables, static_argnums=1)(jax.random.PRNGKey(0), n_classes)


def test_parameter_count_scales_with_the_head_only():
    base = count_params(_shapes(20)["params"])
    nine = count_params(_shapes(9)["params"])
    assert base - nine == 11 * (LATENT_DIM + 1)


def test_shapes_and_feature_lengths():
    model = ResNet1d(7)
    variables = _init(7)
    x = jax.random.uniform(jax.random.PRNGKey(2), (5, 20, 3))
    logits, latent = jax.jit(model.apply, static_argnames="train")(variables, x, train=False)
    chex.assert_shape(logits, (5, 7))
    chex.assert_shape(latent, (5, LATENT_DIM))
    assert n_classes_of(variables) == 7
    # Lengths 20 -> 10 -> 5: the strided kernels see a (k, C_in, C_out) layout.
    params = variables["params"]
    chex.assert_shape(params["stem"]["conv"]["kernel"], (3, 3, 64))
    chex.assert_shape(params["block2"]["shortcut"]["conv"]["kernel"], (1, 64, 128))
    _, state = jax.eval_shape(
        lambda v, x: model.apply(
            v, x, train=False, capture_intermediates=True, mutable=["intermediates"]
        ),
        variables,
        x,
    )
    inter = state["intermediates"]
    assert inter["block1"]["__call__"][0].shape == (5, 10, 64)
    assert inter["block2"]["__call__"][0].shape == (5, 5, 128)


def test_train_mode_updates_running_stats_and_eval_mode_uses_them():
    model = ResNet1d(3)
    variables = _init(3)
    x = 3.0 + jax.random.normal(jax.random.PRNGKey(1), (16, 20, 3))
    apply = jax.jit(model.apply, static_argnames=("train", "mutable"))
    (_, _), updates = apply(variables, x, train=True, mutable=("batch_stats",))
    before = variables["batch_stats"]["stem"]["BatchNorm_0"]["mean"]
    after = updates["batch_stats"]["stem"]["BatchNorm_0"]["mean"]
    assert not np.allclose(before, after)
    # Eval mode is per-sample: a sample's output does not depend on its batch mates.
    single, _ = apply(variables, x[:1], train=False)
    batch, _ = apply(variables, x, train=False)
    np.testing.assert_allclose(single, batch[:1], rtol=1e-5, atol=1e-6)


def test_latent_is_nonnegative_mean_of_relu_features():
    variables = _init(4)
    x = jax.random.uniform(jax.random.PRNGKey(3), (8, 20, 3))
    _, latent = jax.jit(ResNet1d(4).apply, static_argnames="train")(variables, x, train=False)
    assert bool(jnp.all(latent >= 0))


def test_init_variables_follows_the_module_structure_and_torch_bounds():
    variables = _init(20)
    reference = jax.eval_shape(
        lambda: ResNet1d(20).init(jax.random.PRNGKey(0), jnp.zeros((1, 20, 3)), train=False)
    )
    assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(reference)
    chex.assert_trees_all_equal_shapes(variables, reference)
    params = variables["params"]
    stem = np.asarray(params["stem"]["conv"]["kernel"])  # fan_in 3 * 3
    assert np.abs(stem).max() <= 1 / 3 and np.abs(stem).max() > 0.3
    head = np.asarray(params["head"]["kernel"])  # fan_in 128: U(+-0.088), std 0.051
    assert np.abs(head).max() <= 128**-0.5
    np.testing.assert_allclose(head.std(), 128**-0.5 / np.sqrt(3), rtol=0.05)
    np.testing.assert_array_equal(params["stem"]["BatchNorm_0"]["scale"], 1.0)
    np.testing.assert_array_equal(variables["batch_stats"]["stem"]["BatchNorm_0"]["var"], 1.0)


@pytest.mark.parametrize(
    ("kernel", "stride", "c_in", "length"), [(3, 1, 3, 20), (3, 2, 64, 20), (1, 2, 64, 10)]
)
def test_conv1d_matches_xla_convolution_with_pytorch_padding(kernel, stride, c_in, length):
    x = jax.random.normal(jax.random.PRNGKey(0), (4, length, c_in))
    conv = Conv1d(8, kernel, stride)
    variables = conv.init(jax.random.PRNGKey(1), x)
    w = variables["params"]["kernel"]
    chex.assert_shape(w, (kernel, c_in, 8))
    expected = jax.lax.conv_general_dilated(
        x, w, (stride,), ((kernel // 2, kernel // 2),), dimension_numbers=("NWC", "WIO", "NWC")
    )
    out = conv.apply(variables, x)
    chex.assert_shape(out, expected.shape)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_xla_convolution_gives_the_same_model_outputs_and_gradients():
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 20, 3))
    y = jnp.arange(16) % 20
    variables = init_variables(jax.random.PRNGKey(1), 20)
    matmul, xla = ResNet1d(20, conv="matmul"), ResNet1d(20, conv="xla")
    shapes = jax.eval_shape(lambda: xla.init(jax.random.PRNGKey(0), x, train=False))
    chex.assert_trees_all_equal_shapes(shapes, variables)
    assert count_params(shapes["params"]) == 115_028

    def loss(model, params):
        (logits, _), updates = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]},
            x,
            train=True,
            mutable=["batch_stats"],
        )
        return jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(16), y]), updates

    grad = jax.jit(jax.value_and_grad(loss, argnums=1, has_aux=True), static_argnums=0)
    (value, stats), grads = grad(matmul, variables["params"])
    (ref_value, ref_stats), ref_grads = grad(xla, variables["params"])
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    chex.assert_trees_all_close(stats, ref_stats, rtol=1e-4, atol=1e-5)
    chex.assert_trees_all_close(grads, ref_grads, rtol=1e-3, atol=1e-5)
    eval_out = matmul.apply(variables, x, train=False)
    chex.assert_trees_all_close(eval_out, xla.apply(variables, x, train=False), atol=1e-5)


def test_unknown_convolution_is_rejected():
    with pytest.raises(ValueError, match="conv must be one of matmul, xla"):
        ResNet1d(20, conv="fft").init(jax.random.PRNGKey(0), jnp.zeros((1, 20, 3)), train=False)
