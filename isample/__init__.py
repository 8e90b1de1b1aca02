"""Upper-bound importance sampling (Katharopoulos & Fleuret, ICML 2018) for PyTorch."""

from isample.sampler import ImportanceSampler, Iteration, UniformSampler

__all__ = ["ImportanceSampler", "Iteration", "UniformSampler"]
