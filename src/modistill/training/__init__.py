"""Training: the paper's four steps, the Hoffman et al. baseline and the ablations, chained by checkpoints."""
