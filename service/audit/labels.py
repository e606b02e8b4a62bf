"""Chinese labels for the QA pages and reports (rule ids stay the keys everywhere else)."""

from __future__ import annotations

RULE_LABELS = {
    "answer.rings": "响铃接听", "opening.bare_wei": "单字“喂”开场", "opening.greeting": "开场问候",
    "outbound.hours": "外呼时段", "outbound.self_intro": "外呼自我介绍", "listen.no_silence": "长时间沉默",
    "listen.dead_air": "冷场", "listen.no_interrupt": "打断客户", "hold.apology": "保留致歉",
    "transfer.hold_first": "转接前保留", "speech.rate": "语速", "speech.volume": "音量",
    "language.polite": "文明用语", "promise.rash": "轻率承诺", "wrong_number.no_blame": "打错电话不责怪",
    "intake.confirm": "信息确认", "complaint.empathy_first": "先安抚情绪", "complaint.apology_wording": "致歉措辞",
    "complaint.no_argue": "不与客户争执", "complaint.own_it": "不推诿", "complaint.resolution_path": "给出解决路径",
    "complaint.follow_up": "跟进承诺", "complaint.recovered": "情绪挽回", "closing.summary_thanks": "总结与致谢",
    "closing.goodbye": "结束语", "closing.caller_hangs_up_first": "客户先挂机", "closing.redial_dropped": "掉线回拨",
}
SEVERITY_LABELS = {"breach": "违规", "warn": "警告", "info": "提示"}
MOOD_LABELS = {"angry": "愤怒", "upset": "不满", "neutral": "平静", "satisfied": "满意"}
SPEAKER_LABELS = {"agent": "坐席", "customer": "客户", "unknown": "未知"}
EVENT_LABELS = {"ringing": "振铃", "answered": "接听", "hold": "保留", "resume": "恢复", "transfer": "转接",
                "hangup": "挂机"}
DIRECTION_LABELS = {"inbound": "呼入", "outbound": "呼出"}


def rule_label(rule_id: str) -> str:
    return RULE_LABELS.get(rule_id, rule_id)
