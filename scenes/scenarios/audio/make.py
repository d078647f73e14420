"""Makes the recordings that the real_voice_* scenarios play, from tests/fixtures/audio/real.

    .venv/bin/python scenes/scenarios/audio/make.py

The clean recordings are copied byte for byte. The noisy and the paused one are made with
``vbank.speech.conditions`` (seeded: the same samples on every run) and saved at 16 kHz, the
recordings' own rate, to keep them small; the noise is white up to 8 kHz, the band a 16 kHz
recording has, so the ratio holds in the saved file. README.md says where the recordings
come from and under which licence.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from vbank.speech.audio import RATE
from vbank.speech.conditions import (
    pause_point,
    read_wav,
    real_folder,
    speech_span,
    with_noise,
    with_pause,
    write_wav,
)

HERE = Path(__file__).resolve().parent
#: played as they were recorded
COPIED = ("librivox-0880.wav", "librivox-0930.wav", "goforward.wav")
#: Mandarin answers from tests/fixtures/audio/zh, copied into zh/ (source, name here)
MANDARIN = (("q1-di-er-ge.wav", "q1-di-er-ge.wav"), ("q2-di-yi-xiang.wav", "q2-di-yi-xiang.wav"),
            ("q3-di-si-xiang.wav", "q3-di-si-xiang.wav"),
            ("q8-zhuan-rengong.wav", "zhuan-rengong.wav"),
            ("consent-wo-queren.wav", "wo-queren.wav"))
#: (recording, signal-to-noise ratio in dB, file made)
NOISY = ("librivox-0890.wav", 10.0, "librivox-0890-noise-10db.wav")
#: (recording, pause in seconds, file made)
PAUSED = ("librivox-0920.wav", 0.7, "librivox-0920-pause-700ms.wav")
SEED = 0
SAVED_RATE = 16000


def main() -> None:
    source = real_folder()
    for name in COPIED:
        shutil.copyfile(source / name, HERE / name)
        print(f"{name}: copied")
    (HERE / "zh").mkdir(exist_ok=True)
    for name, copy in MANDARIN:
        shutil.copyfile(source.parent / "zh" / name, HERE / "zh" / copy)
        print(f"zh/{copy}: copied from tests/fixtures/audio/zh/{name}")

    name, snr, made = NOISY
    clean = read_wav(source / name)
    write_wav(HERE / made, with_noise(clean, snr, seed=SEED, band_hz=SAVED_RATE / 2),
              SAVED_RATE)
    noise = read_wav(HERE / made).astype(np.float64) - clean  # measured as saved
    start, end = speech_span(clean)
    speech = np.mean(clean[start:end].astype(np.float64) ** 2)
    print(f"{made}: {name} with white noise, {10 * np.log10(speech / np.mean(noise ** 2)):.1f}"
          f" dB below the speech")

    name, pause_s, made = PAUSED
    clean = read_wav(source / name)
    at = pause_point(clean)
    write_wav(HERE / made, with_pause(clean, pause_s, seed=SEED), SAVED_RATE)
    print(f"{made}: {name} with {pause_s:g} s of its own background noise at {at / RATE:.2f} s")


if __name__ == "__main__":
    main()
