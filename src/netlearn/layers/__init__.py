"""Layers (modules): each turns ``u`` into ``v`` forward and ``dL/dv`` into ``dL/du`` backward."""
from .activations import Activation, Identity, ReLU, Sigmoid, Softmax, Step, Tanh
from .base import Module
from .dense import Dense

#: Module classes by name, for loading saved networks.
MODULES: dict[str, type[Module]] = {cls.__name__: cls for cls in (Dense, Sigmoid, Tanh, ReLU, Identity, Softmax, Step)}

__all__ = ["Module", "Dense", "Activation", "Sigmoid", "Tanh", "ReLU", "Identity", "Softmax", "Step", "MODULES"]
