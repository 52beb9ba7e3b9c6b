"""The sandbox video's sound: a quiet synthesized bed per shot (numpy sine waves) with a cue at each cut, as AAC."""

from __future__ import annotations

import logging

import av
import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
AAC_FRAME = 1024  # samples per AAC frame: the encoder takes exactly this many (the last may be shorter)
BED_ROOTS = (220.0, 261.63, 196.0, 293.66, 246.94)  # A3, C4, G3, D4, B3: one chord root per shot
BED_LEVEL = 0.12
CUE_HZ, CUE_S, CUE_LEVEL = 1320.0, 0.18, 0.35
FADE_S = 0.03  # a short fade at each shot edge, so a cut never clicks


def soundtrack(shot_seconds: list[int]) -> np.ndarray:
    """Mono float32 samples lasting exactly the shots' total: a chord per shot and a bright cue at each cut."""
    parts = [_bed(index, seconds) for index, seconds in enumerate(shot_seconds)]
    samples = np.concatenate(parts).astype(np.float32)
    cue = _cue()
    start = 0
    for seconds in shot_seconds[:-1]:
        start += seconds * SAMPLE_RATE
        end = min(len(samples), start + len(cue))
        samples[start:end] += cue[: end - start]
    return np.clip(samples, -1.0, 1.0)


def _bed(index: int, seconds: int) -> np.ndarray:
    """A soft major triad on this shot's root, slowly swelling, faded at both ends."""
    t = np.arange(seconds * SAMPLE_RATE, dtype=np.float64) / SAMPLE_RATE
    root = BED_ROOTS[index % len(BED_ROOTS)]
    chord = sum(np.sin(2 * np.pi * root * ratio * t) for ratio in (1.0, 1.25, 1.5)) / 3
    swell = 0.75 + 0.25 * np.sin(2 * np.pi * 0.5 * t)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / FADE_S)
    return BED_LEVEL * chord * swell * fade


def _cue() -> np.ndarray:
    t = np.arange(int(CUE_S * SAMPLE_RATE), dtype=np.float64) / SAMPLE_RATE
    return CUE_LEVEL * np.sin(2 * np.pi * CUE_HZ * t) * np.exp(-t * 25)


class AudioTrack:
    """An AAC stream in a container, fed the soundtrack a second at a time so audio and video interleave."""

    def __init__(self, container: av.container.OutputContainer, samples: np.ndarray) -> None:
        self.stream = container.add_stream("aac", rate=SAMPLE_RATE)
        self.stream.layout = "mono"
        self.stream.bit_rate = 64_000
        self._container, self._samples, self._sent = container, samples, 0

    def write_until(self, seconds: float) -> None:
        """Encode and mux every sample before `seconds`."""
        end = min(len(self._samples), round(seconds * SAMPLE_RATE))
        while self._sent < end:
            chunk = self._samples[self._sent:min(end, self._sent + AAC_FRAME)]
            if len(chunk) < AAC_FRAME and end < len(self._samples):
                break  # wait for the next second rather than send a short frame mid-stream
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, self._sent
            self._container.mux(self.stream.encode(frame))
            self._sent += len(chunk)

    def close(self) -> None:
        """Send what is left and flush the encoder."""
        self.write_until(len(self._samples) / SAMPLE_RATE)
        self._container.mux(self.stream.encode(None))
