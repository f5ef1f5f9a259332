"""Regularization on the full training set: all 50,000 images, 30 epochs, lmbda = 5.0.

The book's ``regularized_full.png``: lmbda grows with the data (5.0 for
50,000 images keeps ``lmbda / n`` near the 0.1 / 1,000 of ``regularized``);
training and test accuracy now stay within about a percent of each other and
the test accuracy rises to about 96.5%.  Large initialization, eta 0.5, test
data monitored.
"""
from __future__ import annotations

from .common import Context, Summary
from .overfitting import run_overfitting

DESCRIPTION = "[784,30,10], all 50,000 images, 30 epochs, eta 0.5, lmbda 5.0, large init, test data monitored"


def run(ctx: Context) -> Summary:
    """50,000 images, 30 epochs, lmbda 5.0 (quick: 3 epochs)."""
    return run_overfitting(ctx, train_size=50_000, epochs=30, lmbda=5.0, quick_epochs=3,
                           training_cost_xmin=0, test_accuracy_xmin=0, full_data=True)
