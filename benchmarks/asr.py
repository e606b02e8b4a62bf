"""ASR accuracy and speed on the shared real recordings, for each configured backend, side by side with the
direct faster-whisper baseline.

For every clip of ../shared/audio (MANIFEST.tsv), at 16 kHz and through 8 kHz μ-law (the telephone path):
  - `direct`: faster-whisper's own transcribe() on the whole clip (beam 5, Silero VAD, language zh), the
    baseline the issue names;
  - each backend streamed through callwatch's live path (VAD segmentation, finals, filter), fed as fast as
    it can go.
Prints per-clip and total CER (pooled: total edits / total reference characters), real-time factor, load
time and peak RSS, and writes benchmarks/results/asr.json and asr.md.

    python benchmarks/asr.py                                     # the embedded default
    python benchmarks/asr.py --backend faster-whisper:/models/whisper-small   # add another, side by side

Each configuration runs in its own process so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("CALLWATCH_SHARED_AUDIO", REPO.parent / "shared" / "audio"))
RESULTS = REPO / "benchmarks" / "results"


def load_clips() -> list[dict[str, str]]:
    with (SHARED / "MANIFEST.tsv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def telephone(audio16k: np.ndarray) -> tuple[bytes, int]:
    from pipelines.audio import ChannelResampler, encode_g711

    return encode_g711(ChannelResampler(16000, 8000)(audio16k, last=True), "mulaw"), 8000


def read_clip(name: str) -> np.ndarray:
    import soundfile as sf

    audio, rate = sf.read(SHARED / name, dtype="float32")
    assert rate == 16000, name
    return audio


async def stream_through_session(runtime: Any, audio16k: np.ndarray, path: str) -> str:
    """The clip as a one-leg live call through CallSession; returns the finals' text joined."""
    from pipelines.audio import encode_pcm16
    from service.protocol import AudioFormat

    if path == "16k":
        payload, fmt = encode_pcm16(audio16k), AudioFormat(encoding="pcm_s16le", sample_rate=16000, layout="mono")
        frame = 640
    else:
        payload, rate = telephone(audio16k)
        fmt, frame = AudioFormat(encoding="mulaw", sample_rate=rate, layout="mono"), 160
    finals: list[Any] = []

    async def sink(result: Any) -> None:
        if result.type == "final":
            finals.append(result)

    session = runtime.new_call("bench", fmt, sink)
    for i in range(0, len(payload), frame):
        await session.audio(payload[i : i + frame])
    await session.finish("completed")
    return "".join(f.text for f in sorted(finals, key=lambda f: f.start))


def run_direct(model_path: str, clips: list[dict[str, str]]) -> dict[str, Any]:
    from faster_whisper import WhisperModel

    from models.text import normalise_transcript

    started = time.perf_counter()
    model = WhisperModel(model_path, device="cpu", compute_type="int8", cpu_threads=os.cpu_count() or 1)
    load_s = time.perf_counter() - started
    per_clip = {}
    for path in ("16k", "8k_mulaw"):
        for row in clips:
            audio = read_clip(row["file"])
            if path == "8k_mulaw":
                from pipelines.audio import ChannelResampler, decode_frame

                payload, rate = telephone(audio)
                audio = ChannelResampler(rate)(decode_frame(payload, "mulaw", 1)[:, 0], last=True)
            t = time.perf_counter()
            segments, _ = model.transcribe(audio, language="zh", beam_size=5, vad_filter=True)
            text = normalise_transcript("".join(s.text for s in segments), final=True)
            per_clip[(path, row["file"])] = (text, time.perf_counter() - t)
    return {"load_s": load_s, "per_clip": per_clip}


def run_backend(spec: str, clips: list[dict[str, str]]) -> dict[str, Any]:
    from service.runtime import Runtime
    from service.settings import Settings

    backend, _, model = spec.partition(":")
    overrides: dict[str, Any] = {"asr_backend": backend, "data_dir": Path("/tmp/callwatch-bench")}
    if model:
        overrides["asr_model"] = model
    started = time.perf_counter()
    runtime = Runtime.load(Settings(**overrides))
    load_s = time.perf_counter() - started
    per_clip = {}
    try:
        for path in ("16k", "8k_mulaw"):
            for row in clips:
                audio = read_clip(row["file"])
                t = time.perf_counter()
                text = asyncio.run(stream_through_session(runtime, audio, path))
                per_clip[(path, row["file"])] = (text, time.perf_counter() - t)
    finally:
        runtime.close()
    return {"load_s": load_s, "per_clip": per_clip}


