"""Model file and environment settings: good input parses, bad input names key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stream.config.durations import parse_duration_ms
from stream.config.errors import ConfigError
from stream.config.model_file import load_model, parse_model
from stream.config.settings import Settings


def _default_doc() -> dict:
    text = (Path(__file__).parents[2] / "stream/config/models/default.yaml").read_text()
    return yaml.safe_load(text)


def test_shipped_models_load() -> None:
    """Both shipped models load, and the demo compresses time."""
    default, demo = load_model("default"), load_model("demo")
    assert default.window_ms == 30 * 86_400_000
    assert demo.window_ms == 60_000 and demo.bucket_ms == 2_000
    assert default.bands.names == ("churn_risk", "very_disengaged", "somewhat_engaged",
                                   "highly_engaged", "power_user")  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        (lambda d: d.pop("version"), "version", "is required"),
        (lambda d: d.update(window="thirty days"), "window", "not a duration"),
        (lambda d: d.update(bucket="7d"), "window", "whole number of buckets"),
        (lambda d: d["events"]["click"].update(points="many"), "events.click.points",
         "must be a number"),
        (lambda d: d["events"]["click"].update(weight=1), "events.click.weight", "unknown key"),
        (lambda d: d["segment_events"].update({"Foo": "bar"}), "segment_events.Foo",
         "not under 'events'"),
        (lambda d: d["alerts"].update(band="red"), "alerts.band", "not one of the bands"),
        (lambda d: d["bands"].update(power_user=5), "bands", "open-ended"),
        (lambda d: d["topics"].update(sessions=["warp"]), "topics.sessions", "unknown event types"),
        (lambda d: d.update(colour="blue"), "colour", "unknown key"),
        (lambda d: d["events"].pop("session_end"), "events.session_end", "is required"),
    ],
)  # fmt: skip
def test_broken_model_names_file_key_and_problem(mutate, key: str, problem: str) -> None:
    """A broken model raises ConfigError naming the source, the key and the problem."""
    doc = _default_doc()
    mutate(doc)
    with pytest.raises(ConfigError) as caught:
        parse_model(doc, "my-model.yaml")
    assert caught.value.source == "my-model.yaml"
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"my-model.yaml: {key}: ")


def test_unreadable_and_invalid_yaml_files(tmp_path: Path) -> None:
    """A missing file and a YAML syntax error are reported against the file."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_model(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("events: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_model(str(bad))


def test_settings_from_environment() -> None:
    """Variables override defaults, with durations and integers parsed."""
    got = Settings.from_env(
        {
            "ENGAGEMENT_KAFKA_BOOTSTRAP": "k:9",
            "ENGAGEMENT_BATCH_WITHIN": "20ms",
            "ENGAGEMENT_TOPIC_ALERTS": "alerts",
            "ENGAGEMENT_PARTITIONS": "12",
        }
    )
    assert got.kafka_bootstrap == "k:9"
    assert got.batch_within_ms == 20
    assert got.topics.alerts == "alerts"
    assert got.partitions == 12
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"ENGAGEMENT_PARTITIONS": "lots"}, "ENGAGEMENT_PARTITIONS"),
        ({"ENGAGEMENT_WEB_PORT": "70000"}, "ENGAGEMENT_WEB_PORT"),
        ({"ENGAGEMENT_SWEEP_INTERVAL": "10s"}, "ENGAGEMENT_SWEEP_INTERVAL"),
        ({"ENGAGEMENT_LOG_LEVEL": "loud"}, "ENGAGEMENT_LOG_LEVEL"),
        ({"ENGAGEMENT_BATCH_WITHIN": "soon"}, "ENGAGEMENT_BATCH_WITHIN"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], key: str) -> None:
    """Each bad variable raises ConfigError naming it."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert caught.value.key == key


def test_instance_id_defaults_to_the_host_name_and_none_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Static membership by default (the host name: a pod's name), an explicit id, or off;
    characters Kafka refuses in the host name are replaced."""
    monkeypatch.setattr("socket.gethostname", lambda: "engagement-worker-0")
    assert Settings.from_env({}).instance_id == "engagement-worker-0"
    monkeypatch.setattr("socket.gethostname", lambda: "laptop (2)")
    assert Settings.from_env({}).instance_id == "laptop--2-"
    assert Settings.from_env({"ENGAGEMENT_INSTANCE_ID": "worker-2"}).instance_id == "worker-2"
    assert Settings.from_env({"ENGAGEMENT_INSTANCE_ID": "none"}).instance_id is None


@pytest.mark.parametrize("value", ["worker 1", "a/b", "x" * 250])
def test_an_instance_id_kafka_would_refuse_names_the_variable(value: str) -> None:
    """Only what Kafka accepts as a group.instance.id passes."""
    with pytest.raises(ConfigError, match="group instance id") as caught:
        Settings.from_env({"ENGAGEMENT_INSTANCE_ID": value})
    assert caught.value.key == "ENGAGEMENT_INSTANCE_ID"


def test_redacted_hides_redis_password() -> None:
    """Credentials in the Redis URL never reach logs."""
    settings = Settings.from_env({"ENGAGEMENT_REDIS_URL": "redis://user:s3cret@host:6379/0"})
    assert "s3cret" not in str(settings.redacted())


@pytest.mark.parametrize(("text", "ms"), [("250ms", 250), ("90s", 90_000), ("1.5h", 5_400_000),
                                          ("30d", 2_592_000_000), ("1w", 604_800_000)])  # fmt: skip
def test_durations(text: str, ms: int) -> None:
    """Durations parse to milliseconds."""
    assert parse_duration_ms(text) == ms
