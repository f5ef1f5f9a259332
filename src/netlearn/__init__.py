"""netlearn: fully-connected feed-forward networks trained by back-propagation.

>>> import netlearn
>>> training, validation, test = netlearn.data.load_mnist()
>>> net = netlearn.Network([784, 30, 10])
>>> history = net.fit(training, 30, 10, 0.5, lmbda=5.0, evaluation_data=validation)
"""
from . import costs, data, init, optimizers
from .costs import CrossEntropyCost, HingeCost, LogLikelihoodCost, QuadraticCost
from .io import ModelFileError, load
from .layers import Dense, Identity, Module, ReLU, Sigmoid, Softmax, Step, Tanh
from .network import Network, Sequential
from .population import Population
from .regularizers import L1, L2
from .training import Callback, DivergenceError, History

__version__ = "0.1.0"

__all__ = [
    "Network", "Sequential", "Population", "Module", "Dense", "Sigmoid", "Tanh", "ReLU", "Identity", "Softmax", "Step",
    "QuadraticCost", "CrossEntropyCost", "LogLikelihoodCost", "HingeCost", "L1", "L2",
    "History", "Callback", "DivergenceError", "ModelFileError", "load", "costs", "data", "init", "optimizers",
]
