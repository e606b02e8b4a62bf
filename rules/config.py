"""The rules file: shipped defaults, a deployment's overrides merged over them, validated.

A deployment's file holds only what it changes. Dicts merge key by key; a list or a
scalar replaces the default. Validation errors name the key and the line of the file
the offending value came from, so nothing falls back to a default silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from rules.catalog import RULE_CLASSES, RULE_IDS
from rules.encodings import UndecodableText, decode_text
from rules.settings import Deployment, EngineSettings, Lexicon, NegativeTurn, Recovery, RuleSettings, SeverityNames, Strict

DEFAULTS_RESOURCE = "defaults.yaml"

Path_ = tuple[Any, ...]


class RulesConfigError(ValueError):
    """A rules file that does not load or validate; the message names file, line and key."""


def _rules_table_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for cls in RULE_CLASSES:
        field_name = cls.rule_id.replace(".", "__")
        # A generic parameterised at run time, one per rule: mypy cannot check a type built from a variable.
        fields[field_name] = (RuleSettings[cls.options_model], Field(alias=cls.rule_id))  # type: ignore[name-defined]
    return create_model(
        "RulesTable",
        __config__=ConfigDict(extra="forbid", frozen=True, populate_by_name=False),
        **fields,
    )


RulesTable = _rules_table_model()


class RulesConfig(Strict):
    version: Literal[1]
    deployment: Deployment
    engine: EngineSettings
    lexicon: Lexicon
    negative_turn: NegativeTurn
    recovery: Recovery
    severity_names: SeverityNames
    rules: RulesTable  # type: ignore[valid-type]  # built by create_model above: a class mypy cannot see
    # Emotion fusion, smoothing and turn thresholds, and voice-arousal tuning (models/emotion/config.py:
    # `voice` and `tracker`); which text model runs is a process setting, not etiquette.
    emotion: dict[str, Any] = Field(default_factory=dict)

    @field_validator("emotion")
    @classmethod
    def _known_emotion_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        from pydantic import TypeAdapter

        from models.emotion.config import EmotionConfig, TrackerConfig, VoiceConfig

        unknown = set(value) - {"voice", "tracker"}
        if unknown:
            raise ValueError(f"unknown emotion sections {sorted(unknown)}; expected 'voice' and 'tracker'")
        EmotionConfig.from_dict(value)  # names an unknown key
        for section, kind in (("voice", VoiceConfig), ("tracker", TrackerConfig)):
            TypeAdapter(kind).validate_python(value.get(section) or {}, strict=False)  # names a mistyped one
        return value

    def rule(self, rule_id: str) -> RuleSettings[Any]:
        if rule_id not in RULE_IDS:
            raise KeyError(rule_id)
        return getattr(self.rules, rule_id.replace(".", "__"))

    def cooldown_s(self, rule_id: str) -> float:
        own = self.rule(rule_id).cooldown_s
        return self.engine.default_cooldown_s if own is None else own


# --- YAML with line numbers ---------------------------------------------------------

@dataclass(frozen=True)
class _Source:
    name: str
    lines: dict[Path_, int]


def _parse_yaml(text: str, name: str) -> tuple[Any, _Source]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise RulesConfigError(f"rules file {name}{where}: not valid YAML: {err.problem or err}") from None
    except yaml.YAMLError as err:
        raise RulesConfigError(f"rules file {name}: not valid YAML: {err}") from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _collect_lines(node, (), lines, name)
    return data, _Source(name, lines)


def _collect_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int], name: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise RulesConfigError(f"rules file {name}, line {line}: key {_show(path + (key,))} appears twice (first on line {seen[key]})")
            seen[key] = line
            lines[path + (key,)] = line
            _collect_lines(value_node, path + (key,), lines, name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _collect_lines(item, path + (i,), lines, name)


def _show(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "." in str(part):
            out += f'["{part}"]'
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def merge(base: Any, override: Any) -> Any:
    """Deep-merge mappings; anything else in ``override`` replaces ``base``."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


def _line_for(path: Path_, sources: list[_Source]) -> tuple[str, int] | None:
    # The most specific key that any file wrote wins; later files (overrides) first.
    for cut in range(len(path), -1, -1):
        prefix = path[:cut]
        for src in reversed(sources):
            if prefix in src.lines:
                return src.name, src.lines[prefix]
    return None


def _format_errors(err: ValidationError, sources: list[_Source]) -> str:
    messages = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            if len(loc) == 2 and loc[0] == "rules":
                msg = f"unknown rule id {loc[1]!r} (known ids are listed in docs/rules.md)"
            else:
                msg = f"unknown key {loc[-1]!r}"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif "input" in e and not isinstance(e["input"], (dict, list)):
            msg = f"{msg} (got {e['input']!r})"
        where = _line_for(loc, sources)
        prefix = f"rules file {where[0]}, line {where[1]}" if where else "rules file"
        messages.append(f"{prefix}: {_show(loc)}: {msg}")
    return "invalid rules configuration:\n  " + "\n  ".join(messages)


def _defaults_text() -> tuple[str, str]:
    res = resources.files("rules").joinpath(DEFAULTS_RESOURCE)
    return res.read_text(encoding="utf-8"), str(res)


def load_rules_config_text(override_text: str | None, override_name: str = "<override>") -> RulesConfig:
    default_text, default_name = _defaults_text()
    base, base_src = _parse_yaml(default_text, default_name)
    sources = [base_src]
    data = base
    if override_text is not None:
        override, over_src = _parse_yaml(override_text, override_name)
        if override is None:
            override = {}
        if not isinstance(override, dict):
            raise RulesConfigError(f"rules file {override_name}, line 1: the top level must be a mapping of keys")
        sources.append(over_src)
        data = merge(base, override)
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as err:
        raise RulesConfigError(_format_errors(err, sources)) from None


def recogniser_hotwords(config: RulesConfig) -> tuple[str, ...]:
    """The names the recogniser should favour: the deployment's hotwords, with the company name and its
    aliases unless the company name is still the shipped placeholder (measured on unseen clips, the
    placeholder as a prompt cost 7 of 418 characters)."""
    deployment = config.deployment
    shipped = load_rules_config_text(None).deployment.company_name
    names = [*deployment.hotwords]
    if deployment.company_name != shipped:
        names += [deployment.company_name, *deployment.company_aliases]
    return tuple(dict.fromkeys(names))


def read_rules_file(path: Path) -> str:
    """A rules file's text, UTF-8 or GB18030/GBK (rules/encodings.py); RulesConfigError when it cannot be read."""
    try:
        return decode_text(Path(path).read_bytes(), f"rules file {path}")
    except OSError as err:
        raise RulesConfigError(f"rules file {path}: cannot read: {err.strerror or err}") from None
    except UndecodableText as err:
        raise RulesConfigError(str(err)) from None


def load_rules_config(path: Path | None = None) -> RulesConfig:
    """The shipped defaults, with the deployment's file at ``path`` merged over them."""
    if path is None:
        return load_rules_config_text(None)
    return load_rules_config_text(read_rules_file(path), str(path))
