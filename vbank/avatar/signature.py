"""A typed name drawn as a handwritten-looking signature: what a signing pad sends."""

from __future__ import annotations

import base64

import cv2
import numpy as np


def signature_png(name: str) -> str:
    """``name`` as a signature, a PNG data URL. Hershey fonts draw ASCII only: other letters
    stay in the signed name (which is what the branch checks) and are drawn as '?'."""
    canvas = np.full((150, 400, 3), 255, np.uint8)
    text = name.encode("ascii", "replace").decode()
    cv2.putText(canvas, text, (20, 95), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.6, (20, 20, 20), 2,
                cv2.LINE_AA)
    cv2.line(canvas, (20, 115), (380, 112), (60, 60, 60), 1, cv2.LINE_AA)
    ok, png = cv2.imencode(".png", canvas)
    if not ok:
        raise ValueError("could not encode the signature as PNG")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()
