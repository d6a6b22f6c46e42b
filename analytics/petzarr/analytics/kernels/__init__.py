"""Array kernels: numpy/numba on plain (or Dask) arrays, no tables, no I/O.

Per-label moments, medians and SUVpeak of many label maps in one pass; erosion of every
label at once; per-frame moments of a dynamic series; Patlak per region and per voxel;
hedyPET's aorta segments and input-function VOIs.
"""

from petzarr.analytics.kernels.aorta import aorta_segments
from petzarr.analytics.kernels.erosion import erode_labels
from petzarr.analytics.kernels.frame_moments import frame_moments
from petzarr.analytics.kernels.input_function import input_function_vois
from petzarr.analytics.kernels.ki_map import patlak_ki_map
from petzarr.analytics.kernels.median import label_medians
from petzarr.analytics.kernels.moments import LabelMoments, label_moments
from petzarr.analytics.kernels.patlak import cumulative_simpson, patlak_fit
from petzarr.analytics.kernels.suvpeak import label_peaks

__all__ = [
    "LabelMoments",
    "aorta_segments",
    "cumulative_simpson",
    "erode_labels",
    "frame_moments",
    "input_function_vois",
    "label_medians",
    "label_moments",
    "label_peaks",
    "patlak_fit",
    "patlak_ki_map",
]
