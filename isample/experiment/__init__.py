"""The pipeline's experiments: typed params, data, models, the equal-budget training run, timing."""
