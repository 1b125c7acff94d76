"""Evaluation: accuracy tables, noisy-depth robustness, curves and confusion matrices, reports."""
