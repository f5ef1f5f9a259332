"""Overfitting on the full training set: all 50,000 images, 30 epochs, no regularization.

The book's ``overfitting_full.png``: with 50 times more data the gap between
training and test accuracy shrinks to a few percent (the book: 97.86% on the
training data against 95.33% on the test data, a 2.53% gap where 1,000 images
left 17.73%) -- more training data is one of the best cures for
overfitting.  Large initialization, eta 0.5, test data monitored.
"""
from __future__ import annotations

from .common import Context, Summary
from .overfitting import run_overfitting

DESCRIPTION = "[784,30,10], all 50,000 images, 30 epochs, eta 0.5, lmbda 0, large init, test data monitored"


def run(ctx: Context) -> Summary:
    """50,000 images, 30 epochs, lmbda 0 (quick: 3 epochs)."""
    return run_overfitting(ctx, train_size=50_000, epochs=30, lmbda=0.0, quick_epochs=3,
                           training_cost_xmin=0, test_accuracy_xmin=0, full_data=True)
