"""Hyper-parameter search: random, grid and Bayesian (TPE), pruned, in populations, over many machines.

The book's chapter 3 ends its advice on hyper-parameters with the automated
techniques: grid search, random search (Bergstra and Bengio's "Random Search
for Hyper-Parameter Optimization", 2012) and Bayesian optimization ("Practical
Bayesian Optimization of Machine Learning Algorithms", 2012).  Optuna (extra
``search``) provides the samplers, the bookkeeping and the storage; netlearn
trains the trials a worker asks for as one :class:`netlearn.Population`, K
networks for the price of a few.

- :mod:`.space`: the search space from the options' texts;
- :mod:`.storage`: in memory, journal file, PostgreSQL or SQLite;
- :mod:`.study`: the settings stored in the study, grid points enqueued once;
- :mod:`.worker`: ask, train as a population, prune by successive halving, heartbeats;
- :mod:`.summary`: the JSON summary, the table, the figures;
- :mod:`.api`: :func:`search`.

The module itself is callable: ``netlearn.search(eta="0.01:10:log", ...)`` is
:func:`netlearn.search.api.search`.  Optuna is imported only when a search
runs, so ``import netlearn`` (and ``netlearn.search.book``) need no Optuna.
"""
from __future__ import annotations

import sys
import types

from .api import SearchResult, search as _search
from .storage import SearchError


class _CallableModule(types.ModuleType):
    """``netlearn.search`` is both this package and the function that runs a search."""

    def __call__(self, *args, **kwargs) -> SearchResult:
        return _search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
run = _search

__all__ = ["run", "SearchResult", "SearchError"]
