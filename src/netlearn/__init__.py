"""netlearn: fully-connected feed-forward networks trained by back-propagation.

>>> import netlearn
>>> training, validation, test = netlearn.data.load_mnist()
>>> net = netlearn.Network([784, 30, 10])
>>> history = net.fit(training, 30, 10, 0.5, lmbda=5.0, evaluation_data=validation)
"""
from . import callbacks, checkpoints, costs, data, gradcheck, history, init, optimizers, schedules, second_order, training
from .costs import CrossEntropyCost, HingeCost, LogLikelihoodCost, QuadraticCost
from .io import ModelFileError, load
from .callbacks import EarlyStopping
from .checkpoints import Checkpoint
from .layers import BatchNorm, Dense, Dropout, GaussianNoise, Identity, Module, ReLU, Sigmoid, Softmax, Step, Tanh
from .network import Network, Sequential
from .population import Population
from .regularizers import L1, L2, MaxNorm
from .callbacks import Callback
from .history import DivergenceError, History
from . import search  # noqa: E402  (after Population: the search trains populations)

__version__ = "0.1.0"

__all__ = [
    "Network", "Sequential", "Population", "Module", "Dense", "Sigmoid", "Tanh", "ReLU", "Identity", "Softmax",
    "Step", "Dropout", "BatchNorm", "GaussianNoise",
    "QuadraticCost", "CrossEntropyCost", "LogLikelihoodCost", "HingeCost", "L1", "L2", "MaxNorm",
    "History", "Callback", "EarlyStopping", "Checkpoint", "DivergenceError", "ModelFileError", "load", "costs", "data",
    "init", "optimizers", "schedules", "second_order", "callbacks", "checkpoints", "gradcheck", "history", "training",
    "search",
]
