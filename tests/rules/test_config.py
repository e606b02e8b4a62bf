from pathlib import Path

import pytest

from rules.catalog import RULE_IDS
from rules.config import RulesConfigError, load_rules_config, load_rules_config_text


def test_defaults_cover_every_rule_id() -> None:
    config = load_rules_config()
    assert len(RULE_IDS) == 27
    for rid in RULE_IDS:
        s = config.rule(rid)
        assert s.seed and s.prompt
        assert s.kind in ("live", "post")


def test_override_merges_over_defaults() -> None:
    config = load_rules_config_text(
        "deployment:\n  company_name: 顺丰快递\nrules:\n  listen.dead_air:\n    options:\n      max_silence_s: 15\n"
    )
    assert config.deployment.company_name == "顺丰快递"
    assert config.deployment.ring_cadence_s == 5.0  # untouched default
    assert config.rule("listen.dead_air").options.max_silence_s == 15
    assert config.rule("listen.dead_air").weight == load_rules_config().rule("listen.dead_air").weight


def _error(text: str) -> str:
    with pytest.raises(RulesConfigError) as exc:
        load_rules_config_text(text, "site.yaml")
    return str(exc.value)


def test_unknown_rule_id_names_key_and_line() -> None:
    msg = _error("deployment:\n  company_name: X\nrules:\n  opening.hello:\n    enabled: false\n")
    assert "site.yaml, line 4" in msg
    assert "unknown rule id 'opening.hello'" in msg


def test_wrong_type_names_key_and_line() -> None:
    msg = _error("rules:\n  answer.rings:\n    options:\n      max_rings: three\n")
    assert "site.yaml, line 4" in msg
    assert 'rules["answer.rings"].options.max_rings' in msg


def test_bad_threshold_is_an_error() -> None:
    msg = _error("rules:\n  hold.apology:\n    options:\n      max_hold_s: -5\n")
    assert "line 4" in msg and "max_hold_s" in msg and "greater than 0" in msg


def test_unknown_option_key() -> None:
    msg = _error("rules:\n  hold.apology:\n    options:\n      max_hold: 40\n")
    assert "unknown key 'max_hold'" in msg and "line 4" in msg


def test_bad_kind_and_severity() -> None:
    msg = _error("rules:\n  promise.rash:\n    kind: sometimes\n    severity: fatal\n")
    assert "line 3" in msg and "line 4" in msg


def test_bad_yaml_names_the_line() -> None:
    msg = _error("deployment:\n  company_name: [unclosed\n")
    assert "site.yaml" in msg and "not valid YAML" in msg


def test_bad_regex_timezone_and_hours() -> None:
    msg = _error(
        "deployment:\n  staff_number_pattern: '工号(['\n  timezone: Mars/Base\n"
        "  business_hours:\n    window: {start: '20:00', end: '08:00'}\n"
    )
    assert "staff_number_pattern" in msg and "Mars/Base" in msg and "window" in msg


def test_duplicate_key() -> None:
    msg = _error("rules:\n  promise.rash:\n    enabled: false\n  promise.rash:\n    enabled: true\n")
    assert "line 4" in msg and "appears twice" in msg


def test_bad_phrase_regex() -> None:
    msg = _error("rules:\n  promise.rash:\n    options:\n      phrases: ['re:(unclosed']\n")
    assert "bad regular expression" in msg


def test_missing_file() -> None:
    with pytest.raises(RulesConfigError, match="cannot read"):
        load_rules_config(Path("/nonexistent/rules.yaml"))


def test_deployment_files_in_the_labelled_set_validate() -> None:
    for path in sorted((Path(__file__).parent.parent / "data" / "timelines" / "deployments").glob("*.yaml")):
        load_rules_config(path)


def test_the_placeholder_company_is_not_a_hotword_and_a_real_one_is():
    from rules.config import recogniser_hotwords

    assert recogniser_hotwords(load_rules_config_text(None)) == ()
    own = load_rules_config_text("deployment:\n  company_name: 顺丰速运\n  company_aliases: [顺丰]\n  hotwords: [丰巢]\n")
    assert recogniser_hotwords(own) == ("丰巢", "顺丰速运", "顺丰")
    # Products named while the company is still the placeholder are hotwords on their own.
    assert recogniser_hotwords(load_rules_config_text("deployment:\n  hotwords: [宽带套餐]\n")) == ("宽带套餐",)


@pytest.mark.parametrize("encoding, hotword", [("utf-8", "𠀀"), ("utf-8-sig", "𠀀"), ("gbk", "丰巢"), ("gb18030", "𠀀")])
def test_a_rules_file_in_utf8_or_gbk_reads_the_same(tmp_path: Path, encoding: str, hotword: str) -> None:
    """Notepad and Excel on a Chinese Windows save GBK; a BOM comes from Windows editors too. (𠀀 is in
    GB18030, not in GBK.)"""
    path = tmp_path / "rules.yaml"
    path.write_bytes(f"deployment:\n  company_name: 顺丰速运\n  hotwords: [{hotword}]\n".encode(encoding))
    config = load_rules_config(path)
    assert config.deployment.company_name == "顺丰速运" and config.deployment.hotwords == [hotword]


def test_a_rules_file_in_no_known_encoding_is_named_with_what_was_tried(tmp_path: Path) -> None:
    path = tmp_path / "rules-utf16.yaml"
    path.write_bytes("deployment:\n  company_name: 顺丰速运\n".encode("utf-16"))  # Windows "Unicode"
    with pytest.raises(RulesConfigError) as err:
        load_rules_config(path)
    assert "rules-utf16.yaml" in str(err.value) and "UTF-8" in str(err.value) and "GB18030" in str(err.value)
