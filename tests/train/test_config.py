"""TrainConfig validation and policy parsing."""

import json

import pytest

from jtcaug.train import Policy, TrainConfig, parse_policy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("none", Policy("none")),
        ("replace:0.5", Policy("replace", 0.5)),
        ("replace:1", Policy("replace", 1.0)),
        ("inject:1", Policy("inject", 1)),
        ("inject:8", Policy("inject", 8)),
        ("preaugment:10", Policy("preaugment", 10)),
    ],
)
def test_parse_policy_accepts_the_paper_policies(text, expected):
    assert parse_policy(text) == expected
    assert parse_policy(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("inflate:2", "unknown policy"),
        ("replace", "needs a value"),
        ("replace:0", r"\(0, 1\]"),
        ("replace:1.5", r"\(0, 1\]"),
        ("replace:nan", r"\(0, 1\]"),
        ("replace:half", r"\(0, 1\]"),
        ("inject:0", "positive integer"),
        ("inject:1.5", "positive integer"),
        ("preaugment:-3", "positive integer"),
        ("none:1", "takes no value"),
    ],
)
def test_parse_policy_rejects_bad_policies_with_a_clear_message(text, message):
    with pytest.raises(ValueError, match=message):
        parse_policy(text)


def test_policy_batch_layout():
    assert Policy("inject", 1).originals_per_step(1024) == 512
    assert Policy("inject", 2).originals_per_step(1024) == 341
    assert Policy("inject", 2).step_batch_size(1024) == 1023
    assert Policy("replace", 0.3).step_batch_size(1024) == 1024
    assert Policy("preaugment", 10).training_set_size(70) == 770
    assert Policy("none").training_set_size(70) == 70


def test_defaults_are_the_paper_setup():
    config = TrainConfig().validate()
    assert (config.batch_size, config.max_epochs, config.patience) == (1024, 500, 20)
    assert (config.min_delta, config.learning_rate, config.weight_decay) == (0.02, 1e-3, 1e-4)
    assert config.aug == "none" and config.policy == "none" and config.alpha is None
    assert config.model == "resnet1d"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"aug": "translate"}, "unknown augmentation"),
        ({"aug": "translation"}, "needs a policy"),
        ({"policy": "inject:1"}, "needs an augmentation"),
        ({"aug": "wrap", "policy": "inject:2", "batch_size": 2}, "no originals"),
        ({"alpha": 1.5}, "alpha"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"patience": 2.5}, "patience"),
        ({"min_delta": -0.1}, "min_delta"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"class_weighted": "yes"}, "class_weighted"),
        ({"model": "resnet"}, r"^unknown model 'resnet'; choose from resnet1d, transformer$"),
    ],
)
def test_validate_rejects_bad_fields(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields).validate()


def test_combination_policies_are_accepted():
    TrainConfig(aug="masked_stack:0.3", policy="inject:1").validate()
    TrainConfig(aug="ensemble[translation,wrap]", policy="replace:0.5", alpha=0.5).validate()


def test_to_dict_round_trips_through_json():
    config = TrainConfig(aug="wrap", policy="preaugment:10", alpha=0.5, class_weighted=True,
                         model="transformer")
    restored = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert hash(restored) == hash(config)  # usable as a static jit argument
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"lr": 1.0})