def worker(spec: str) -> None:
    """Run one configuration and print its raw results as JSON (called in a subprocess)."""
    clips = load_clips()
    if spec.startswith("direct:"):
        from models.asr import resolve_whisper_model
        from service.settings import Settings

        settings = Settings()
        out = run_direct(resolve_whisper_model(spec.removeprefix("direct:"), settings.cache_dir), clips)
    else:
        out = run_backend(spec, clips)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "load_s": out["load_s"], "peak_rss_mb": peak_mb,
        "per_clip": [{"path": p, "file": f, "text": t, "seconds": s} for (p, f), (t, s) in out["per_clip"].items()],
    }, ensure_ascii=False))


def summarise(name: str, raw: dict[str, Any], clips: list[dict[str, str]]) -> dict[str, Any]:
    from models.text import character_error_rate

    refs = {r["file"]: r for r in clips}
    summary: dict[str, Any] = {"name": name, "load_s": round(raw["load_s"], 2), "peak_rss_mb": round(raw["peak_rss_mb"])}
    for path in ("16k", "8k_mulaw"):
        edits = chars = 0
        audio_s = busy_s = 0.0
        rows = []
        for item in raw["per_clip"]:
            if item["path"] != path:
                continue
            ref = refs[item["file"]]
            e, n = character_error_rate(ref["reference_transcript"], item["text"])
            edits, chars = edits + e, chars + n
            audio_s += float(ref["seconds"])
            busy_s += item["seconds"]
            rows.append({"file": item["file"], "cer": round(e / max(n, 1), 3), "errors": e, "chars": n, "text": item["text"]})
        summary[path] = {"cer": round(edits / chars, 4), "errors": edits, "chars": chars,
                         "rtf": round(busy_s / audio_s, 3), "clips": rows}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", default=[],
                        help="BACKEND[:MODEL] to run beside the default, e.g. faster-whisper:/models/small")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return

    from models.embedded_whisper import EMBEDDED_MODEL_NAME

    clips = load_clips()
    configs = [("direct faster-whisper (baseline)", f"direct:{EMBEDDED_MODEL_NAME}"),
               (f"callwatch live: faster-whisper {EMBEDDED_MODEL_NAME}", "faster-whisper")]
    configs += [(f"callwatch live: {spec}", spec) for spec in args.backend]
    summaries = []
    for name, spec in configs:
        print(f"running {name} …", flush=True)
        done = subprocess.run([sys.executable, __file__, "--worker", spec], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{name} failed")
        summaries.append(summarise(name, json.loads(done.stdout.strip().splitlines()[-1]), clips))

    hardware = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    lines = [f"ASR on ../shared/audio ({len(clips)} clips, {sum(float(c['seconds']) for c in clips):.0f} s), {hardware}", "",
             "| configuration | CER 16 kHz | CER 8 kHz μ-law | RTF 16 kHz | RTF μ-law | load s | peak RSS MB |",
             "|---|---|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s['name']} | {s['16k']['cer']:.1%} | {s['8k_mulaw']['cer']:.1%} | {s['16k']['rtf']:.3f} | "
                     f"{s['8k_mulaw']['rtf']:.3f} | {s['load_s']} | {s['peak_rss_mb']} |")
    lines += ["", "Per clip, CER at 16 kHz / μ-law:", "", "| clip | " + " | ".join(s["name"] for s in summaries) + " |",
              "|---|" + "---|" * len(summaries)]
    for i, clip in enumerate(clips):
        cells = [f"{s['16k']['clips'][i]['cer']:.0%} / {s['8k_mulaw']['clips'][i]['cer']:.0%}" for s in summaries]
        lines.append(f"| {clip['file']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "asr.md").write_text(table + "\n", encoding="utf-8")
    (RESULTS / "asr.json").write_text(json.dumps({"hardware": hardware, "results": summaries}, ensure_ascii=False, indent=1),
                                      encoding="utf-8")


if __name__ == "__main__":
    main()
