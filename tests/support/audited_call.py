"""An audited call as `callwatch audit` stores it (CallList.store_audited: the call, its transcript,
events, report and its row in the call list, with the recording's path), without the models: a written
recording whose sound sits where the transcript says each side spoke, and the automatic findings of
support.stored_reports (automatic score 85). For the QA pages' tests, with their people's keys file and a
runtime light enough to serve them (settings, the store, the shipped rules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from support.qa_app import write_keys_file
from support.stored_reports import FINDINGS, PHONE

from rules.config import load_rules_config
from rules.engine import RuleBook
from rules.findings import Finding
from rules.score import score_findings
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore

RATE = 8000
DURATION = 200.0
# (speaker, start, end, text): a complaint about a double charge; the findings' times (40, 95, 120, 180) fall
# at the hold, the resume, the rash promise and the goodbye.
LINES: list[tuple[str, float, float, str]] = [
    ("agent", 0.5, 4.0, "您好，这里是XX银行客服，请问有什么可以帮您？"),
    ("customer", 4.5, 10.0, "我的信用卡昨天被扣了两次年费，我要投诉。"),
    ("agent", 10.5, 16.0, "好的，请您提供一下卡号后四位。"),
    ("customer", 17.0, 21.0, "尾号是5678。"),
    ("agent", 22.0, 30.0, "我查询一下，请您稍等。"),
    ("agent", 38.0, 42.0, "我帮您转到后台核实。"),
    ("agent", 92.0, 97.0, "让您久等了，我这边查到了。"),
    ("customer", 98.0, 104.0, "那到底什么时候能退？"),
    ("agent", 105.0, 112.0, "年费会在三个工作日内退回您的账户。"),
    ("customer", 113.0, 119.0, "你们上次也这么说的，一直没退。"),
    ("agent", 120.0, 126.0, "这次马上到，您放心。"),
    ("customer", 127.0, 133.0, "好吧，那我再等等。"),
    ("agent", 134.0, 142.0, "还有其他可以帮您的吗？"),
    ("customer", 143.0, 148.0, "没有了。"),
    ("agent", 172.0, 178.0, "感谢您的来电，再见。"),
    ("customer", 178.5, 180.0, "再见。"),
]


# The people of the QA pages' tests, name: (role, tenant, team or teams). wang.li leads A1042's and A1043's team.
PRINCIPALS: dict[str, tuple[str, str | None, Any]] = {
    "qa.li": ("qa", "acme", None),
    "wang.li": ("supervisor", "acme", ["east-1"]),
    "A1042": ("agent", "acme", "east-1"),
    "A1043": ("agent", "acme", "east-1"),
    "G1": ("agent", "globex", None),
}


def write_keys(path: Path) -> dict[str, str]:
    """A keys file for PRINCIPALS, a fresh key each; name → key."""
    return write_keys_file(path, PRINCIPALS)


class LightRuntime:
    """What the QA routes and pages use of the runtime: settings, the store, the deployment's rules."""

    def __init__(self, settings: Any, store: CallStore):
        self.settings = settings
        self.store = store
        self.rule_book = RuleBook(load_rules_config())


def write_recording(path: Path, seed: int = 0) -> Path:
    """Two legs (left the agent, right the customer), 8 kHz: a voiced hum wherever LINES has that side
    speaking, near-silence elsewhere, so the waveform shows the turns."""
    rng = np.random.default_rng(seed)
    n = int(DURATION * RATE)
    audio = rng.normal(0, 0.002, (n, 2)).astype(np.float32)
    t = np.arange(n) / RATE
    for speaker, start, end, _ in LINES:
        a, b = int(start * RATE), int(end * RATE)
        pitch = 140.0 if speaker == "agent" else 220.0
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t[a:b])  # syllables
        voice = 0.4 * envelope * np.sin(2 * np.pi * pitch * t[a:b]) * np.sin(2 * np.pi * 0.7 * t[a:b]) ** 2
        audio[a:b, 0 if speaker == "agent" else 1] += voice.astype(np.float32)
    sf.write(path, audio, RATE, subtype="PCM_16")
    return path


def store_audited_call(store: CallStore, folder: Path, call_id: str, agent_id: str, tenant: str | None) -> str:
    """The call `call_id` of `tenant`'s agent, audited from a recording written into `folder`; its row key."""
    recording = write_recording(folder / f"{call_id}.wav")
    score, deductions = score_findings([Finding.model_validate(f) for f in FINDINGS], load_rules_config())
    report = {"score": score, "deductions": [d.model_dump() for d in deductions], "findings": FINDINGS,
              "figures": None, "prompts": [], "transcript": "second_pass"}
    utts = [{"utterance_id": f"{speaker}-{i}", "speaker": speaker, "start": start, "end": end, "text": text}
            for i, (speaker, start, end, text) in enumerate(LINES)]
    CallList(store.db).store_audited(
        call_id=call_id, agent_id=agent_id, direction="inbound", caller_number=PHONE,
        started_at="2026-11-23T09:30:00+08:00", audio_format={"encoding": "pcm_s16le", "sample_rate": RATE},
        duration=DURATION, events=[{"event": "answered", "t": 0.0, "by": None, "target": None},
                                   {"event": "hangup", "t": 180.5, "by": "agent", "target": None}],
        utts=utts, prompts=[], report=report, file_name=recording.name, source_path=str(recording),
        speaker_attribution="channels",
        audit={"tenant": tenant, "file_name": recording.name, "channels": 2, "sample_rate": RATE,
               "agent_channel": 0, "rules": "default"})
    return call_id
