"""Homophone repair of finals by the real recogniser on a real recording: proposals from the lexicon, each
checked by Whisper against the audio.

What Whisper first writes differs between CPUs (int8 CTranslate2 takes other code paths on AMD and Intel,
AVX2 and AVX-512), so the repair is checked on a fixed hypothesis against the real audio, not on whatever
this machine's first pass happened to write."""

from models.asr import DecodeOptions, DecodeRequest, Transcript
from models.homophones import Proposal

CLIP = "soulx_male_mandarin.wav"
# What Whisper base wrote for this clip on the machine the repair was built on: 揪证 for 纠正 and 闪北 for
# 陕北, both same-sounding non-words (unpunctuated, as base writes this clip).
HEARD = "还有一个就是要跟大家揪证一点就是我们在看电影的时候尤其是游戏玩家看电影的时候在看到那个到西北那边的这个闪北民谣这个可能在想是不是它是受到了黑生化的起发"


def _first_pass(backend, audio):
    job = backend._prepare(DecodeRequest(audio, DecodeOptions()))
    return job, backend._encode([job.audio], job.attempts[0][0])


def test_same_sounding_non_words_are_repaired_when_the_audio_agrees(runtime, clip):
    backend = runtime.backend
    job, encoded = _first_pass(backend, clip(CLIP))
    repaired = backend._repair(job, Transcript(HEARD), encoded, 0).text
    assert "纠正" in repaired and "陕北" in repaired
    assert "揪证" not in repaired and "闪北" not in repaired
    # Only the two non-words change; everything else Whisper wrote stays as it was.
    assert repaired.replace("纠正", "揪证").replace("陕北", "闪北") == HEARD


def test_finals_are_repaired_and_partials_are_not(runtime, clip, monkeypatch):
    backend = runtime.backend
    repaired_for: list[DecodeOptions] = []
    original = backend._repair

    def spy(job, transcript, encoded, row):
        repaired_for.append(job.request.options)
        return original(job, transcript, encoded, row)

    monkeypatch.setattr(backend, "_repair", spy)
    audio = clip(CLIP)
    backend.transcribe(audio, runtime.options.partial_decode)
    assert repaired_for == []
    backend.transcribe(audio, runtime.options.final_decode)
    assert repaired_for == [runtime.options.final_decode]


def test_a_repair_the_audio_contradicts_is_refused(runtime, clip, monkeypatch):
    # The clip says 交易; a proposal of 教义 there reads as much less likely to Whisper and is not taken,
    # while one the audio supports is.
    backend = runtime.backend
    text = "甚至出现交易几乎停制的情况。"
    wrong = Proposal(text.index("交易"), text.index("交易") + 2, "教义", 10.0)
    right = Proposal(text.index("停制"), text.index("停制") + 2, "停滞", 10.0)
    monkeypatch.setattr(backend.homophones, "proposals", lambda _: [wrong, right])
    job, encoded = _first_pass(backend, clip("aishell1_S0764_W0121.wav"))
    losses = backend._repair_losses(job, text, [wrong, right], encoded, 0)
    assert losses[0] > backend.homophone_max_loss >= losses[1]
    repaired = backend._repair(job, Transcript(text), encoded, 0)
    assert repaired.text == "甚至出现交易几乎停滞的情况。"
