from models.text import character_error_rate, normalise_transcript, strip_for_scoring


def test_traditional_output_becomes_simplified_with_chinese_punctuation():
    assert normalise_transcript("您好, 這裡是順豐快遞, 請問有什麼可以幫您?", final=True) == "您好，这里是顺丰快递，请问有什么可以帮您？"


def test_the_aspect_particle_zhe_is_simplified_but_the_zhu_of_works_is_not():
    # Whisper writes 着 the Taiwanese way (著); 著 stays in 显著 and 著作, where simplified Chinese keeps it.
    assert normalise_transcript("要帶著全部家當，看著著作很顯著", final=False) == "要带着全部家当，看着著作很显著"


def test_final_gets_closing_punctuation_but_partial_does_not():
    assert normalise_transcript("我想查一下快递", final=True) == "我想查一下快递。"
    assert normalise_transcript("我想查一下快递", final=False) == "我想查一下快递"


def test_phone_numbers_read_digit_by_digit_become_digits_but_words_stay():
    assert normalise_transcript("我的手机号是一三八一二三四五六七八", final=False) == "我的手机号是13812345678"
    assert normalise_transcript("一二线城市", final=False) == "一二线城市"


def test_latin_words_and_decimals_keep_their_punctuation():
    assert normalise_transcript("套餐是3.5G的流量", final=False) == "套餐是3.5G的流量"


def test_scoring_form_puts_numbers_and_script_in_one_form():
    assert strip_for_scoring("九二年回到中國，") == strip_for_scoring("92年 回到中国")
    assert character_error_rate("甚至出现交易几乎停滞的情况", "甚至出現交易幾乎停制的情況。") == (1, 13)
