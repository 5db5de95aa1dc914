"""register(): a user's per-sample function works wherever a built-in does."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug import SIZE, aug
from jtcaug.aug import registry
from tests.aug.helpers import random_flows, toy_stats

STATS, _, _ = toy_stats()


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Every test starts from the built-ins and leaves them as they were."""
    monkeypatch.setattr(registry, "SAMPLE_FUNCTIONS", dict(registry.SAMPLE_FUNCTIONS))
    monkeypatch.setattr(registry, "FAMILY", dict(registry.FAMILY))
    from jtcaug.aug import combine

    monkeypatch.setattr(combine, "SAMPLE_FUNCTIONS", registry.SAMPLE_FUNCTIONS)
    yield


def scale_sizes(key, x, alpha, ctx):
    """Multiplies every size by a random factor in [1 - alpha, 1]."""
    factor = 1.0 - alpha * jax.random.uniform(key)
    return x.at[:, SIZE].multiply(factor.astype(x.dtype))


def test_a_registered_function_works_alone_and_in_every_combination():
    aug.register("scale_sizes", scale_sizes, "amplitude")
    assert registry.FAMILY["scale_sizes"] == "amplitude"
    xb = jnp.asarray(random_flows(6, 1))
    yb = jnp.asarray(np.arange(6) % 3, jnp.int32)
    for how in ("scale_sizes", "ensemble[scale_sizes,wrap]", "random_stack[scale_sizes]",
                "masked_stack:0[scale_sizes]", "trivial[scale_sizes]", "rand:2[scale_sizes]"):
        aug.validate_how(how)
        out, labels = jax.jit(lambda k, how=how: aug.augment_batch(k, xb, yb, STATS, how))(
            jax.random.key(0)
        )
        assert out.shape == xb.shape and not np.array_equal(out, xb), how
        if "wrap" not in how:
            np.testing.assert_array_equal(out[..., 1:], xb[..., 1:])  # only sizes move
    single, _ = aug.augment_batch(jax.random.key(0), xb, yb, STATS, "scale_sizes", alpha=0.0)
    np.testing.assert_array_equal(single, xb)


@pytest.mark.parametrize("name", ["wrap", "cutmix", "none", "ensemble", "rand"])
def test_a_taken_name_is_refused(name):
    with pytest.raises(ValueError, match=r"register\('.*', scale_sizes\): the name .* is taken"):
        aug.register(name, scale_sizes, "amplitude")


def test_a_second_registration_of_a_name_is_refused():
    aug.register("scale_sizes", scale_sizes, "amplitude")
    with pytest.raises(ValueError, match="is taken"):
        aug.register("scale_sizes", scale_sizes, "amplitude")


@pytest.mark.parametrize("name", ["Scale", "my-aug", "a[b]", "", "x:1"])
def test_a_name_the_how_grammar_cannot_carry_is_refused(name):
    with pytest.raises(ValueError, match="lowercase identifier"):
        aug.register(name, scale_sizes, "amplitude")


def test_an_unknown_family_is_refused():
    with pytest.raises(ValueError, match="family must be one of amplitude, masking, sequence"):
        aug.register("scale_sizes", scale_sizes, "colour")


def test_a_wrong_signature_is_refused_naming_the_function():
    def two_args(key, x):
        return x

    with pytest.raises(ValueError) as error:
        aug.register("two_args", two_args, "sequence")
    message = str(error.value)
    assert "two_args" in message and "(key, x, alpha, ctx)" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("fn", "what"),
    [
        (lambda key, x, alpha, ctx: x[:-1], "float32[19, 3]"),
        (lambda key, x, alpha, ctx: x.astype(jnp.float16), "float16[20, 3]"),
        (lambda key, x, alpha, ctx: x[:, 0], "float32[20]"),
    ],
)
def test_a_function_that_changes_shape_or_dtype_is_refused(fn, what):
    with pytest.raises(ValueError) as error:
        aug.register("bad_shape", fn, "sequence")
    message = str(error.value)
    assert "bad_shape" in message and what in message and "keep the shape and dtype" in message
    assert "\n" not in message


def test_a_function_that_fails_to_trace_is_refused_in_one_line():
    def needs_concrete(key, x, alpha, ctx):
        return x if float(alpha) > 0 else x  # float() of a tracer fails

    with pytest.raises(ValueError) as error:
        aug.register("needs_concrete", needs_concrete, "sequence")
    assert "needs_concrete" in str(error.value) and "\n" not in str(error.value)


def test_shape_checked_again_at_first_trace_on_another_length():
    def drops_one_when_long(key, x, alpha, ctx):
        return x[:20] if x.shape[0] > 20 else x  # fine on the (20, 3) dummy, not on T=24

    aug.register("drops_one", drops_one_when_long, "sequence")
    fn = registry.SAMPLE_FUNCTIONS["drops_one"]
    with pytest.raises(ValueError, match="drops_one_when_long returned float32\\[20, 3\\]"):
        fn(jax.random.key(0), jnp.ones((24, 3)), 0.5, None)


def test_import_augmentation_module_registers_its_functions(tmp_path, monkeypatch):
    (tmp_path / "my_user_augs.py").write_text(
        "import jax\n"
        "from jtcaug import aug\n"
        "aug.register('zero_iat', lambda key, x, alpha, ctx: x.at[:, 2].set(0.0), 'amplitude')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = aug.import_augmentation_module("my_user_augs")
    assert module.__name__ == "my_user_augs"
    aug.validate_how("ensemble[zero_iat,wrap]")
    sys.modules.pop("my_user_augs", None)


def test_an_import_that_fails_is_one_line_naming_the_module(tmp_path, monkeypatch):
    (tmp_path / "broken_augs.py").write_text("import no_such_package_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, cause in (("broken_augs", "no_such_package_here"), ("missing.augs", "missing")):
        with pytest.raises(ValueError) as error:
            aug.import_augmentation_module(name)
        message = str(error.value)
        assert f"augmentation module {name!r}" in message and cause in message
        assert "\n" not in message
