"""G6's search as pure functions: candidate policies, their scores from stored results, and
the draws of each generation (deterministic in the campaign seed and the elites)."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pandas as pd

from experiments.grid import ConfigSpec
from jtcaug import aug

BASELINE = "none"
BEST = "g6_best"
# [chosen] Dirichlet concentration of a child around its parent: a weight w varies with a
# standard deviation of about sqrt(w (1 - w) / 21), e.g. 0.1 around 1/3.
DEFAULT_CONCENTRATION = 20.0
# Added to every Dirichlet parameter so that a member of weight ~0 can come back.
_FLOOR = 0.1
VAL_F1 = "val_weighted_f1"
_CANDIDATE = re.compile(r"^g(?P<gen>\d+)_c(?P<idx>\d+)$")
_SEARCH_SALT = zlib.crc32(b"jtcaug-g6-search")


def candidate_name(gen: int, idx: int) -> str:
    return f"g{gen}_c{idx:02d}"


def policy_weights(how: str) -> np.ndarray:
    """The ``(n_pool,)`` float64 probabilities of a ``weighted[...]`` string."""
    return np.asarray(aug.member_weights(how), np.float64)


def _rng(seed: int, gen: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, gen, _SEARCH_SALT]))


def first_generation(n_pool: int, population: int, seed: int) -> list[np.ndarray]:
    """The uniform policy and ``population - 1`` draws from the flat Dirichlet."""
    rng = _rng(seed, 0)
    return [np.full(n_pool, 1.0 / n_pool)] + [
        rng.dirichlet(np.ones(n_pool)) for _ in range(population - 1)]


def next_generation(elites: list[np.ndarray], gen: int, population: int, seed: int,
                    concentration: float) -> list[np.ndarray]:
    """``population`` children of ``elites`` (best first), child j around elite j mod E."""
    rng = _rng(seed, gen)
    return [rng.dirichlet(concentration * elites[j % len(elites)] + _FLOOR)
            for j in range(population)]


def candidate_scores(grid: list[ConfigSpec], results: pd.DataFrame, search_folds: int,
                     finished_only: bool = False) -> pd.DataFrame | None:
    """``config, gen, idx, aug, val_f1`` (validation weighted F1 summed over the search
    folds) of every candidate in ``grid``; None while one lacks a finished search fold
    (``finished_only``: those are left out instead)."""
    candidates = [c for c in grid if c.group == "search"]
    if results.empty or VAL_F1 not in results.columns:
        return None
    rows = []
    for c in candidates:
        values = results.loc[results["config"] == c.name, VAL_F1].dropna()
        if len(values) < search_folds:
            if finished_only:
                continue
            return None
        match = _CANDIDATE.match(c.name)
        rows.append(dict(config=c.name, gen=int(match["gen"]), idx=int(match["idx"]),
                         aug=c.train["aug"], val_f1=float(values.sum())))
    return pd.DataFrame(rows)


def ranked(scores: pd.DataFrame) -> pd.DataFrame:
    """Best first; ties go to the earlier generation, then the lower index."""
    return scores.sort_values(["val_f1", "gen", "idx"], ascending=[False, True, True],
                              kind="stable")
