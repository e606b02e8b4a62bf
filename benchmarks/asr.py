"""How well callwatch hears, path by path, side by side with faster-whisper's own transcribe().

Every clip of ../shared/audio (read speech, mostly) and of ../shared/audio/conversational (spontaneous,
noisy, two-speaker, 8 kHz) is decoded at 16 kHz and through 8 kHz μ-law (the telephone path) by:

  - `direct`: faster-whisper's own transcribe() on the whole clip (beam 5, Silero VAD, language zh, two
    threads, OpenCC): the baseline;
  - `live`: the clip streamed as a one-leg call through the live path (VAD-cut utterances, finals sorted
    by start), what the agent's screen shows;
  - `post-call`: the second pass a call's stored transcript comes from once the call has ended;
  - `audit`: `callwatch audit` of the clip as a recording.

Reported per folder and pooled: CER with substitutions, deletions and insertions apart (a lost tail is a
deletion, an invented phrase an insertion), the real-time factor, and each path's errors against the
direct decode clip by clip: how many clips got better and worse, and a paired bootstrap 95 % interval of
the change in pooled CER. A path counts as better than another only if it is better pooled and neither
folder's interval lies wholly on the worse side (noise, on clips where one character is 0.2 points).

    python benchmarks/asr.py                       # writes benchmarks/results/asr.json and asr.md
    python benchmarks/asr.py --baseline OLD.json   # also: each path against the same path in OLD.json
    python benchmarks/asr.py --set asr_encoder_window=full   # a settings variant of the callwatch paths

Each configuration runs in its own process, so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("CALLWATCH_SHARED_AUDIO", REPO.parent / "shared" / "audio"))
RESULTS = REPO / "benchmarks" / "results"
FOLDERS = {"read": SHARED, "conversational": SHARED / "conversational"}
VARIANTS = ("16k", "8k_mulaw")
CALLWATCH_PATHS = ("live", "post-call", "audit")
BOOTSTRAP_ROUNDS = 2000


@dataclass(frozen=True)
class Clip:
    folder: str
    file: str
    reference: str
    seconds: float

    @property
    def path(self) -> Path:
        return FOLDERS[self.folder] / self.file

    @property
    def key(self) -> str:
        return f"{self.folder}/{self.file}"


def load_clips() -> list[Clip]:
    clips = []
    for folder, root in FOLDERS.items():
        with (root / "MANIFEST.tsv").open(encoding="utf-8") as fh:
            clips += [Clip(folder, r["file"], r["reference_transcript"], float(r["seconds"]))
                      for r in csv.DictReader(fh, delimiter="\t")]
    return clips


def read_clip(clip: Clip, variant: str) -> np.ndarray:
    """The clip as 16 kHz mono float32; `8k_mulaw` first goes through an 8 kHz μ-law line and back."""
    from pipelines.audio import ChannelResampler, decode_frame, encode_g711, load_audio_file

    audio, rate = load_audio_file(str(clip.path))
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if variant == "8k_mulaw":
        line = encode_g711(ChannelResampler(rate, 8000)(mono, last=True), "mulaw")
        return ChannelResampler(8000)(decode_frame(line, "mulaw", 1)[:, 0], last=True)
    return mono if rate == 16000 else ChannelResampler(rate)(mono, last=True)


# --- the paths ----------------------------------------------------------------------------------------------

def direct_decoder(threads: int) -> Callable[[np.ndarray], str]:
    from faster_whisper import WhisperModel

    from models.asr import resolve_whisper_model
    from models.embedded_whisper import EMBEDDED_MODEL_NAME
    from models.text import normalise_transcript
    from service.settings import Settings

    model = WhisperModel(resolve_whisper_model(EMBEDDED_MODEL_NAME, Settings().cache_dir), device="cpu",
                         compute_type="int8", cpu_threads=threads)

    def decode(audio: np.ndarray) -> str:
        segments, _ = model.transcribe(audio, language="zh", beam_size=5, vad_filter=True)
        return normalise_transcript("".join(s.text for s in segments), final=True)

    return decode


async def live_call(runtime: Any, audio: np.ndarray, call_id: str) -> tuple[str, Any]:
    """The clip as a one-leg live call (20 ms PCM frames, as fast as the recogniser allows): the finals'
    text by start, and the session's stored transcript if the call keeps one."""
    from pipelines.audio import encode_pcm16
    from wire.ingest import AudioFormat

    payload = encode_pcm16(audio)
    finals: list[Any] = []

    async def sink(result: Any) -> None:
        if result.type == "final":
            finals.append(result)

    session = runtime.new_call(call_id, AudioFormat(encoding="pcm_s16le", sample_rate=16000, layout="mono"), sink)
    for i in range(0, len(payload), 640):
        await session.audio(payload[i : i + 640])
    await session.finish("completed")
    return "".join(f.text for f in sorted(finals, key=lambda f: f.start)), session


async def post_call_text(runtime: Any, session: Any) -> str:
    """The second pass over the ended call's legs: the text its stored transcript gets."""
    return "".join(h.text for h in await runtime.second_pass.call(session.speech()))


