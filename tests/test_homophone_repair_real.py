"""Homophone repair of finals by the real recogniser on a real recording: proposals from the lexicon, each
checked by Whisper against the audio."""

from dataclasses import replace

from models.asr import DecodeOptions, DecodeRequest
from models.homophones import Proposal
from models.text import character_error_rate, to_simplified

# Whisper base writes 揪证 for 纠正 and 闪北 for 陕北 on this clip (measured), both repairable.
CLIP = "soulx_male_mandarin.wav"


def test_a_final_is_repaired_and_a_partial_is_not(runtime, clip, manifest):
    audio = clip(CLIP)
    final = to_simplified(runtime.backend.transcribe(audio, runtime.options.final_decode).text)
    partial_like = to_simplified(runtime.backend.transcribe(audio, replace(runtime.options.final_decode, repair_homophones=False)).text)
    assert "揪证" in partial_like and "闪北" in partial_like
    assert "纠正" in final and "陕北" in final
    reference = manifest[CLIP]["reference_transcript"]
    assert character_error_rate(reference, final)[0] <= character_error_rate(reference, partial_like)[0] - 3


def test_a_repair_the_audio_contradicts_is_refused(runtime, clip, monkeypatch):
    # The clip says 交易; a proposal of 教义 there reads as much less likely to Whisper and is not taken,
    # while one the audio supports is.
    backend = runtime.backend
    text = "甚至出现交易几乎停制的情况。"
    wrong = Proposal(text.index("交易"), text.index("交易") + 2, "教义", 10.0)
    right = Proposal(text.index("停制"), text.index("停制") + 2, "停滞", 10.0)
    monkeypatch.setattr(backend.homophones, "proposals", lambda _: [wrong, right])
    job = backend._prepare(DecodeRequest(clip("aishell1_S0764_W0121.wav"), DecodeOptions()))
    encoded = backend._encode([job.audio], job.attempts[0][0])
    losses = backend._repair_losses(job, text, [wrong, right], encoded, 0)
    assert losses[0] > backend.homophone_max_loss >= losses[1]
    heard = backend.transcribe(clip("aishell1_S0764_W0121.wav"), DecodeOptions())
    repaired = backend._repair(job, replace(heard, text=text), encoded, 0)
    assert repaired.text == "甚至出现交易几乎停滞的情况。"
