"""NIfTI cohorts to Zarr: sources, reading, resampling, planning, writing, execution."""
