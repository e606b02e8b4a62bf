"""Process settings, read from the environment (`CALLWATCH_*`) or a `.env` file.

What a deployment changes about the models, the machine and the limits lives here; what it changes about
etiquette (company name, thresholds, phrase lists, prompts) lives in the rules file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.embedded_whisper import EMBEDDED_MODEL_NAME

# Whisper's best-known inventions on silence and noise, learnt from subtitled video; they are never what a
# caller said. Matched after normalisation, so traditional forms are covered too.
DEFAULT_HALLUCINATION_PHRASES = [
    "字幕由",
    "字幕提供",
    "请不吝点赞",
    "点赞订阅",
    "订阅转发",
    "打赏支持",
    "明镜与点点栏目",
    "感谢观看",
    "谢谢观看",
    "谢谢大家观看",
    "欢迎订阅",
    "中文字幕",
    "字幕组",
    "amara.org",
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLWATCH_", env_file=".env", extra="ignore")

    # Models
    asr_backend: str = "faster-whisper"
    asr_model: str = Field(EMBEDDED_MODEL_NAME, description="embedded:whisper-base, a local folder, or a size name")
    asr_device: str = "cpu"
    asr_compute_type: str = "int8"
    asr_threads: int = Field(0, ge=0, description="CPU threads for the recogniser; 0 = all cores")
    asr_encoder_window: str = Field("fit", pattern="^(fit|full)$")
    asr_prompt: str = ""
    final_beam_size: int = Field(5, ge=1, le=10)
    partial_beam_size: int = Field(1, ge=1, le=10)
    emotion_model: str | None = Field(None, description="text sentiment model: None = the embedded e5-small + shipped head; or a folder / HF id")
    emotion_head: str | None = Field(None, description="linear head (safetensors) for an encoder model; None with emotion_model = a sequence classifier")
    emotion_label_map: dict[str, str] | None = Field(None, description="the model's labels → angry/upset/neutral/satisfied")
    emotion_device: str = "cpu"
    hallucination_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_HALLUCINATION_PHRASES))

    # Streaming policy
    vad_threshold: float = Field(0.5, gt=0, lt=1)
    end_silence_ms: int = Field(450, ge=100, le=5000)
    min_speech_ms: int = Field(200, ge=0)
    pre_roll_ms: int = Field(400, ge=0, le=2000)
    post_roll_ms: int = Field(300, ge=0, le=2000)
    max_utterance_s: float = Field(20.0, ge=2, le=30)
    partial_interval_s: float = Field(0.6, ge=0.2)
    partial_max_age_s: float = Field(1.5, gt=0, description="a queued partial older than this is dropped")

    # Paths and storage
    cache_dir: Path = Path.home() / ".cache" / "callwatch"
    data_dir: Path = Path("var")
    database_url: str = ""
    rules_file: Path | None = None

    # Access. Tokens are compared in constant time; keep them in the environment or a secrets store, not in
    # the rules file. With none configured, the agent and supervisor pages refuse everyone.
    ingest_keys: dict[str, str] = Field(
        default_factory=dict,
        description='{"integrator name": "API key"}; when set, the ingest socket refuses a missing or wrong key',
    )
    agent_tokens: dict[str, str] = Field(default_factory=dict, description='{"agent id": "token"}')
    supervisor_tokens: dict[str, str] = Field(default_factory=dict, description='{"supervisor name": "token"}')

    # QA audits of recordings
    audit_workers: int = Field(0, ge=0, description="recordings in flight at once; 0 = cores + 1")
    audit_beam_size: int | None = Field(None, ge=1, le=10, description="beam for audits; default: final_beam_size")
    audit_max_file_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    audit_import_roots: list[Path] = Field(default_factory=list, description="folders a server-side batch may read; default DATA_DIR/import")

    # Limits
    max_frame_bytes: int = Field(256 * 1024, ge=1024)
    max_call_s: float = Field(4 * 3600, gt=0)
    max_live_calls: int = Field(64, ge=1)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'callwatch.db').resolve()}"
