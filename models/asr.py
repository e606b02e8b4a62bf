"""Speech recognition backends behind one interface.

The streaming policy (pipelines/) hands a backend one utterance of 16 kHz mono float audio at a time and gets
text back; it never sees Whisper. A new backend (Paraformer or SenseVoice through sherpa-onnx, a remote
service) is one class with `transcribe()` plus an entry in `BACKENDS`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

import numpy as np

from models.embedded_whisper import EMBEDDED_MODEL_NAME, ensure_embedded_whisper
from models.homophones import HomophoneLexicon, Proposal, apply_proposals
from models.text import to_simplified

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class DecodeOptions:
    """How one utterance is decoded. Finals and partials use different options (see ASRSettings)."""

    beam_size: int = 5
    patience: float = 1.0
    # Fallback to sampling when greedy/beam output looks like a loop or is very unlikely.
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6)
    compression_ratio_threshold: float = 2.0
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    # Below this average log-probability even the best fallback is noise dressed as words.
    garbage_log_prob: float = -2.0
    # Utterances shorter than this ("喂", "嗯", "好的") are often decoded with low confidence and are too
    # short to loop; sampling at higher temperatures only costs time there (about 1 s for a "喂").
    min_sampling_audio_s: float = 2.0
    max_new_tokens: int = 200
    # When the fitted window's result looks wrong, try Whisper's full 30 s window before sampling. Not for
    # partials: a short partial without a prompt often reads as unlikely, and a 30 s encoder pass then
    # made it late enough that the partials after it aged out of the queue.
    window_fallback: bool = True
    # Check homophone repairs (models/homophones.py) against the audio. Worth it for finals; a partial is
    # replaced within a second anyway.
    repair_homophones: bool = False


@dataclass(frozen=True)
class Transcript:
    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


@dataclass(frozen=True)
class TimedText:
    """A word (or, failing word times, a segment) of a decoded window, in seconds from the window's start."""

    start: float
    end: float
    text: str


@dataclass(frozen=True, eq=False)
class DecodeRequest:
    """One utterance to recognise: 16 kHz mono float32 audio; `hotwords` are names the recogniser should
    favour (company, products); `context` is what the same speaker said just before, given to Whisper as
    the text preceding the audio. Only requests with the same prompt share a batch, so neither makes an
    utterance's transcript depend on its neighbours."""

    audio: np.ndarray
    options: DecodeOptions = field(default_factory=DecodeOptions)
    hotwords: tuple[str, ...] = ()
    context: str = ""


class ASRBackend(Protocol):
    """What the streaming policy needs from a recogniser."""

    name: str

    def transcribe_batch(self, requests: Sequence[DecodeRequest]) -> list[Transcript]:
        """Recognise several utterances, one Transcript each, in order. A backend that cannot batch decodes
        them in turn; one that can (Whisper on CTranslate2) gets more done per second of CPU."""
        ...

    def transcribe_window(self, audio: np.ndarray, options: DecodeOptions, previous_text: str = "",
                          hotwords: Sequence[str] = (), full_window: bool = True, timed: bool = True) -> list[TimedText]:
        """Up to 30 s of one speaker's speech with the text before it as context; timed words (the second
        pass, pipelines/second_pass.py). `full_window`: Whisper's 30 s encoder window, else one fitted to
        the audio as for live finals. `timed=False`: the whole text as one span, untimed within."""
        ...


def compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / max(1, len(zlib.compress(raw)))


@dataclass
class _Prepared:
    """A request made ready for Whisper: its prompt, token budget and the (encoder window, temperature)
    attempts it may take."""

    request: DecodeRequest
    audio: np.ndarray
    prompt: list[int]
    max_tokens: int
    attempts: list[tuple[int, float]]


