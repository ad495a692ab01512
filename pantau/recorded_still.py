"""One picture of a camera from its recordings at a chosen time (labelling a zone's state from
what was recorded then): the first frame at or after that moment, within two seconds. A box
looks in its own recordings folder; scaled out, the server asks the worker boxes."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pantau.replay import _frames, recordings_in

WITHIN = timedelta(seconds=2)


def frame_at(folder: Path, camera_id: str, at: datetime) -> npt.NDArray[np.uint8]:
    """FileNotFoundError (with the reason) when nothing of the camera was recorded then."""
    clips = recordings_in(folder, camera_id, at, at + WITHIN)
    for _, image in _frames(clips, 1.0, at, at + WITHIN):
        return np.asarray(image, np.uint8)
    raise FileNotFoundError(f"no frame of {camera_id} recorded at {at.isoformat()}")
