from pipelines.transcript_filter import TranscriptFilter
from service.settings import DEFAULT_HALLUCINATION_PHRASES

FILTER = TranscriptFilter(tuple(DEFAULT_HALLUCINATION_PHRASES))


def test_subtitle_credits_are_dropped_in_either_script():
    assert FILTER.clean("字幕由Amara.org社群提供", final=True) == ""
    assert FILTER.clean("請不吝點贊 訂閱 轉發 打賞支持明鏡與點點欄目", final=True) == ""


def test_a_decoding_loop_is_collapsed():
    assert FILTER.clean("自" * 60, final=True) == "自。"
    assert FILTER.clean("谢谢你" * 10, final=True) == "谢谢你。"


def test_real_repetition_in_speech_is_kept():
    assert FILTER.clean("好好好，对对对，没问题", final=True) == "好好好，对对对，没问题。"


def test_punctuation_alone_is_no_utterance():
    assert FILTER.clean("。。。", final=True) == ""
