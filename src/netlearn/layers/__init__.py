"""Layers (modules): each turns ``u`` into ``v`` forward and ``dL/dv`` into ``dL/du`` backward."""
from .activations import Activation, Identity, ReLU, Sigmoid, Softmax, Step, Tanh
from .base import Module, Stochastic
from .batchnorm import BatchNorm
from .dense import Dense
from .dropout import Dropout
from .noise import GaussianNoise

#: Module classes by name, for loading saved networks.
MODULES: dict[str, type[Module]] = {cls.__name__: cls for cls in (Dense, Sigmoid, Tanh, ReLU, Identity, Softmax, Step,
                                                                  Dropout, BatchNorm, GaussianNoise)}

__all__ = ["Module", "Stochastic", "Dense", "Activation", "Sigmoid", "Tanh", "ReLU", "Identity", "Softmax", "Step",
           "Dropout", "BatchNorm", "GaussianNoise", "MODULES"]
