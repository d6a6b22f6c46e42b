"""Physical and protocol constants every part of petzarr agrees on, written once."""

from __future__ import annotations

from typing import Final

__all__ = ["F18_HALF_LIFE_S", "HEDYPET_FRAME_DURATIONS_S"]

#: F-18 half-life, s (109.77 min).
F18_HALF_LIFE_S: Final = 6586.2

#: hedyPET's dynamic framing, ``{frame duration [s]: how many}`` in acquisition order:
#: 2 s x 20, 5 s x 10, 10 s x 15, 60 s x 6, 120 s x 10, 300 s x 8 (69 frames, 70 min from
#: injection).
HEDYPET_FRAME_DURATIONS_S: Final = {2.0: 20, 5.0: 10, 10.0: 15, 60.0: 6, 120.0: 10, 300.0: 8}