async def audit_text(runtime: Any, audio: np.ndarray, call_id: str) -> str:
    import soundfile as sf

    from pipelines.recording_run import run_recording

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        sf.write(path, audio, 16000, subtype="PCM_16")
        outcome = await run_recording(runtime, path, call_id)
    return "".join(f.text for f in outcome.finals)


def run_direct(clips: list[Clip]) -> dict[str, Any]:
    started = time.perf_counter()
    decode = direct_decoder(threads=2)
    out: dict[str, Any] = {"load_s": time.perf_counter() - started, "rows": []}
    for variant in VARIANTS:
        for clip in clips:
            audio = read_clip(clip, variant)
            t = time.perf_counter()
            text = decode(audio)
            out["rows"].append({"path": "direct", "variant": variant, "clip": clip.key, "text": text,
                                "seconds": time.perf_counter() - t})
    return out


def run_callwatch(clips: list[Clip], overrides: dict[str, Any]) -> dict[str, Any]:
    from service.runtime import Runtime
    from service.settings import Settings

    started = time.perf_counter()
    runtime = Runtime.load(Settings(data_dir=Path(tempfile.mkdtemp(prefix="callwatch-bench-")), **overrides))
    out: dict[str, Any] = {"load_s": time.perf_counter() - started, "rows": []}

    def row(path: str, variant: str, clip: Clip, text: str, t: float) -> None:
        out["rows"].append({"path": path, "variant": variant, "clip": clip.key, "text": text,
                            "seconds": time.perf_counter() - t})

    try:
        for variant in VARIANTS:
            for n, clip in enumerate(clips):
                audio = read_clip(clip, variant)
                t = time.perf_counter()
                text, session = asyncio.run(live_call(runtime, audio, f"bench-live-{variant}-{n}"))
                row("live", variant, clip, text, t)
                if hasattr(runtime, "second_pass"):  # so the benchmark also measures a release without one
                    t = time.perf_counter()
                    row("post-call", variant, clip, asyncio.run(post_call_text(runtime, session)), t)
                t = time.perf_counter()
                row("audit", variant, clip, asyncio.run(audit_text(runtime, audio, f"bench-audit-{variant}-{n}")), t)
    finally:
        runtime.close()
    return out


def worker(spec: str) -> None:
    """Run one configuration and print its raw results as JSON (called in a subprocess)."""
    clips = load_clips()
    if spec == "direct":
        out = run_direct(clips)
    else:
        out = run_callwatch(clips, json.loads(spec))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out, ensure_ascii=False))


# --- scoring ------------------------------------------------------------------------------------------------

def edits(reference: str, hypothesis: str) -> dict[str, int]:
    """Substitutions, deletions and insertions of the minimal character alignment, after normalisation."""
    from rapidfuzz.distance import Levenshtein

    from models.text import strip_for_scoring

    ref, hyp = strip_for_scoring(reference), strip_for_scoring(hypothesis)
    counts = {"S": 0, "D": 0, "I": 0, "N": len(ref)}
    for op in Levenshtein.editops(ref, hyp):
        counts[{"replace": "S", "delete": "D", "insert": "I"}[op.tag]] += 1
    return counts


def errors_of(e: dict[str, int]) -> int:
    return e["S"] + e["D"] + e["I"]


def pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total = {k: sum(r["edits"][k] for r in rows) for k in ("S", "D", "I", "N")}
    audio_s = sum(r["audio_s"] for r in rows)
    return {**total, "errors": errors_of(total), "cer": errors_of(total) / max(1, total["N"]),
            "rtf": sum(r["seconds"] for r in rows) / max(audio_s, 1e-9), "clips": len(rows)}


def paired(rows: list[dict[str, Any]], base: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """`rows` against `base` on the same clips: clips better and worse, and a bootstrap 95 % interval of
    the change in pooled CER (resampling clips)."""
    by_clip = {r["clip"]: r for r in base}
    pairs = [(errors_of(r["edits"]), errors_of(by_clip[r["clip"]]["edits"]), r["edits"]["N"]) for r in rows
             if r["clip"] in by_clip]
    a, b, n = (np.array(x, dtype=float) for x in zip(*pairs))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pairs), size=(BOOTSTRAP_ROUNDS, len(pairs)))
    deltas = (a[picks].sum(axis=1) - b[picks].sum(axis=1)) / n[picks].sum(axis=1)
    return {"delta_cer": (a.sum() - b.sum()) / n.sum(), "low": float(np.percentile(deltas, 2.5)),
            "high": float(np.percentile(deltas, 97.5)), "better": int((a < b).sum()), "worse": int((a > b).sum()),
            "ratio": a.sum() / max(b.sum(), 1)}


def score(raw_rows: list[dict[str, Any]], clips: list[Clip]) -> list[dict[str, Any]]:
    by_key = {c.key: c for c in clips}
    scored = []
    for r in raw_rows:
        clip = by_key[r["clip"]]
        scored.append({**r, "folder": clip.folder, "audio_s": clip.seconds, "edits": edits(clip.reference, r["text"])})
    return scored


