"""libspeexdsp through ctypes: its acoustic echo canceller and the preprocessor that takes
out the residual echo, one frame at a time.

libspeexdsp is BSD-licensed and packaged by Debian (``libspeexdsp1``, the runtime library
alone); ``make system`` installs it. The canceller is a multi-delay block frequency-domain
adaptive filter (MDF); the preprocessor, told the canceller's state, estimates the echo the
filter left and suppresses it together with some steady noise, at the cost of one frame of
delay (its overlap-add).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import weakref
from functools import cache

import numpy as np

from vbank.speech import SpeechError
from vbank.speech.audio import Pcm

# libspeexdsp's request codes, from speex/speex_echo.h and speex/speex_preprocess.h (1.2.1)
SPEEX_ECHO_SET_SAMPLING_RATE = 24
SPEEX_PREPROCESS_SET_ECHO_STATE = 24

INSTALL_HINT = ("echo cancellation needs libspeexdsp "
                "(Debian/Ubuntu: apt-get install libspeexdsp1; make system installs it)")


@cache
def speexdsp() -> ctypes.CDLL | None:
    """libspeexdsp with its prototypes declared, or None when it is not installed."""
    name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    ptr, num = ctypes.c_void_p, ctypes.c_int
    lib.speex_echo_state_init.restype = ptr
    lib.speex_echo_state_init.argtypes = [num, num]
    lib.speex_echo_state_destroy.argtypes = [ptr]
    lib.speex_echo_state_reset.argtypes = [ptr]
    lib.speex_echo_ctl.argtypes = [ptr, num, ptr]
    lib.speex_echo_cancellation.argtypes = [ptr, ptr, ptr, ptr]
    lib.speex_preprocess_state_init.restype = ptr
    lib.speex_preprocess_state_init.argtypes = [num, num]
    lib.speex_preprocess_state_destroy.argtypes = [ptr]
    lib.speex_preprocess_ctl.argtypes = [ptr, num, ptr]
    lib.speex_preprocess_run.argtypes = [ptr, ptr]
    return lib


def _destroy(lib: ctypes.CDLL, echo: int, pre: int | None) -> None:
    if pre:
        lib.speex_preprocess_state_destroy(pre)
    lib.speex_echo_state_destroy(echo)


class SpeexEcho:
    """libspeexdsp's echo canceller and residual echo suppressor, one frame at a time."""

    def __init__(self, rate: int, frame: int, tail: int, suppress: bool = True) -> None:
        lib = speexdsp()
        if lib is None:
            raise SpeechError(INSTALL_HINT)
        self._lib = lib
        self.frame = frame
        echo = lib.speex_echo_state_init(frame, tail)
        pre = lib.speex_preprocess_state_init(frame, rate) if suppress else None
        if not echo or (suppress and not pre):
            raise SpeechError("libspeexdsp could not make an echo canceller")
        lib.speex_echo_ctl(echo, SPEEX_ECHO_SET_SAMPLING_RATE, ctypes.byref(ctypes.c_int(rate)))
        if pre:
            lib.speex_preprocess_ctl(pre, SPEEX_PREPROCESS_SET_ECHO_STATE, echo)
        self._echo, self._pre = echo, pre
        weakref.finalize(self, _destroy, lib, echo, pre)  # the C states die with this object

    def cancel(self, near: Pcm, far: Pcm) -> Pcm:
        """``near`` (the microphone) without the echo of ``far`` (the speaker's reference)."""
        near = np.ascontiguousarray(near, np.int16)
        far = np.ascontiguousarray(far, np.int16)
        if len(near) != self.frame or len(far) != self.frame:
            raise ValueError(f"frames of {self.frame} samples, not {len(near)} and {len(far)}")
        out = np.empty(self.frame, np.int16)
        self._lib.speex_echo_cancellation(self._echo, near.ctypes.data, far.ctypes.data,
                                          out.ctypes.data)
        if self._pre:
            self._lib.speex_preprocess_run(self._pre, out.ctypes.data)
        return out

    def reset(self) -> None:
        """Forget the echo path learnt (it moved)."""
        self._lib.speex_echo_state_reset(self._echo)
