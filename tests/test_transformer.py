"""The Transformer backbone: shapes, parameter count, padding, determinism, jit, vmap."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug import DIR, backbones
from jtcaug.model import LATENT_DIM, ResNet1d, count_params, n_classes_of
from jtcaug.model import init_variables as resnet_init
from jtcaug.transformer import Transformer, init_variables, real_positions


def _flows(key, lengths, t_len=20):
    """``(len(lengths), t_len, 3)`` flows with ``lengths[i]`` real packets, zeros after."""
    ks, kd, ki = jax.random.split(key, 3)
    n = len(lengths)
    size = jax.random.uniform(ks, (n, t_len))
    direction = jnp.where(jax.random.bernoulli(kd, 0.5, (n, t_len)), 1.0, -1.0)
    iat = jax.random.uniform(ki, (n, t_len))
    x = jnp.stack([size, direction, iat], axis=-1)
    real = jnp.arange(t_len)[None, :] < jnp.asarray(lengths)[:, None]
    return jnp.where(real[..., None], x, 0.0)


def _fill_padding(key, x, lengths):
    """``x`` with random size and IAT at every padding position (direction stays 0)."""
    noise = jax.random.uniform(key, x.shape, minval=-3.0, maxval=3.0).at[..., DIR].set(0.0)
    padding = jnp.arange(x.shape[1])[None, :] >= jnp.asarray(lengths)[:, None]
    return jnp.where(padding[..., None], noise, x)


def test_shapes_and_the_class_count():
    variables = init_variables(jax.random.key(0), 7)
    logits, latent = Transformer(7).apply(variables, jnp.zeros((5, 20, 3)), train=False)
    chex.assert_shape(logits, (5, 7))
    chex.assert_shape(latent, (5, LATENT_DIM))
    assert n_classes_of(variables) == 7
    assert set(variables) == {"params"}  # no BatchNorm statistics


def test_parameter_count_is_exact_and_of_the_resnet_s_order():
    shapes = jax.eval_shape(lambda: init_variables(jax.random.key(0), 20))
    n = count_params(shapes["params"])
    # embed 256 + position 1,280 + 1 layer x 33,472 + final norm 128 + latent 8,320
    # + head 2,580
    assert n == 46_036
    resnet = count_params(jax.eval_shape(lambda: resnet_init(jax.random.key(0), 20))["params"])
    assert 0.1 < n / resnet < 10  # the same order of magnitude
    nine = count_params(jax.eval_shape(lambda: init_variables(jax.random.key(0), 9))["params"])
    assert n - nine == 11 * (LATENT_DIM + 1)


def test_real_positions_follow_the_last_non_zero_direction():
    x = np.zeros((3, 6, 3), np.float32)
    x[0, :4, DIR] = [1, -1, 1, 1]
    x[1, [0, 3], DIR] = [1, -1]  # a zero column inside the prefix (a masked packet) is real
    x[2, :, 0] = 0.5  # sizes without any direction: no packet at all
    expected = [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]]
    np.testing.assert_array_equal(real_positions(jnp.asarray(x)), np.asarray(expected, bool))


def test_padding_contents_never_change_the_outputs():
    lengths = [1, 5, 12, 19, 20]
    x = _flows(jax.random.key(1), lengths)
    filled = _fill_padding(jax.random.key(2), x, lengths)
    assert not np.array_equal(x, filled)
    variables = init_variables(jax.random.key(3), 4)
    apply = jax.jit(Transformer(4).apply, static_argnames="train")
    for a, b in zip(apply(variables, x, train=False), apply(variables, filled, train=False),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    # The same change is visible to a model that reads every position (the ResNet), so the
    # equality above is the Transformer's masking at work.
    resnet = jax.jit(ResNet1d(4).apply, static_argnames="train")
    rv = resnet_init(jax.random.key(3), 4)
    assert not np.allclose(resnet(rv, x, train=False)[1], resnet(rv, filled, train=False)[1])


def test_real_packets_and_in_prefix_zero_columns_do_change_the_outputs():
    lengths = [10]
    x = _flows(jax.random.key(4), lengths)
    variables = init_variables(jax.random.key(5), 4)
    apply = jax.jit(Transformer(4).apply, static_argnames="train")
    base = apply(variables, x, train=False)[1]
    real_changed = x.at[0, 9, 0].add(0.5)  # the last real packet
    assert not np.allclose(apply(variables, real_changed, train=False)[1], base)
    # A packet masked in place (zero column before the last real one) is read as it is.
    masked = x.at[0, 4].set(0.0)
    masked_changed = masked.at[0, 4, 0].set(0.5)
    assert not np.allclose(
        apply(variables, masked, train=False)[1], apply(variables, masked_changed, train=False)[1]
    )


def test_a_flow_without_packets_gives_finite_outputs():
    variables = init_variables(jax.random.key(6), 4)
    logits, latent = Transformer(4).apply(variables, jnp.zeros((2, 20, 3)), train=False)
    assert np.isfinite(logits).all() and np.isfinite(latent).all()


def test_same_key_is_bitwise_equal_and_different_keys_differ():
    init = jax.jit(init_variables, static_argnums=1)
    a, b, c = init(jax.random.key(0), 5), init(jax.random.key(0), 5), init(jax.random.key(1), 5)
    chex.assert_trees_all_equal(a, b)
    leaves_a, leaves_c = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(c)
    assert not any(np.array_equal(u, v) for u, v in zip(leaves_a, leaves_c, strict=True)
                   if np.ndim(u) > 0 and np.std(u) > 0)


def test_train_flag_changes_nothing_and_jit_agrees_with_eager():
    x = _flows(jax.random.key(7), [3, 20, 8])
    variables = init_variables(jax.random.key(8), 4)
    model = Transformer(4)
    eager = model.apply(variables, x, train=False)
    jitted = jax.jit(model.apply, static_argnames="train")(variables, x, train=True)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_vmap_over_runs_equals_a_loop():
    x = _flows(jax.random.key(9), [4, 20, 11, 1])
    keys = jax.random.split(jax.random.key(10), 3)

    def one_run(key):
        return Transformer(4).apply(init_variables(key, 4), x, train=False)

    batched = jax.jit(jax.vmap(one_run))(keys)
    for i, key in enumerate(keys):
        for a, b in zip(jax.jit(one_run)(key), batched, strict=True):
            np.testing.assert_allclose(b[i], a, rtol=1e-5, atol=1e-6)


def test_the_registry_builds_both_backbones_alike():
    x = jnp.zeros((2, 20, 3))
    for name in backbones.MODELS:
        variables = backbones.init_variables(name, jax.random.key(0), 3)
        assert set(variables) == {"params", "batch_stats"}
        assert backbones.model_of(variables) == name
        (logits, latent), updates = backbones.make_model(name, 3).apply(
            variables, x, train=True, mutable=["batch_stats"]
        )
        chex.assert_shape((logits, latent), ((2, 3), (2, LATENT_DIM)))
        assert jax.tree_util.tree_structure(updates["batch_stats"]) == (
            jax.tree_util.tree_structure(variables["batch_stats"])
        )
    assert backbones.init_variables("transformer", jax.random.key(0), 3)["batch_stats"] == {}


def test_the_resnet_from_the_registry_is_the_resnet():
    chex.assert_trees_all_equal(
        backbones.init_variables("resnet1d", jax.random.key(2), 5),
        resnet_init(jax.random.key(2), 5),
    )


@pytest.mark.parametrize("name", ["resnet", "Transformer", "", None])
def test_an_unknown_model_is_one_line_naming_the_choices(name):
    with pytest.raises(ValueError) as caught:
        backbones.check_model(name)
    assert str(caught.value) == (
        f"unknown model {name!r}; choose from resnet1d, transformer"
    )
    with pytest.raises(ValueError, match="no known model"):
        backbones.model_of({"params": {"conv": {}}})
