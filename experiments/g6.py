"""G6 - automatic augmentation: search the weights of a weighted policy, compare it to G4.

A candidate policy is a probability vector w over an augmentation pool (``--pool``, default
G4's): each augmented sample gets one member drawn with probabilities w and alpha ~ U(0, 1),
the combination ``weighted[name:w,...]`` (jtcaug.aug), injected once (inject:1) as in G4.

Search (on the first ``--search-folds`` folds, scored by VALIDATION weighted F1 summed over
them; test scores play no part):

- generation 0: the uniform policy and ``P - 1`` draws from Dirichlet(1, ..., 1);
- generation g + 1: ``P`` children, child j of the ``j mod E``-th best of the ``E`` elites,
  the best candidates of all generations so far (a (mu + lambda) search: an elite stays
  one until a better candidate appears, without being retrained); a child's weights are
  Dirichlet(concentration * w_parent + 0.1) around its parent's.

Draws come from the campaign seed, the generation and the elites' weights alone, so the
search is deterministic, and generation g + 1 depends only on generation g's stored results:
a rerun of the command rebuilds the generations finished so far and goes on. Candidates of a
generation share a unit group and one compiled program (their weights are data:
``run_stacked(aug_weights=...)``), so a unit trains several candidates at once.

Final stage, on the first ``--folds`` folds (G4's fold numbering): the best policy found,
the baseline and G4's combinations over the same pool (ensemble, random_stack, masked_stack
p in {0.3, 0.5, 0.7}) plus trivial; report: test weighted F1 with 95% CIs per configuration,
gains over the baseline, and the best policy against each of them fold by fold (Wilcoxon).

    python -m experiments.g6 --dataset mirage19 --population 8 --generations 4
    python -m experiments.g6 --quick            # synthetic default, minutes on 2 cores
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from experiments import g4
from experiments.campaign import Campaign
from experiments.cli import main
from experiments.execution import RunRecord, UnitFn
from experiments.grid import CampaignError, ConfigSpec, Unit
from experiments.policy_search import (
    BASELINE,
    BEST,
    DEFAULT_CONCENTRATION,
    VAL_F1,
    candidate_name,
    candidate_scores,
    first_generation,
    next_generation,
    policy_weights,
    ranked,
)
from experiments.training import FoldSource, train_record, train_unit
from jtcaug import aug

POLICY = "inject:1"
DEFAULT_POPULATION = 8
DEFAULT_GENERATIONS = 4
DEFAULT_ELITE = 2
DEFAULT_SEARCH_FOLDS = 4


# ------------------------------------------------------------------------------ options


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("G6")
    group.add_argument("--pool", type=g4._aug_pool, default=None,
                       help=f"the augmentations a policy weighs (default G4's, "
                       f"{','.join(g4.DEFAULT_TOP3)})")
    # Plain integers, checked in build_grid: a bad value is one line naming the option.
    group.add_argument("--population", type=_int, default=DEFAULT_POPULATION, metavar="P",
                       help="candidate policies trained per generation (>= 1)")
    group.add_argument("--generations", type=_int, default=DEFAULT_GENERATIONS, metavar="G",
                       help="generations of the search (>= 1)")
    group.add_argument("--elite", type=_int, default=None, metavar="E",
                       help=f"best candidates so far that the next generation varies (1..P; "
                       f"default min({DEFAULT_ELITE}, P))")
    group.add_argument("--search-folds", type=_int, default=DEFAULT_SEARCH_FOLDS, metavar="S",
                       help="the first S folds score candidates by validation F1 (<= --folds)")
    group.add_argument("--concentration", type=_positive_float, default=DEFAULT_CONCENTRATION,
                       help="Dirichlet concentration of a child around its parent (larger: "
                       "closer)")


def pool(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(args.pool or g4.DEFAULT_TOP3)


def check_options(args: argparse.Namespace) -> None:
    """One-line CampaignError for search options out of range; fills the default elite."""
    if args.elite is None and args.population >= 1:
        args.elite = min(DEFAULT_ELITE, args.population)
    for name in ("population", "generations", "elite", "search_folds"):
        value = getattr(args, name)
        if value < 1:
            raise CampaignError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.elite > args.population:
        raise CampaignError(f"--elite {args.elite} exceeds --population {args.population}")
    if args.search_folds > args.folds:
        raise CampaignError(f"--search-folds {args.search_folds} exceeds --folds {args.folds}")


def options(args: argparse.Namespace) -> dict:
    check_options(args)
    return {
        "pool": list(pool(args)),
        "population": args.population,
        "generations": args.generations,
        "elite": args.elite,
        "search_folds": args.search_folds,
        "concentration": args.concentration,
    }


# ------------------------------------------------------------------------------ search


def candidate_configs(args, gen: int, weights: list[np.ndarray]) -> list[ConfigSpec]:
    names = pool(args)
    return [
        ConfigSpec(candidate_name(gen, i), "search",
                   {"aug": aug.weighted_how(names, w), "policy": POLICY, "alpha": None},
                   max_folds=args.search_folds, unit_group=f"g6_generation{gen}")
        for i, w in enumerate(weights)
    ]


def final_configs(args, best_how: str) -> list[ConfigSpec]:
    names = pool(args)
    grid = [ConfigSpec(BASELINE, "baseline", {"aug": "none", "policy": "none", "alpha": None}),
            ConfigSpec(BEST, "best", {"aug": best_how, "policy": POLICY, "alpha": None})]
    hows = g4.combination_hows(names) + [("trivial", f"trivial[{','.join(names)}]")]
    grid += [ConfigSpec(name, "combined", {"aug": how, "policy": POLICY, "alpha": None})
             for name, how in hows]
    return grid


def build_grid(args: argparse.Namespace) -> list[ConfigSpec]:
    check_options(args)
    return candidate_configs(args, 0, first_generation(len(pool(args)), args.population,
                                                       args.seed))


def next_stage(args: argparse.Namespace, grid: list[ConfigSpec],
               results: pd.DataFrame) -> list[ConfigSpec]:
    """The next generation, then the final comparison, once the last generation finished."""
    if any(c.group != "search" for c in grid):
        return []
    scores = candidate_scores(grid, results, args.search_folds)
    if scores is None:
        return []
    order = ranked(scores)
    done = int(scores["gen"].max()) + 1
    if done < args.generations:
        elites = [policy_weights(h) for h in order["aug"].head(args.elite)]
        return candidate_configs(args, done, next_generation(
            elites, done, args.population, args.seed, args.concentration))
    return final_configs(args, order["aug"].iloc[0])


# ------------------------------------------------------------------------------ training


def make_unit_fn(args: argparse.Namespace, n_folds: int) -> UnitFn:
    """Trains a unit and records each run's validation weighted F1 (of its best-validation
    state) beside its test metrics. Runs of weighted policies over the pool (candidates of
    one generation, or the best one) train in one program with their weights as data."""
    folds = FoldSource(args, n_folds)
    shared_how = f"weighted[{','.join(pool(args))}]"

    def unit_fn(unit: Unit) -> list[RunRecord | BaseException]:
        how = aug.parse_how(unit.config.train["aug"])
        if how.kind == "weighted":
            outputs = _train_weighted(folds, unit, shared_how)
        else:
            outputs = train_unit(folds, unit, return_state=True)
        return [out if isinstance(out, BaseException) else _record(*out) for out in outputs]

    return unit_fn


def _train_weighted(folds: FoldSource, unit: Unit, shared_how: str) -> list:
    import jax

    import jtcaug.train
    from jtcaug.train.stacked import run_stacked

    shared = aug.parse_how(shared_how).names
    weights = []
    for spec in unit.runs:
        how = aug.parse_how(spec.config.train["aug"])
        if how.names != shared:
            raise CampaignError(f"{spec.config.name}: pool {how.names} is not the campaign's")
        weights.append(aug.member_weights(spec.config.train["aug"]))
    kwargs = dict(unit.runs[0].train_kwargs(), aug=shared_how)
    config = jtcaug.train.TrainConfig(**kwargs)
    fold_list = [folds.get(spec.fold) for spec in unit.runs]
    keys = [jax.random.PRNGKey(spec.key_seed) for spec in unit.runs]
    results = run_stacked(fold_list, config, keys, return_state=True,
                          aug_weights=np.asarray(weights))
    return [r if isinstance(r, BaseException) else (f, r)
            for f, r in zip(fold_list, results, strict=True)]


def _record(fold, result) -> RunRecord:
    from jtcaug.evaluation.metrics import classification_metrics
    from jtcaug.train.runner import predict

    record = train_record(result, fold)
    val_pred = predict(result.state, np.asarray(fold.x_val))
    val = classification_metrics(np.asarray(fold.y_val), val_pred, list(fold.class_names))
    record["extra"][VAL_F1] = float(val["weighted_f1"])
    return RunRecord(record)


# ------------------------------------------------------------------------------ campaign


def build_report(ri) -> list:
    from experiments import g6_report

    return g6_report.build_report(ri)


CAMPAIGN = Campaign(
    name="g6",
    title="G6 - automatic augmentation: searched policy weights vs G4's combinations",
    build_grid=build_grid,
    build_report=build_report,
    add_arguments=add_arguments,
    options=options,
    make_unit_fn=make_unit_fn,
    quick_defaults={"population": 4, "generations": 2, "search_folds": 2},
    next_stage=next_stage,
)

if __name__ == "__main__":
    sys.exit(main(CAMPAIGN))
