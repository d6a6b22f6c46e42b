"""``petzarr explore COHORT``: a local web app over a cohort's statistics, QC and images.

Two tabs. *Cohort*: one organ's value (SUV mean, SUV peak, SUL mean, Patlak Ki) per
subject by sex and age group, with each group's mean, 95 % confidence interval (thick)
and prediction interval (thin), every subject's input function for dynamic PET, and the
QC table, flagged subjects first. *Subject*: a PET coronal MIP marking the chosen slice,
and that axial CT slice with the map's organ contours and the PET fused (the chosen organ
highlighted; a click on an organ chooses it), the organ's statistics, and for dynamic PET
its TAC and Patlak plot.

Built on Panel: HoloViz, on the Bokeh server the Dask dashboard already brings into
petzarr's environment, served from this Python process by ``pn.serve`` with no
JavaScript build. Images are read lazily, at the coarsest pyramid level whose axial plane
is still about :data:`VIEW_SIZE` voxels across (level 0 without a pyramid); a slider move
reads one CT slice and one PET slice (both cached), the PET's MIP is kept per subject.

Inside: ``volumes`` (the images at view resolution), ``tables`` (the commands' tables),
``views`` (the figures), ``clickable`` (a figure that reports clicks), ``app`` (one
session's layout) and ``server`` (``pn.serve`` on its own thread).
"""

from petzarr.analytics.explore.app import make_app
from petzarr.analytics.explore.clickable import ClickableFigure
from petzarr.analytics.explore.server import Served, serve
from petzarr.analytics.explore.tables import KI, Kinetics, read_table
from petzarr.analytics.explore.volumes import PetView, SubjectVolumes, cohort_volumes, view_level

__all__ = ["KI", "ClickableFigure", "Kinetics", "PetView", "Served", "SubjectVolumes",
           "cohort_volumes", "make_app", "read_table", "serve", "view_level"]  # fmt: skip
