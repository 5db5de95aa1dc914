"""Datasets: readers, the synthetic default, folds and normalization.

Every source becomes one in-memory form, ``Flows``; ``make_fold`` turns it into the
normalized ``(N, T, 3)`` train/validation/test arrays and the per-class ``Stats`` of a fold.

    flows = load("synthetic", scale=0.05)
    fold = make_fold(flows, 0)          # fold.x_train (N, 20, 3) float32, fold.stats, ...
    fold = make_transfer_fold(flows, other, 0)   # test split = another dataset (docs/data.md)

Command line: ``python -m jtcaug.data info|download|export-synthetic|from-pcap``
(``--help``).
"""

from jtcaug.data.args import (
    add_dataset_arguments,
    add_test_dataset_arguments,
    load_from_args,
    load_test_from_args,
)
from jtcaug.data.cache import default_cache_dir
from jtcaug.data.flows import DatasetError, Flows
from jtcaug.data.flowtable import FieldMapping, read_flow_table
from jtcaug.data.folds import N_FOLDS, Fold, make_fold, normalize
from jtcaug.data.layouts import LAYOUTS
from jtcaug.data.mirage import MirageCuration, read_mirage
from jtcaug.data.registry import DEFAULT_DATASET, dataset_names, load
from jtcaug.data.synthetic import export_mirage19, generate
from jtcaug.data.tcbench import read_tcbench
from jtcaug.data.transfer import make_transfer_fold

__all__ = [
    "DEFAULT_DATASET",
    "N_FOLDS",
    "DatasetError",
    "LAYOUTS",
    "FieldMapping",
    "Flows",
    "Fold",
    "MirageCuration",
    "add_dataset_arguments",
    "add_test_dataset_arguments",
    "dataset_names",
    "default_cache_dir",
    "export_mirage19",
    "generate",
    "load",
    "load_from_args",
    "load_test_from_args",
    "make_fold",
    "make_transfer_fold",
    "normalize",
    "read_flow_table",
    "read_mirage",
    "read_tcbench",
]
