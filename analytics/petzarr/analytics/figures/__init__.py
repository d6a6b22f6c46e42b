"""Figures: matplotlib pictures of a subject or a cohort, axes in physical units.

Conventions (as a PET reader expects): coronal and axial views in radiological
orientation (the patient's right on the image's left), superior up in coronal and
sagittal views, anterior up in axial views and on the left in sagittal ones; SUV colour
scales start at 0. Rendering uses the non-interactive Agg backend and returns PNG bytes.
"""
