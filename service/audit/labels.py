"""Chinese labels for the QA pages and reports: moods, speakers, call events, directions. Rules, severities
and recovery steps are named by the deployment's names table (rules/names.py), not here."""

from __future__ import annotations

MOOD_LABELS = {"angry": "愤怒", "upset": "不满", "neutral": "平静", "satisfied": "满意"}
SPEAKER_LABELS = {"agent": "坐席", "customer": "客户", "unknown": "未知"}
EVENT_LABELS = {"ringing": "振铃", "answered": "接听", "hold": "保留", "resume": "恢复", "transfer": "转接",
                "hangup": "挂机"}
DIRECTION_LABELS = {"inbound": "呼入", "outbound": "呼出"}
