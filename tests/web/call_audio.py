"""Build the synthetic test calls the agent-screen tests stream (espeak-ng Mandarin voices).

No real recording in ../shared/audio has an agent opening with a bare 喂 or a customer who gets angry, so the
test calls are synthesised once with Debian's `espeak-ng` (voice `cmn`) and committed as small FLAC files
(stereo 16 kHz: agent left, customer right, as recorders store it), so the tests themselves need no speech
synthesiser. Rebuild them with:

    python tests/web/call_audio.py            # writes tests/web/data/*.flac and *.json

The phrasings were checked against what the real embedded Whisper base hears on the live path (see
WEI_ANGRY_TURNS below); change them only after checking the finals again.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
RATE = 16000


@dataclass(frozen=True)
class Turn:
    speaker: str  # "agent" | "customer"
    start: float  # seconds into the call
    text: str
    voice: str = "cmn-latn-pinyin"
    speed: int = 150  # words per minute (espeak-ng -s)
    pitch: int = 50  # 0..99 (espeak-ng -p)
    amplitude: int = 100  # 0..200 (espeak-ng -a)


# The call the end-to-end test streams: a bare 喂 from the agent, then a customer who complains angrily and an
# agent who does not acknowledge it (so `complaint.empathy_first` fires once its window has passed).
WEI_ANGRY_TURNS = [
    Turn("agent", 0.5, "喂", voice="cmn-latn-pinyin+f2", speed=100),
    Turn("customer", 2.0, "你们这是什么服务！我都打了三次电话了！", speed=170, pitch=70, amplitude=160),
    Turn("agent", 10.5, "你说吧，什么事情。", voice="cmn-latn-pinyin+f2"),
    Turn("customer", 13.5, "我要投诉！你们太过分了！", speed=170, pitch=70, amplitude=160),
]
WEI_ANGRY_DURATION = 36.0

# A short call for the latency benchmark: only the bare 喂 and a customer's neutral answer.
WEI_SHORT_TURNS = [
    Turn("agent", 0.5, "喂", voice="cmn-latn-pinyin+f2", speed=100),
    Turn("customer", 2.5, "你好，我想查一下我的快递。", speed=160),
]
WEI_SHORT_DURATION = 6.0


def to_pinyin(text: str) -> str:
    from pypinyin import Style, lazy_pinyin

    marks = str.maketrans({"，": ",", "。": ".", "！": "!", "？": "?", "、": ","})
    return " ".join(lazy_pinyin(text.translate(marks), style=Style.TONE3, neutral_tone_with_five=True))


def speak(turn: Turn) -> np.ndarray:
    """One turn as 16 kHz mono float32, synthesised by espeak-ng."""
    import soundfile as sf
    import soxr

    with tempfile.TemporaryDirectory() as tmp:
        # espeak-ng's Mandarin dictionary lacks most characters (it spells them out as Latin letters), so it is
        # given tone-numbered pinyin and the pinyin voice instead.
        wav = Path(tmp) / "turn.wav"
        subprocess.run(
            ["espeak-ng", "-v", turn.voice, "-s", str(turn.speed), "-p", str(turn.pitch), "-a", str(turn.amplitude),
             "-w", str(wav), to_pinyin(turn.text)],
            check=True,
        )
        audio, rate = sf.read(wav, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def build(turns: list[Turn], duration: float, name: str) -> Path:
    """Lay the turns out on a stereo track (agent left, customer right) and write NAME.flac + NAME.json."""
    import soundfile as sf

    track = np.zeros((int(duration * RATE), 2), dtype=np.float32)
    timeline = []
    for turn in turns:
        speech = speak(turn)
        channel = 0 if turn.speaker == "agent" else 1
        begin = int(turn.start * RATE)
        end = min(len(track), begin + len(speech))
        track[begin:end, channel] += speech[: end - begin]
        # Where the voice really ends (espeak pads with a little silence): the latency benchmark measures from here.
        voiced = np.flatnonzero(np.abs(speech) > 0.01)
        speech_end = turn.start + (voiced[-1] + 1) / RATE if len(voiced) else turn.start
        timeline.append({**asdict(turn), "speech_end": round(speech_end, 3)})
    # A faint noise floor, as on a real line, so voice activity detection sees true silence between turns.
    rng = np.random.default_rng(7)
    track += rng.normal(0, 0.00005, track.shape).astype(np.float32)
    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / f"{name}.flac"
    sf.write(out, np.clip(track, -1, 1), RATE, subtype="PCM_16")
    (DATA / f"{name}.json").write_text(
        json.dumps({"file": out.name, "sample_rate": RATE, "channels": ["agent", "customer"], "duration_s": duration,
                    "synthesiser": "espeak-ng (voice cmn-latn-pinyin, pinyin from pypinyin)", "turns": timeline}, ensure_ascii=False, indent=2) + "\n",
        encoding="utf-8",
    )
    return out


def load_timeline(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


if __name__ == "__main__":
    print(build(WEI_ANGRY_TURNS, WEI_ANGRY_DURATION, "wei_angry"))
    print(build(WEI_SHORT_TURNS, WEI_SHORT_DURATION, "wei_short"))
