"""Cohort analytics: kernels on plain arrays, labelled wrappers, cohort-wide drivers."""