@dataclass
class FasterWhisperBackend:
    """Whisper through CTranslate2, decoding utterances in batches.

    faster-whisper's own `transcribe()` always pads audio to a 30-second window, so a 3-second utterance
    costs as much encoder time as 30 seconds (about 0.5 s on two cores for base). Call-centre utterances are
    short and latency matters, so by default the encoder sees only the utterance plus a little padding
    (`encoder_window="fit"`); `"full"` keeps Whisper's 30-second window (the benchmark compares both).
    Utterances that arrive together can be encoded and beam-searched in one call. That pays on a GPU; on a
    CPU with one thread per worker (the default) it measured about even with decoding them in turn, and the
    gain there comes from the workers (`num_workers`).
    """

    model_path: str
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 1
    # Decodes that may run at once (CTranslate2 workers), each on `cpu_threads` threads. On a small CPU one
    # thread per decode and one decode per core beats two threads on one decode by far (measured on the
    # 2-core machine: eight utterances at beam 5 took 3.7 s on one worker with two threads, 1.1 s on two
    # workers with one thread each); a GPU wants one worker and larger batches.
    num_workers: int = 1
    encoder_window: str = "fit"
    min_window_s: float = 10.0
    # Text put before every utterance, as if said earlier. Empty by default: a generic sentence here gets
    # echoed back on silence, and measured no better on the shared clips.
    prompt: str = ""
    # Proposes homophone repairs for requests that ask for them; None turns repair off.
    homophones: HomophoneLexicon | None = None
    # A proposed repair is taken when Whisper, reading the same audio, finds the repaired sentence at most
    # this much less likely (natural log) than its own. Whisper's own choice won the beam search, so the
    # repair is always somewhat less likely; a context-free word list is what it needs checking against.
    homophone_max_loss: float = 3.0
    # How much of the text before a second-pass window goes with it as context (characters); Whisper
    # itself conditions on up to 223 tokens, and a long prompt eats into the window's token budget.
    context_chars: int = 100
    name: str = "faster-whisper"
    _model: WhisperModel = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self._model = WhisperModel(
            self.model_path, device=self.device, compute_type=self.compute_type, cpu_threads=self.cpu_threads,
            num_workers=self.num_workers,
        )
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, True, task="transcribe", language="zh")
        self._features = self._model.feature_extractor
        self._frames_per_window = self._features.nb_max_frames

    def transcribe(self, audio: np.ndarray, options: DecodeOptions, hotwords: Sequence[str] = ()) -> Transcript:
        """One utterance (see `transcribe_batch`)."""
        return self.transcribe_batch([DecodeRequest(audio, options, tuple(hotwords))])[0]

    def transcribe_window(self, audio: np.ndarray, options: DecodeOptions, previous_text: str = "",
                          hotwords: Sequence[str] = (), full_window: bool = True, timed: bool = True) -> list[TimedText]:
        """Up to 30 s of one speaker's speech (the second pass): decoded as one utterance is, but in Whisper's
        full 30 s window (`full_window`) and with the text said before it as context, then aligned word by
        word to the audio (Whisper's cross-attention, as faster-whisper times words), so the text can be
        handed back to the utterances it came from. `timed=False` skips the alignment (about an eighth of
        the time) for a window of one utterance: its text is one span."""
        job = self._prepare(DecodeRequest(audio, options, tuple(hotwords), previous_text[-self.context_chars :]),
                            full_window=full_window)
        if job is None:
            return []
        frames = job.attempts[0][0]
        encoded = self._encode([job.audio], frames)
        heard = self._settle(job, self._decode(encoded, [job.prompt], options, options.temperatures[0], job.max_tokens)[0])
        if heard.is_empty:
            return []
        if options.repair_homophones and self.homophones is not None:
            heard = self._repair(job, heard, encoded, 0)
        whole = [TimedText(0.0, job.audio.size / SAMPLE_RATE, heard.text)]
        if not timed:
            return whole
        tokens = self._tokenizer.encode(heard.text)
        [words] = self._model.find_alignment(self._tokenizer, [tokens], encoded,
                                             min(frames, job.audio.size // self._features.hop_length))
        return [TimedText(float(w["start"]), float(w["end"]), w["word"]) for w in words] or whole

    def transcribe_batch(self, requests: Sequence[DecodeRequest]) -> list[Transcript]:
        """Decode all requests in one pass at the fitted window, then settle each on its own: an utterance
        whose result looks wrong falls back, alone, to Whisper's 30 s window and then to sampling at rising
        temperatures (as Whisper does)."""
        results = [Transcript("")] * len(requests)
        # Only requests with the same prompt (CTranslate2 needs the start token at one position across a
        # batch) and the same encoder window share a pass, so that a transcript never depends on which
        # other utterances were decoded beside it.
        groups: dict[tuple[DecodeOptions, tuple[int, ...], int], list[tuple[int, _Prepared]]] = {}
        for i, request in enumerate(requests):
            if (job := self._prepare(request)) is not None:
                key = (request.options, tuple(job.prompt), job.attempts[0][0])
                groups.setdefault(key, []).append((i, job))
        for (options, prompt, frames), members in groups.items():
            jobs = [job for _, job in members]
            encoded = self._encode([job.audio for job in jobs], frames)
            firsts = self._decode(encoded, [list(prompt)] * len(jobs), options, options.temperatures[0],
                                  max(job.max_tokens for job in jobs))
            for k, ((i, job), first) in enumerate(zip(members, firsts)):
                results[i] = self._settle(job, first)
                if options.repair_homophones and self.homophones is not None and not results[i].is_empty:
                    results[i] = self._repair(job, results[i], encoded, k)
        return results

    def _prepare(self, request: DecodeRequest, full_window: bool = False) -> _Prepared | None:
        if request.audio.size < SAMPLE_RATE // 10:
            return None
        audio = np.ascontiguousarray(request.audio, dtype=np.float32)
        options = request.options
        # Mandarin runs at about 4-6 characters a second; a decode far longer than the audio allows is a
        # loop, so the token budget follows the audio.
        max_tokens = min(options.max_new_tokens, 16 + int(12 * audio.size / SAMPLE_RATE))
        windows = [self._frames_per_window if full_window else self._encoder_frames(audio.size // self._features.hop_length)]
        if windows[0] != self._frames_per_window and options.window_fallback:
            windows.append(self._frames_per_window)
        attempts = [(w, options.temperatures[0]) for w in windows]
        if audio.size >= options.min_sampling_audio_s * SAMPLE_RATE:
            attempts += [(windows[-1], t) for t in options.temperatures[1:]]
        return _Prepared(request, audio, self._prompt(request.hotwords, request.context), max_tokens, attempts)

    def _settle(self, job: _Prepared, first: Transcript) -> Transcript:
        options = job.request.options
        encoded: dict[int, object] = {}
        best: Transcript | None = None
        for k, (frames, temperature) in enumerate(job.attempts):
            if k == 0:
                candidate = first
            else:
                if frames not in encoded:
                    encoded[frames] = self._encode([job.audio], frames)
                candidate = self._decode(encoded[frames], [job.prompt], options, temperature, job.max_tokens)[0]
            if candidate.no_speech_prob > options.no_speech_threshold and candidate.avg_logprob < options.log_prob_threshold:
                return Transcript("", candidate.avg_logprob, candidate.no_speech_prob, candidate.compression_ratio)
            if best is None or candidate.avg_logprob > best.avg_logprob:
                best = candidate
            looping = candidate.compression_ratio > options.compression_ratio_threshold
            if not looping and candidate.avg_logprob >= options.log_prob_threshold:
                return candidate
        assert best is not None
        if best.avg_logprob < options.garbage_log_prob:
            return Transcript("", best.avg_logprob, best.no_speech_prob, best.compression_ratio)
        return best

    def _repair(self, job: _Prepared, transcript: Transcript, encoded: object, row: int) -> Transcript:
        """Apply the homophone repairs that Whisper, forced to read each one, finds nearly as likely as its
        own words. `encoded[row]` is this utterance's first-pass encoder output, at `job`'s first window."""
        assert self.homophones is not None
        text = to_simplified(transcript.text)
        proposals = self.homophones.proposals(text)
        if not proposals:
            return transcript
        losses = self._repair_losses(job, text, proposals, encoded, row)
        accepted = [p for p, loss in zip(proposals, losses) if loss <= self.homophone_max_loss]
        return replace(transcript, text=apply_proposals(text, accepted)) if accepted else transcript

    def _repair_losses(self, job: _Prepared, text: str, proposals: list[Proposal], encoded: object,
                       row: int) -> list[float]:
        """For each proposal, how much less likely Whisper finds the repaired sentence than `text`, both
        scored token by token against the audio (teacher forcing, through CTranslate2's aligner)."""
        tok = self._tokenizer
        sentences = [tok.encode(text)] + [tok.encode(p.apply(text)) for p in proposals]
        frames = job.attempts[0][0]
        if self.device == "cpu":
            import ctranslate2

            # The first pass's encoder output, copied per sentence: no second encoder pass on the hot path.
            one = np.asarray(encoded)[row : row + 1]
            batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.repeat(one, len(sentences), axis=0)))
        else:
            # A GPU's encoder output cannot be read back as an array; encoding again is cheap there.
            batch = self._encode([job.audio] * len(sentences), frames)
        aligned = self._model.model.align(batch, job.prompt, sentences, min(frames, job.audio.size // self._features.hop_length))
        log_probs = [float(np.sum(np.log(np.maximum(r.text_token_probs, 1e-12)))) for r in aligned]
        return [log_probs[0] - lp for lp in log_probs[1:]]

    def _encoder_frames(self, n_frames: int) -> int:
        if self.encoder_window == "full":
            return self._frames_per_window
        # Round up to whole seconds plus one of padding, and never below `min_window_s`: on a one-second
        # window Whisper base tends to loop, and a 10 s encoder pass still costs a fifth of a 30 s one.
        fitted = max(int(self.min_window_s * 100), (n_frames // 100 + 2) * 100)
        return min(self._frames_per_window, fitted)

    def _prompt(self, hotwords: Sequence[str], context: str = "") -> list[int]:
        tok = self._tokenizer
        previous = " ".join(p for p in (self.prompt, "、".join(hotwords), context) if p)
        tokens = [tok.sot_prev] + tok.encode(" " + previous)[-200:] if previous else []
        return tokens + list(tok.sot_sequence) + [tok.no_timestamps]

    def _encode(self, batch: list[np.ndarray], frames: int) -> object:
        import ctranslate2

        # Pad the audio, not the features, as Whisper was trained: padded features of zeros read as
        # sound, and with a short window the decoder then stops early ("甚至出现" for a whole sentence).
        features = []
        for audio in batch:
            padded = np.zeros(frames * self._features.hop_length, dtype=np.float32)
            padded[: min(audio.size, padded.size)] = audio[: padded.size]
            features.append(self._features(padded, padding=0)[:, :frames])
        return self._model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(features))))

    def _decode(self, encoded: object, prompts: list[list[int]], options: DecodeOptions, temperature: float,
                max_tokens: int) -> list[Transcript]:
        results = self._model.model.generate(
            encoded,
            prompts,
            beam_size=options.beam_size if temperature == 0 else 1,
            patience=options.patience,
            sampling_temperature=temperature if temperature > 0 else 1.0,
            sampling_topk=0 if temperature > 0 else 1,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
            max_length=min(448, len(prompts[0]) + max_tokens),  # the prompt counts against it
        )
        transcripts = []
        for result in results:
            tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
            # A cut inside a multi-byte character decodes to U+FFFD; it is not text.
            text = self._tokenizer.decode(tokens).replace("\ufffd", "")
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -10.0
            transcripts.append(Transcript(text, avg_logprob, result.no_speech_prob, compression_ratio(text)))
        return transcripts


BackendFactory = Callable[..., ASRBackend]
BACKENDS: dict[str, BackendFactory] = {"faster-whisper": FasterWhisperBackend}


def resolve_whisper_model(model: str, cache_dir: Path) -> str:
    """A setting value into what faster-whisper loads: the embedded default, a local folder, or a size name
    (which faster-whisper fetches from a hub; only for users who have one)."""
    if model == EMBEDDED_MODEL_NAME:
        return str(ensure_embedded_whisper(cache_dir))
    return model
