"""Masking personal numbers in transcripts (service/pii.py): what must be masked, and what must not."""

from __future__ import annotations

import pytest

from service.pii import mask_fields, mask_text, masked, number_kind


@pytest.mark.parametrize("said, shown", [
    # mobile numbers, written and spoken
    ("我的手机号是13812345678，您记一下。", "我的手机号是*******5678，您记一下。"),
    ("号码是138-1234-5678对吧", "号码是***-****-5678对吧"),
    ("您打这个139 8765 4321就行", "您打这个*** **** 4321就行"),
    ("我的电话是一三八一二三四五六七八。", "我的电话是*******五六七八。"),
    ("幺三八，一二三四，五六七八，对。", "***，****，五六七八，对。"),
    ("幺五九 零零一二 三四五六", "*** **** 三四五六"),
    ("联系电话+86 138 1234 5678", "联系电话+** *** **** 5678"),
    ("我的号是１３８１２３４５６７８", "我的号是*******５６７８"),
    # landlines with the area code
    ("座机是010-62345678，白天都在", "座机是***-****5678，白天都在"),
    ("打零七五五八六一二三四五六", "打********三四五六"),
    # 18-digit ID numbers, X included
    ("身份证号码110105194912310021", "身份证号码**************0021"),
    ("身份证是11010519491231002X，没错", "身份证是**************002X，没错"),
    ("我身份证一一零一零五一九四九一二三一零零二一", "我身份证**************零零二一"),
    # bank cards
    ("卡号6222 0212 3456 7890 123，招商银行的", "卡号**** **** **** ***0 123，招商银行的"),
    ("银行卡六二二二零二一二三四五六七八九零一二三", "银行卡***************零一二三"),
    ("卡号是6217-0000-1234-5678", "卡号是****-****-****-5678"),
    # an amount next to a phone number: only the number
    ("收您 100 元，回电 13812345678", "收您 100 元，回电 *******5678"),
])
def test_personal_numbers_keep_only_their_last_four_digits(said: str, shown: str) -> None:
    assert mask_text(said) == shown


@pytest.mark.parametrize("said", [
    "这个套餐每月128元，一共是1536元。",
    "价格从1,280元降到980元，优惠了300。",
    "您在下午3点15分来电，我们10:30回复您。",
    "订单号20261123，两三天就到。",
    "2026年11月23日上午十点三十分",
    "2026-11-23 14:05 的那通电话",
    "我们的服务热线是95588，客服热线400-820-8820。",
    "分机号8021，工号A1042。",
    "一千二百八十块钱，三百六十五天",
    "我一一给您解答，三三两两的问题",
    "尾号5678的那张卡",
    "第12, 15, 18期都扣款了",
    "验证码是六五四三二一",
    "您好，这里是XX银行，请问有什么可以帮您？",
])
def test_prices_times_dates_and_short_numbers_are_left_alone(said: str) -> None:
    assert mask_text(said) == said


def test_number_kinds() -> None:
    assert number_kind("13812345678") == "mobile" and number_kind("8613812345678") == "mobile"
    assert number_kind("01062345678") == "landline"
    assert number_kind("11010519491231002X") == "id_number"
    assert number_kind("6222021234567890123") == "bank_card"
    assert number_kind("12812345678") is None and number_kind("20261123") is None


def test_reports_mask_text_fields_at_any_depth_and_leave_ids_alone() -> None:
    report = {
        "call_id": "call-13812345678",
        "caller_number": "13900139000",
        "recording": {"file_name": "A3003_20261125-143000_13912345678.wav", "sha256": "a" * 64},
        "utterances": [{"utterance_id": "customer-0", "text": "我的卡号6222021234567890123", "start": 1.0}],
        "findings": [{"rule_id": "x", "detail": "客户报了手机13812345678",
                      "evidence": [{"kind": "utterance", "text": "一三八一二三四五六七八", "t": 2.0}]}],
        "prompts": [{"evidence": "客户 2.0s：13812345678", "text": "请核对13812345678"}],
        "score": 90.0,
    }
    out = mask_fields(report)
    assert out["call_id"] == "call-13812345678" and out["recording"]["sha256"] == "a" * 64
    assert out["caller_number"] == "*******9000"
    assert out["recording"]["file_name"] == "A3003_20261125-143000_*******5678.wav"
    assert out["utterances"][0]["text"] == "我的卡号***************0123"
    assert out["findings"][0]["detail"] == "客户报了手机*******5678"
    assert out["findings"][0]["evidence"][0]["text"] == "*******五六七八"
    assert out["prompts"][0] == {"evidence": "客户 2.0s：*******5678", "text": "请核对*******5678"}
    assert report["caller_number"] == "13900139000", "the original is not changed"
    assert masked(report, False) is report
