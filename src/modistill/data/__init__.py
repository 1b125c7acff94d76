"""Data: readers for the on-disk datasets, splits, the synthetic benchmark, alignment and the training cache."""
