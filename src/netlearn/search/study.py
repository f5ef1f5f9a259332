"""A search's settings and its Optuna study: created once, with the settings stored in it.

``search init`` writes the settings (space, training options, sampler,
trials, population, pruner, seed) into the study's user attributes, so that
workers need only the storage and the study's name.  For a grid every point
is enqueued here, once: Optuna's GridSampler would hand a point to several
workers that ask at once.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..data.tabular import SCALES, TASKS
from .space import Space, SpaceError
from .storage import SearchError, optuna

SAMPLERS = ("random", "grid", "tpe")
PRUNERS = ("none", "halving")
#: The study's user attribute holding the settings.
SETTINGS_KEY = "netlearn_settings"
#: At most this many trials share one Population (four threads of 16 lanes).
MAX_POPULATION = 64


@dataclass
class Settings:
    """Everything a worker needs to train a study's trials (values not searched keep ``train``'s defaults)."""

    space: dict = field(default_factory=dict)
    layers: list = field(default_factory=lambda: [784, 30, 10])
    activation: list = field(default_factory=lambda: ["sigmoid"])
    cost: str = "cross-entropy"
    init: str = "default"
    output: str | None = None
    eta: float = 0.5
    lmbda: float = 5.0
    mu: float = 0.0
    batch_size: int = 10
    dropout: float = 0.0
    optimizer: str = "sgd"
    epochs: int = 30
    data: str = "mnist"
    #: ``--data FILE``'s options (see :func:`netlearn.data.tabular.load_tabular`); ``data`` and the files are
    #: absolute paths, so a worker elsewhere needs the same files at the same paths.
    target: str | None = None
    task: str | None = None
    scale: str = "standard"
    validation: str | None = None
    validation_split: float | None = None
    test: str | None = None
    train_size: int | None = None
    eval: str = "validation"
    sampler: str = "random"
    trials: int | None = None
    population: int | None = None
    pruner: str = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise SearchError(f"--sampler {self.sampler}: choose one of {', '.join(SAMPLERS)}.")
        if self.pruner not in PRUNERS:
            raise SearchError(f"--pruner {self.pruner}: choose one of {', '.join(PRUNERS)}.")
        try:
            space = Space(self.space)
            grid = space.grid() if self.sampler == "grid" else None
        except SpaceError as exc:
            raise SearchError(str(exc)) from None
        if self.trials is None:
            self.trials = len(grid) if grid is not None else MAX_POPULATION
        for name in ("trials", "population", "epochs"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise SearchError(f"--{name} must be a whole number >= 1, got {v!r}.")
        if self.population is None:
            self.population = min(MAX_POPULATION, self.trials)
        if self.scale not in SCALES:
            raise SearchError(f"--scale {self.scale}: choose one of {', '.join(SCALES)}.")
        if self.task not in (None, *TASKS):
            raise SearchError(f"--task {self.task}: choose one of {', '.join(TASKS)}.")
        v = self.validation_split
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1):
            raise SearchError(f"--validation-split must be a fraction in [0, 1), got {v!r}.")

    @property
    def space_(self) -> Space:
        return Space(self.space)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        return cls(**d)


def make_sampler(settings: Settings, seed: int | None) -> Any:
    """Random or multivariate TPE; a grid's enqueued points come first whatever the sampler."""
    opt = optuna()
    if settings.sampler == "tpe":
        return opt.samplers.TPESampler(multivariate=True, seed=seed)
    return opt.samplers.RandomSampler(seed=seed)


def create_study(storage: Any, name: str, settings: Settings, sampler_seed: int | None = None) -> Any:
    """A new study holding ``settings`` (and, for a grid, its enqueued points); an equal existing one is reused.

    An existing study with other settings is refused.
    """
    opt = optuna()
    wanted = settings.to_dict()
    try:
        study = opt.load_study(study_name=name, storage=storage, sampler=make_sampler(settings, sampler_seed))
    except KeyError:
        study = None
    if study is not None:
        stored = study.user_attrs.get(SETTINGS_KEY)
        if stored != wanted:
            diff = sorted(k for k in set(wanted) | set(stored or {}) if (stored or {}).get(k) != wanted.get(k))
            raise SearchError(f"the study {name!r} exists with other settings ({', '.join(diff)}); "
                              f"choose another --study name or use the same options.")
        return study
    study = opt.create_study(study_name=name, storage=storage, direction="maximize",
                             sampler=make_sampler(settings, sampler_seed))
    study.set_user_attr(SETTINGS_KEY, wanted)
    if settings.sampler == "grid":
        for point in settings.space_.grid():
            study.enqueue_trial(point)
    return study


def load_study(storage: Any, name: str, sampler_seed: int | None = None) -> tuple[Any, Settings]:
    """The study and its settings, or a SearchError when it does not exist or was not made by ``search init``."""
    opt = optuna()
    try:
        study = opt.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in opt.get_all_study_summaries(storage)] if storage is not None else []
        known = f" (the storage holds: {', '.join(names)})" if names else " (the storage holds no study)"
        raise SearchError(f"no study named {name!r}{known}; create it with 'netlearn search init'.") from None
    stored = study.user_attrs.get(SETTINGS_KEY)
    if stored is None:
        raise SearchError(f"the study {name!r} was not created by 'netlearn search init' (it holds no settings).")
    settings = Settings.from_dict(stored)
    study.sampler = make_sampler(settings, sampler_seed)
    return study, settings


__all__ = ["Settings", "create_study", "load_study", "make_sampler", "SAMPLERS", "PRUNERS", "MAX_POPULATION"]
