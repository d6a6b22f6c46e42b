"""Tables (pandas): organ statistics and TACs laid out in hedyPET's columns, Patlak fits,
SUV/SUL normalisation constants and the metadata columns they are read from, and the wide
(one row per subject) form of the statistics.
"""

from petzarr.analytics.tables.label_stats import label_statistics
from petzarr.analytics.tables.metadata_columns import ColumnMap
from petzarr.analytics.tables.patlak import patlak_from_files, patlak_table, read_input_function
from petzarr.analytics.tables.suv_norms import normalisation_constants, norms_table
from petzarr.analytics.tables.tacs import TAC_COLUMNS, label_tacs
from petzarr.analytics.tables.wide import wide_table

__all__ = [
    "TAC_COLUMNS",
    "ColumnMap",
    "label_statistics",
    "label_tacs",
    "normalisation_constants",
    "norms_table",
    "patlak_from_files",
    "patlak_table",
    "read_input_function",
    "wide_table",
]
