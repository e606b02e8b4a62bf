from rules.text import CompanyNameMatcher, PhraseMatcher, TextNormalizer, is_backchannel

norm = TextNormalizer()


def test_normalise_simplifies_and_strips_punctuation() -> None:
    assert norm("餵，您好！ 順豐快遞。") == "喂您好顺丰快递"
    assert norm("ＳＦ１２３") == "sf123"


def test_phrase_matcher_masks_negations() -> None:
    m = PhraseMatcher(["保证", "re:一定(能|会)?送到"], norm, ["re:(不能|无法)(跟您)?保证.{0,10}"])
    assert m.search(norm("我保证明天到")) is not None
    assert m.search(norm("我不能跟您保证明天一定送到")) is None
    assert m.search(norm("明天一定送到")).phrase == "一定送到"


def test_company_name_fuzzy_by_pinyin() -> None:
    m = CompanyNameMatcher(["顺丰快递", "顺丰"], norm)
    assert m.search(norm("你好，顺风快递，请问有什么可以帮你")) is not None
    assert m.search(norm("您好顺丰速运")) is not None  # the alias
    assert m.search(norm("您好，申通快递")) is None
    assert m.search(norm("您好，圆通快递")) is None


def test_company_name_other_asr_errors() -> None:
    assert CompanyNameMatcher(["中国移动"], norm).search(norm("您好中国移东")) is not None
    assert CompanyNameMatcher(["招商银行"], norm).search(norm("您好招商银航信用卡中心")) is not None
    assert CompanyNameMatcher(["中国移动"], norm).search(norm("您好中国银行")) is None


def test_backchannels() -> None:
    tokens = [norm(t) for t in ["嗯", "好的", "是的", "对", "明白", "了解"]]
    for text in ["嗯", "嗯嗯", "好的好的", "对对对", "是的，明白"]:
        assert is_backchannel(norm(text), tokens, 8), text
    for text in ["不是这样的", "好的我帮您查一下", "你听我说"]:
        assert not is_backchannel(norm(text), tokens, 8), text
