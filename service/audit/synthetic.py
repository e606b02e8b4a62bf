"""Generated stored calls, for measuring and testing the call list at scale (100,000 calls and more).

Realistic where it matters to the query plan: Chinese call-centre sentences (so the bigram index has the
token distribution of real transcripts: a few bigrams like 您好 in nearly every call, most rare), a few
hundred agents, two months of dates, scores and findings drawn like a real rulebook's, mood per call.
Rows go straight into the tables in bulk (`CallList.insert_generated`); nothing here is used by the service
itself.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from rules.catalog import RULE_IDS
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore

AGENT_LINES = [
    "您好，欢迎致电示例公司，工号{n}为您服务", "请问有什么可以帮您", "好的，我帮您查询一下", "请您稍等",
    "非常理解您的心情", "给您带来不便，非常抱歉", "您的订单号是多少", "我这边帮您登记退款申请",
    "预计三个工作日内到账", "还有其他可以帮您的吗", "感谢您的来电，再见", "请问您的手机号码是多少",
    "这个问题我帮您反馈给相关部门", "我们会在二十四小时内回电", "您的快递已经在派送中了", "账单已经帮您重新发送",
]
CUSTOMER_LINES = [
    "我的快递三天了还没到", "我要投诉你们的服务", "我都打了三次电话了", "退款什么时候能到账", "好的谢谢",
    "你们到底怎么回事", "信用卡账单金额不对", "我想改一下收货地址", "没有了，再见", "这个套餐太贵了",
    "网络一直断线", "行，那我等你们电话", "航班延误了怎么改签", "我不满意这个处理结果", "可以，麻烦你了",
]
MOODS = [("satisfied", 0.5), ("neutral", 0.1), ("upset", -0.5), ("angry", -0.8)]


def generate_calls(store: CallStore, n: int, *, seed: int = 7, batch: int = 5000, agents: int = 300,
                   start: datetime = datetime(2026, 9, 1)) -> None:
    """Insert `n` generated calls (ids `gen-000000…`) with transcripts, reports and index rows."""
    call_list = CallList(store.db)
    rng = random.Random(seed)
    rules = list(RULE_IDS)
    rowid = call_list.last_rowid()
    for base in range(0, n, batch):
        call_rows, utt_rows, idx_rows, rule_rows, docs = [], [], [], [], []
        for i in range(base, min(n, base + batch)):
            rowid += 1
            call_id = f"gen-{i:07d}"
            agent = f"A{1000 + rng.randrange(agents)}"
            started = (start + timedelta(seconds=rng.randrange(60 * 86400))).isoformat()
            t, lines = 0.0, list[dict[str, Any]]()
            for k in range(rng.randint(6, 18)):
                speaker = "agent" if k % 2 == 0 else "customer"
                text = rng.choice(AGENT_LINES if speaker == "agent" else CUSTOMER_LINES).format(n=rng.randint(1000, 9999))
                dur = 0.25 * len(text) + rng.random()
                lines.append({"utterance_id": f"{speaker}-{k}", "speaker": speaker, "start": round(t, 2),
                              "end": round(t + dur, 2), "text": text})
                t += dur + rng.random() * 2
            mood, valence = rng.choices(MOODS, weights=(3, 10, 3, 1))[0]
            breached = rng.sample(rules, k=rng.choices((0, 1, 2, 3, 4), weights=(2, 4, 3, 2, 1))[0])
            score = max(0.0, 100.0 - sum(rng.choice((2, 3, 4, 5, 8)) for _ in breached))
            report = {"call_id": call_id, "score": score, "deductions": [],
                      "findings": [{"rule_id": r, "severity": "warn", "t": 1.0, "evidence": [], "detail": "", "prompt": "",
                                    "seed": ""} for r in breached]}
            call_rows.append({"call_id": call_id, "agent_id": agent, "direction": "inbound", "caller_number": None,
                              "started_at": started, "received_at": datetime.now(timezone.utc), "status": "completed",
                              "audio_format": "{}", "duration": round(t, 2), "score": score,
                              "report": json.dumps(report, ensure_ascii=False)})
            utt_rows += [{"call_id": call_id, **u, "emotion": None} for u in lines]
            idx_rows.append({"rowid_": rowid, "call_id": call_id, "agent_id": agent, "direction": "inbound",
                             "started_at": started, "duration": round(t, 2), "score": score,
                             "worst_valence": valence + rng.uniform(-0.1, 0.1), "worst_label": mood,
                             "finding_count": len(breached), "rules": " ".join(sorted(breached)),
                             "file_name": f"{call_id}.wav", "speaker_attribution": "channels", "source_path": None,
                             "audit": None, "audited_at": datetime.now(timezone.utc)})
            rule_rows += [{"call_id": call_id, "rule_id": r, "findings": 1} for r in breached]
            docs.append((rowid, {side: "\n".join(u["text"] for u in lines if u["speaker"] == side)
                                 for side in ("agent", "customer")}))
        call_list.insert_generated(call_rows, utt_rows, idx_rows, rule_rows, docs)
