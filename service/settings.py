"""Process settings, read from the environment (`CALLWATCH_*`) or a `.env` file.

What a deployment changes about the models, the machine and the limits lives here; what it changes about
etiquette (company name, thresholds, phrase lists, prompts) lives in the rules file.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import os
from pathlib import Path

from typing import Literal

from pydantic import Field, field_validator, model_validator
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
    "请订阅",  # "Subscribe 请订阅 点赞", written once over synthetic hold music
    "中文字幕",
    "字幕组",
    "amara.org",
]

DEFAULT_AUDIT_BROKER_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLWATCH_", env_file=".env", extra="ignore")

    # Models
    asr_backend: str = "faster-whisper"
    asr_model: str = Field(EMBEDDED_MODEL_NAME, description="embedded:whisper-base, a local folder, or a size name")
    device: str = Field("cpu", description="cpu, cuda or cuda:N: where the models run unless asr_device / emotion_device say otherwise")
    asr_device: str = Field("", description="default: device")
    asr_compute_type: str = Field("", description="CTranslate2 compute type; default int8 on cpu, float16 on cuda")
    asr_threads: int = Field(1, ge=1, description="CPU threads per recogniser worker")
    malloc_arenas: int = Field(2, ge=0, le=64, description="glibc malloc arenas for the process (service/malloc_arenas.py); 0 = glibc's default of eight per core")
    asr_workers: int = Field(0, ge=0, description="utterances decoded at once; 0 = one per core on CPU, one on a GPU")
    asr_encoder_window: str = Field("fit", pattern="^(fit|full)$")
    asr_prompt: str = ""
    final_beam_size: int = Field(2, ge=1, le=10, description="beam for live finals (the agent's screen, live prompts); 2 measured as accurate as 5 on the shared clips for a tenth less decoding")
    second_pass_beam_size: int = Field(5, ge=1, le=10, description="beam for the second pass: the stored transcript, its report and audits (2 measured 1.2 points worse here)")
    partial_beam_size: int = Field(1, ge=1, le=10)
    asr_max_batch: int = Field(2, ge=1, le=32, description="utterances waiting together are decoded in one batch, up to this many")
    asr_homophone_repair: bool = Field(True, description="repair words a final wrote with wrong, same-sounding characters (揪证 → 纠正), each repair checked against the audio")
    second_pass_full_window: bool = Field(False, description="the second pass encodes every window at Whisper's full 30 s (more accurate on short calls, 1.6x the time)")
    second_pass_backlog_s: float = Field(1800.0, ge=0.0, le=86_400.0, description="seconds of speech that ended calls waiting for their second pass may hold (int16: 32 kB a second, so about 58 MB); past it a call keeps its live transcript (service/post_call.py)")
    second_pass: bool = Field(True, description="when a call ends, hear each leg again as a whole (full windows, the text before as context) for the stored transcript and report; audits are heard by it alone")
    asr_homophone_max_loss: float = Field(3.0, ge=0, description="how much less likely (natural log) Whisper may find a repaired final than its own words")
    emotion_model: str | None = Field(None, description="text sentiment model: None = the embedded e5-small + shipped head; or a folder / HF id")
    emotion_head: str | None = Field(None, description="linear head (safetensors) for an encoder model; None with emotion_model = a sequence classifier")
    emotion_label_map: dict[str, str] | None = Field(None, description="the model's labels → angry/upset/neutral/satisfied")
    emotion_device: str = Field("", description="default: device")
    hallucination_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_HALLUCINATION_PHRASES))

    # Streaming policy
    vad_threshold: float = Field(0.5, gt=0, lt=1)
    end_silence_ms: int = Field(450, ge=100, le=5000)
    min_speech_ms: int = Field(200, ge=0)
    pre_roll_ms: int = Field(400, ge=0, le=2000)
    post_roll_ms: int = Field(300, ge=0, le=2000)
    early_finals: bool = Field(True, description="decode a final once the post-roll is heard, before the end silence is over")
    soft_max_utterance_s: float = Field(8.0, ge=1, le=30, description="a longer turn is closed at its next short pause")
    split_silence_ms: int = Field(200, ge=50, le=5000, description="the short pause that closes a long turn")
    max_utterance_s: float = Field(20.0, ge=2, le=30)
    partial_interval_s: float = Field(0.6, ge=0.2)
    partial_max_age_s: float = Field(1.5, gt=0, description="a queued partial older than this is dropped")

    # Paths and storage
    cache_dir: Path = Path.home() / ".cache" / "callwatch"
    data_dir: Path = Path("var")
    database_url: str = Field("", description="any SQLAlchemy URL, e.g. postgresql://user:pw@host/callwatch; default SQLite in data_dir")
    database_retry_s: float = Field(
        30.0, ge=0, description="how long a store operation keeps retrying while the database is unreachable (a restart)",
    )
    rules_file: Path | None = None
    instance_id: str = Field(
        default_factory=socket.gethostname, min_length=1, max_length=128,
        description="names this instance's calls in a shared database, so that at start it marks interrupted only "
                    "the calls it left live; default the host name: set it when several instances run on one host",
    )

    # Access. Tokens are compared in constant time; keep them in the environment or a secrets store, not in
    # the rules file. With none configured, the agent and supervisor pages refuse everyone.
    ingest_keys: dict[str, str] = Field(
        default_factory=dict,
        description='{"integrator name": "API key"}; when set, the ingest socket refuses a missing or wrong key',
    )
    agent_tokens: dict[str, str] = Field(default_factory=dict, description='{"agent id": "token"}')
    supervisor_tokens: dict[str, str] = Field(default_factory=dict, description='{"supervisor name": "token"}')
    keys_file: Path | None = Field(
        None, description="principals and their hashed keys (YAML or JSON, docs/security.md); re-read when it changes"
    )
    mask_pii: bool = Field(False, description="mask phone, ID and bank card numbers in reports and exports")

    # QA audits of recordings
    audit_workers: int = Field(0, ge=0, description="recordings in flight at once; 0 = cores + 1")
    audit_beam_size: int | None = Field(None, ge=1, le=10, description="beam for audits; default: second_pass_beam_size")
    audit_max_file_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    audit_import_roots: list[Path] = Field(default_factory=list, description="folders a server-side batch may read; default DATA_DIR/import")
    audit_engine: str = Field("local", pattern="^(local|celery)$", description="local: audits run in the submitting process; celery: on `callwatch audit-worker` processes, through the broker")
    audit_broker_url: str = Field("", description="Redis for audit_engine=celery: the Celery broker, and the workers' claims on running jobs; default redis_url, else redis://127.0.0.1:6379/0")
    audit_lease_s: float = Field(60.0, ge=2, le=3600, description="a worker renews its claim on a running job every third of this; a claim not renewed for this long (a dead worker's) is given to another worker")
    audit_visibility_timeout_s: float = Field(6 * 3600, ge=5, description="the broker hands a task again if it is not acknowledged within this; longer than the longest audit")

    # Limits
    max_frame_bytes: int = Field(256 * 1024, ge=1024)
    max_call_s: float = Field(4 * 3600, gt=0, le=86_400)
    judge_budget_s: float = Field(
        30.0, gt=0, le=3600, description="wall time the rules may take to judge one call (an audit, a posted timeline); past it the work is stopped")
    event_lead_s: float = Field(
        10.0, ge=0, le=600, description="how far ahead of the audio heard a live call event's `t` may be; a later time is refused as invalid")
    max_live_calls: int = Field(64, ge=1)
    live_max_lead_s: float = Field(
        10.0, ge=0, le=3600, description="how far a live socket's audio may run ahead of real time; past it the socket is read at real time (service/pacing.py)")
    max_asr_queue_depth: int = Field(
        16, ge=1, description="finals waiting for the recogniser beyond which new calls are refused (calls in progress go on)")
    asr_behind_partials_dropped: int = Field(
        4, ge=1, description="partials dropped within asr_behind_window_s (and asr_behind_dropped_share of those asked for) that make each live call be told asr_behind, once")
    asr_behind_dropped_share: float = Field(0.5, gt=0, le=1, description="the share of partials dropped that counts as behind")
    asr_behind_window_s: float = Field(10.0, gt=0, description="call-clock window over which partial drops are counted")
    # Connections that hold resources without using them (docs/security.md#connection-limits).
    ingest_start_timeout_s: float = Field(
        10.0, gt=0, description="an ingest socket that has sent no valid start this long after opening is closed (4401)")
    ingest_idle_timeout_s: float = Field(
        60.0, gt=0, description="a call whose client sends nothing at all (no audio, no event) this long is ended as dropped (4408); phone systems stream audio, silence included, all through a call")
    max_ingest_sockets_per_integrator: int = Field(
        0, ge=0, description="ingest sockets one integrator key may hold open on this instance; more are closed with 4503 too_many_sockets; 0 = twice max_live_calls")
    request_head_timeout_s: float = Field(
        10.0, gt=0, description="an HTTP connection that has not sent a whole request line and headers this long after connecting (or after its last response) is closed")

    # Platform connectors (docs/connectors.md).
    audiohook_client_secret: str = Field(
        "", description="the Genesys AudioHook integration's client secret, base64 as Genesys shows it; when set, "
                        "every AudioHook connection must carry a valid HTTP message signature made with it")

    # Several instances behind a load balancer share the agent feed over Redis (docs/agent-feed.md).
    redis_url: str | None = Field(
        None, description="redis://HOST:6379/0: every instance's feed serves every call; unset: in-process, one instance"
    )
    redis_key_prefix: str = Field("callwatch:feed:", description="key prefix in Redis, so deployments can share one")

    # FreeSWITCH mod_audio_fork / mod_audio_stream, Jambonz listen (docs/connectors.md)
    freeswitch_mix_type: Literal["mono", "mixed", "stereo"] = Field(
        "mono", description="the mix type of a stream whose metadata and URL do not say (Jambonz always says)")
    freeswitch_sample_rate: int = Field(
        8000, description="the L16 rate of a stream whose metadata and URL do not say: 8000, 16000, 24000, 32000 or 48000")
    freeswitch_caller_is: Literal["customer", "agent"] = Field(
        "customer", description="whose voice the module's 'caller' (read stream: stereo left, mono) is, unless the "
                                "metadata's caller_is says; the other voice is the callee's")

    # Twilio Media Streams (docs/connectors.md#twilio-media-streams)
    twilio_auth_token: str = Field(
        "", description="the Twilio account's auth token: when set, a stream's handshake must carry a valid X-Twilio-Signature")
    twilio_stream_url: str = Field(
        "", description="the wss URL the TwiML's <Stream url> names, as Twilio signs it; default wss://HOST/PATH of the "
                        "request: set it behind a proxy that changes the host or the path")
    twilio_inbound_speaker: Literal["customer", "agent"] = Field(
        "customer", description="whose voice Twilio's inbound track carries (the party on the call leg the TwiML runs "
                                "on); the outbound track is the other's")

    # Asterisk (docs/connectors.md#asterisk): AudioSocket listens on a TCP port of its own; chan_websocket comes in
    # on /v1/connectors/asterisk. Both carry one leg per connection; two legs of one call are paired into one call.
    audiosocket_port: int = Field(0, ge=0, le=65535, description="TCP port of the AudioSocket listener; 0 = off")
    audiosocket_host: str = Field("127.0.0.1", description="address the AudioSocket listener binds to")
    audiosocket_integrator: str = Field(
        "", description="the integrator (keys file or ingest_keys) AudioSocket calls are admitted as, whose tenant they are stored under; AudioSocket has no key of its own. Without any integrator keys configured, calls come from this machine only")
    audiosocket_allow: list[str] = Field(
        default_factory=list, description="addresses or networks (CIDR) AudioSocket connections are taken from; empty = any that reaches the listener")
    asterisk_pair_window_s: float = Field(
        5.0, gt=0, le=300, description="how long after a call's first leg arrives its second leg may join it")
    asterisk_agent_id: str = Field(
        "unknown", min_length=1, max_length=128, description="agent id of an Asterisk call whose connection names none (AudioSocket never does)")

    # Operations
    log_format: Literal["text", "json"] = Field("text", description="json: one object per line with call_id, for a log collector")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_token: str = Field("", description="when set, GET /metrics needs Authorization: Bearer TOKEN")
    shutdown_grace_s: float = Field(
        30.0, gt=0, description="on SIGTERM, time given to the calls in progress to flush their last finals before they are cut")

    @field_validator("freeswitch_sample_rate")
    @classmethod
    def _fork_rate(cls, value: int) -> int:
        if value not in (8000, 16000, 24000, 32000, 48000):
            raise ValueError("an L16 rate the modules make and protocol v1 takes: 8000, 16000, 24000, 32000 or 48000")
        return value

    @field_validator("audiohook_client_secret")
    @classmethod
    def _secret_is_base64(cls, value: str) -> str:
        if value:
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise ValueError("must be base64, as Genesys shows the client secret") from None
        return value

    @field_validator("audiosocket_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        # A typo here would otherwise surface only when Asterisk first connects.
        for entry in value:
            ipaddress.ip_network(entry, strict=False)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _devices_follow_device(self) -> "Settings":
        # One switch for a GPU host; each model can still be placed on its own.
        if not self.asr_device:
            self.asr_device = self.device
        if not self.emotion_device:
            self.emotion_device = self.device
        if not self.asr_compute_type:
            self.asr_compute_type = "int8" if self.asr_device == "cpu" else "float16"
        # One Redis URL configures both the feed and the audit broker.
        if not self.audit_broker_url:
            self.audit_broker_url = self.redis_url or DEFAULT_AUDIT_BROKER_URL
        return self

    @property
    def resolved_asr_workers(self) -> int:
        if self.asr_workers:
            return self.asr_workers
        return 1 if self.asr_device != "cpu" else os.cpu_count() or 1

    @property
    def resolved_ingest_sockets_per_integrator(self) -> int:
        # Room for every live call the instance takes plus as many reconnecting or being refused.
        return self.max_ingest_sockets_per_integrator or 2 * self.max_live_calls

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'callwatch.db').resolve()}"
