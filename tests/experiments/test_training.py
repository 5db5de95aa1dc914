"""The default unit function's data side: folds, train-here-test-there, records."""

import dataclasses
import types

import numpy as np

from experiments import cli, g1
from experiments.training import FoldSource, train_record


def test_test_dataset_becomes_every_folds_test_split():
    parser, dests = cli.build_parser(g1.CAMPAIGN)
    args = parser.parse_args(["--dataset", "synthetic", "--scale", "0.02",
                              "--test-dataset", "synthetic"])
    assert "test_dataset" in dests and "test_data_dir" not in dests
    source = FoldSource(args, n_folds=2)
    fold = source.get(1)
    assert fold.test_dataset == source.test_flows.name == "synthetic-mirage19"
    # The whole test dataset is the test split (all its classes are known to training).
    assert len(fold.y_test) == source.test_flows.n_flows
    assert len(fold.y_train) < source.flows.n_flows
    result = types.SimpleNamespace(metrics={"weighted_f1": 0.5}, epochs_run=1, best_epoch=1,
                                   n_params=1, wall_time_s=0.1, stop_reason="max_epochs",
                                   history={})
    record = train_record(result, dataclasses.replace(fold, unseen_test_counts={"new_app": 7}))
    assert record["extra"] == {"test_unseen[new_app]": 7}
    assert sum(record["class_counts_train"].values()) == len(fold.y_train)
    assert np.array_equal(source.get(1).x_test, fold.x_test)