def select(rows: list[dict[str, Any]], path: str, variant: str, folder: str | None) -> list[dict[str, Any]]:
    return [r for r in rows if r["path"] == path and r["variant"] == variant and (folder is None or r["folder"] == folder)]


def table(rows: list[dict[str, Any]], hardware: str, title: str, baseline: list[dict[str, Any]] | None) -> str:
    paths = [p for p in ("direct", *CALLWATCH_PATHS) if any(r["path"] == p for r in rows)]
    lines = [title, "", hardware, "",
             "| path | audio | set | clips | chars | CER | S | D | I | × direct | Δ CER vs direct (95 % CI) | clips better / worse | RTF |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        for path in paths:
            for folder in (*FOLDERS, None):
                mine = select(rows, path, variant, folder)
                if not mine:
                    continue
                p = pooled(mine)
                name = folder or "pooled"
                if path == "direct":
                    vs = "1.00 | – | –"
                else:
                    c = paired(mine, select(rows, "direct", variant, folder))
                    vs = (f"{c['ratio']:.2f} | {c['delta_cer']:+.1%} ({c['low']:+.1%} … {c['high']:+.1%}) | "
                          f"{c['better']} / {c['worse']}")
                lines.append(f"| {path} | {variant} | {name} | {p['clips']} | {p['N']} | {p['cer']:.1%} | {p['S']} | "
                             f"{p['D']} | {p['I']} | {vs} | {p['rtf']:.3f} |")
    if baseline:
        lines += ["", "Against the baseline run (same path, same clips):", "",
                  "| path | audio | set | CER then | CER now | Δ CER (95 % CI) | clips better / worse |", "|---|---|---|---|---|---|---|"]
        for variant in VARIANTS:
            for path in paths:
                for folder in (*FOLDERS, None):
                    mine, old = select(rows, path, variant, folder), select(baseline, path, variant, folder)
                    if not mine or not old:
                        continue
                    c = paired(mine, old)
                    lines.append(f"| {path} | {variant} | {folder or 'pooled'} | {pooled(old)['cer']:.1%} | "
                                 f"{pooled(mine)['cer']:.1%} | {c['delta_cer']:+.1%} ({c['low']:+.1%} … {c['high']:+.1%}) | "
                                 f"{c['better']} / {c['worse']} |")
    lines += ["", "Per clip, errors at 16 kHz / μ-law:", "",
              "| clip | chars | " + " | ".join(paths) + " |", "|---|---|" + "---|" * len(paths)]
    for key in dict.fromkeys(r["clip"] for r in rows):
        cells = []
        for path in paths:
            pair = [next((errors_of(r["edits"]) for r in rows if r["clip"] == key and r["path"] == path and r["variant"] == v), None)
                    for v in VARIANTS]
            cells.append(" / ".join("–" if e is None else str(e) for e in pair))
        n = next(r["edits"]["N"] for r in rows if r["clip"] == key)
        lines.append(f"| {key} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                        help="a callwatch setting for this run, e.g. asr_encoder_window=full")
    parser.add_argument("--baseline", type=Path, help="an earlier asr.json to compare with, path by path")
    parser.add_argument("--out", default="asr", help="results name under benchmarks/results (default asr)")
    parser.add_argument("--skip-direct", action="store_true", help="reuse the direct rows of --baseline")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return

    from benchmarks.hardware import describe

    clips = load_clips()
    overrides = dict(item.split("=", 1) for item in args.set)
    baseline = json.loads(args.baseline.read_text(encoding="utf-8"))["rows"] if args.baseline else None
    rows: list[dict[str, Any]] = []
    specs = [json.dumps(overrides)]
    if args.skip_direct and baseline:
        rows += [r for r in baseline if r["path"] == "direct"]
    else:
        specs.insert(0, "direct")
    runs = {}
    for spec in specs:
        print(f"running {spec} …", flush=True)
        done = subprocess.run([sys.executable, __file__, "--worker", spec], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{spec} failed")
        raw = json.loads(done.stdout.strip().splitlines()[-1])
        runs[spec] = {"load_s": round(raw["load_s"], 2), "peak_rss_mb": round(raw["peak_rss_mb"])}
        rows += score(raw["rows"], clips)

    hardware = describe()
    seconds = {f: sum(c.seconds for c in clips if c.folder == f) for f in FOLDERS}
    title = (f"ASR on the shared recordings: read {sum(c.folder == 'read' for c in clips)} clips ({seconds['read']:.0f} s), "
             f"conversational {sum(c.folder == 'conversational' for c in clips)} clips ({seconds['conversational']:.0f} s)"
             + (f"; settings {overrides}" if overrides else ""))
    text = table(rows, hardware, title, baseline)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text(text + "\n", encoding="utf-8")
    (RESULTS / f"{args.out}.json").write_text(
        json.dumps({"hardware": hardware, "settings": overrides, "runs": runs, "rows": rows}, ensure_ascii=False, indent=1),
        encoding="utf-8")


if __name__ == "__main__":
    main()
