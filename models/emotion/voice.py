"""Voice arousal from the customer's leg: loudness, pitch level and range, speech rate,
each against this caller's own baseline (their first seconds of speech).

Pitch and intensity come from Praat (praat-parselmouth); syllable nuclei for the speech
rate are intensity peaks found with ``scipy.signal.find_peaks`` (de Jong & Wempe's
method: voiced peaks standing at least 2 dB above their surroundings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import VoiceConfig
from .results import VoiceFeatures

SAMPLE_RATE = 16_000
_MIN_SAMPLES = int(0.1 * SAMPLE_RATE)


def _as_float_mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio)
    if a.ndim > 1:
        a = a.mean(axis=-1) if a.shape[-1] <= 2 else a.mean(axis=0)
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    a = a.astype(np.float64)
    return np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass
class _Baseline:
    voiced_s: float = 0.0
    loudness_db: float = 0.0
    pitch_st: float = 0.0
    pitch_range_st: float = 0.0
    rate_sps: float = 0.0
    rate_w: float = 0.0

    def add(self, f: VoiceFeatures) -> None:
        w_old, w = self.voiced_s, f.voiced_s
        tot = w_old + w
        if tot <= 0 or f.loudness_db is None or f.pitch_st is None:
            return
        self.loudness_db = (self.loudness_db * w_old + f.loudness_db * w) / tot
        self.pitch_st = (self.pitch_st * w_old + f.pitch_st * w) / tot
        self.pitch_range_st = (self.pitch_range_st * w_old + (f.pitch_range_st or 0.0) * w) / tot
        if f.rate_sps:
            self.rate_sps = (self.rate_sps * self.rate_w + f.rate_sps * w) / (self.rate_w + w)
            self.rate_w += w
        self.voiced_s = tot


class VoiceArousal:
    """One per call (per customer leg): measures utterances and scores their arousal
    0..1 against the caller's baseline, which is built from the first
    ``baseline_seconds`` of voiced speech it is shown."""

    def __init__(self, config: VoiceConfig | None = None) -> None:
        self.config = config or VoiceConfig()
        self._base = _Baseline()

    # ---------------------------------------------------------------- features
    def features(self, audio16k: np.ndarray, text: str | None = None) -> VoiceFeatures:
        """Measure one utterance of 16 kHz mono audio (float in -1..1 or int16). With
        ``text`` the speech rate is characters per second of speech (Mandarin: one
        syllable a character) instead of counted syllable nuclei."""
        import parselmouth

        cfg = self.config
        a = _as_float_mono(audio16k)
        dur = len(a) / SAMPLE_RATE
        empty = VoiceFeatures(dur, 0.0, None, None, None, None)
        if len(a) < _MIN_SAMPLES or not np.any(a):
            return empty
        snd = parselmouth.Sound(a, sampling_frequency=SAMPLE_RATE)
        pitch = snd.to_pitch(time_step=0.01, pitch_floor=cfg.pitch_floor_hz, pitch_ceiling=cfg.pitch_ceiling_hz)
        f0 = pitch.selected_array["frequency"]
        f0_t = pitch.xs()
        voiced = f0 > 0
        voiced_s = float(voiced.sum()) * 0.01
        if voiced_s < cfg.min_voiced_seconds:
            return VoiceFeatures(dur, voiced_s, None, None, None, None)
        inten = snd.to_intensity(minimum_pitch=cfg.pitch_floor_hz, time_step=0.01)
        db = inten.values[0]
        db_t = inten.xs()
        finite = np.isfinite(db)
        if not finite.any():
            return VoiceFeatures(dur, voiced_s, None, None, None, None)
        peak = float(np.max(db[finite]))
        speech = finite & (db > peak - cfg.silence_db_below_peak)
        speech_s = float(speech.sum()) * 0.01
        # energy mean over speech frames, in dB
        loud = 10.0 * math.log10(float(np.mean(10.0 ** (db[speech] / 10.0))))
        st = 12.0 * np.log2(f0[voiced] / 100.0)
        p10, p50, p90 = np.percentile(st, [10, 50, 90])
        if text is not None and any(ch.isalnum() for ch in text):
            n_syl = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff") or len(text.split())
        else:
            n_syl = self._count_nuclei(db, db_t, finite, peak, f0, f0_t)
        rate = n_syl / speech_s if speech_s > 0 else None
        return VoiceFeatures(
            duration_s=dur,
            voiced_s=voiced_s,
            loudness_db=loud,
            pitch_st=float(p50),
            pitch_range_st=float(p90 - p10),
            rate_sps=rate,
        )

    def _count_nuclei(self, db, db_t, finite, peak, f0, f0_t) -> int:
        from scipy.signal import find_peaks

        thr = max(float(np.median(db[finite])), peak - self.config.silence_db_below_peak)
        curve = np.where(finite, db, thr - 50.0)
        idx, _ = find_peaks(curve, height=thr, prominence=2.0, distance=8)  # >= 80 ms apart
        if len(idx) == 0:
            return 0
        # keep voiced peaks only
        f0_at = np.interp(db_t[idx], f0_t, f0, left=0.0, right=0.0)
        return int(np.sum(f0_at > 0))

    # ---------------------------------------------------------------- baseline
    @property
    def baseline_ready(self) -> bool:
        return self._base.voiced_s >= self.config.baseline_seconds

    def add_to_baseline(self, f: VoiceFeatures) -> None:
        if f.usable:
            self._base.add(f)

    def reset(self) -> None:
        self._base = _Baseline()

    # ----------------------------------------------------------------- arousal
    def excitement(self, f: VoiceFeatures) -> float | None:
        """Weighted change of the cues against the baseline, in "units" (0 = baseline)."""
        b, cfg = self._base, self.config
        if not f.usable or b.voiced_s <= 0 or f.loudness_db is None or f.pitch_st is None:
            return None
        cues = {
            "loudness": (f.loudness_db - b.loudness_db) / cfg.loudness_unit_db,
            "pitch": (f.pitch_st - b.pitch_st) / cfg.pitch_unit_semitones,
            "range": ((f.pitch_range_st or 0.0) - b.pitch_range_st) / cfg.range_unit_semitones,
        }
        if f.rate_sps and b.rate_sps > 0:
            cues["rate"] = math.log(f.rate_sps / b.rate_sps) / math.log1p(cfg.rate_unit_ratio)
        w = {k: v for k, v in cfg.weights.items() if k in cues}
        total = sum(w.values()) or 1.0
        return float(sum(w[k] * max(-3.0, min(3.0, cues[k])) for k in w) / total)

    def arousal(self, f: VoiceFeatures) -> float | None:
        """0..1, ``baseline_arousal`` when the caller sounds like their baseline; ``None``
        when the audio has too little voiced speech. While the baseline is incomplete the
        utterance is first folded into it."""
        if not f.usable:
            return None
        if not self.baseline_ready:
            self.add_to_baseline(f)
        z = self.excitement(f)
        if z is None:
            return None
        cfg = self.config
        offset = math.log(cfg.baseline_arousal / (1.0 - cfg.baseline_arousal))
        return float(1.0 / (1.0 + math.exp(-(cfg.slope * z + offset))))

    def measure(self, audio16k: np.ndarray, text: str | None = None) -> tuple[VoiceFeatures, float | None]:
        f = self.features(audio16k, text)
        return f, self.arousal(f)
