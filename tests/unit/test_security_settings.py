"""Security settings: settings file, *_FILE secrets, consistency checks, and no secret ever
shown by redaction, repr or a configuration error."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.config.errors import ConfigError
from stream.config.secret import Secret
from stream.config.settings import Settings

KAFKA_PW = "kafka-Pw-7c1e90d2"
REDIS_PW = "redis-Pw-3b8f4a61"
URL_PW = "url-Pw-55e0c2b9"
TOKEN = "api-Token-0f9e8d7c6b5a"


@pytest.fixture
def pem(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def _sasl(**extra: str) -> dict[str, str]:
    return {
        "ENGAGEMENT_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "ENGAGEMENT_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "ENGAGEMENT_KAFKA_SASL_USERNAME": "scorer",
        "ENGAGEMENT_KAFKA_SASL_PASSWORD": KAFKA_PW,
        **extra,
    }


def test_kafka_sasl_ssl_settings_are_typed(pem: str) -> None:
    """Protocol and mechanism are normalised; the password is a Secret; files are kept."""
    got = Settings.from_env(_sasl(ENGAGEMENT_KAFKA_SSL_CAFILE=pem)).kafka_security
    assert (got.protocol, got.sasl_mechanism, got.sasl_username) == (
        "SASL_SSL", "SCRAM-SHA-512", "scorer"
    )  # fmt: skip
    assert isinstance(got.sasl_password, Secret) and got.sasl_password.reveal() == KAFKA_PW
    assert got.ssl_cafile == pem and got.uses_tls and got.uses_sasl


def test_secret_from_file_variant(tmp_path: Path) -> None:
    """X_FILE reads the secret from a file (a mounted Kubernetes secret), newline dropped."""
    secret = tmp_path / "kafka-password"
    secret.write_text(KAFKA_PW + "\n")
    env = _sasl(ENGAGEMENT_KAFKA_SASL_PASSWORD="")
    env["ENGAGEMENT_KAFKA_SASL_PASSWORD_FILE"] = str(secret)
    env["ENGAGEMENT_REDIS_PASSWORD_FILE"] = str(secret)
    env["ENGAGEMENT_API_TOKEN_FILE"] = str(secret)
    got = Settings.from_env(env)
    assert got.kafka_security.sasl_password == Secret(KAFKA_PW)
    assert got.redis_security.password == Secret(KAFKA_PW)
    assert got.api_token == Secret(KAFKA_PW)


def test_settings_file_with_environment_winning(tmp_path: Path) -> None:
    """ENGAGEMENT_SETTINGS_FILE supplies settings by lower-case name; the environment wins."""
    path = tmp_path / "settings.yaml"
    path.write_text(
        "kafka_bootstrap: broker:9093\n"
        "partitions: 6\n"
        "kafka_security_protocol: SASL_PLAINTEXT\n"
        "kafka_sasl_mechanism: PLAIN\n"
        "kafka_sasl_username: from-file\n"
        f"kafka_sasl_password: {KAFKA_PW}\n"
        "max_json_depth: 12\n"
    )
    got = Settings.from_env(
        {"ENGAGEMENT_SETTINGS_FILE": str(path), "ENGAGEMENT_KAFKA_SASL_USERNAME": "from-env"}
    )
    assert got.kafka_bootstrap == "broker:9093" and got.partitions == 6
    assert got.kafka_security.protocol == "SASL_PLAINTEXT"
    assert got.kafka_security.sasl_username == "from-env"
    assert got.kafka_security.sasl_password == Secret(KAFKA_PW)
    assert got.max_json_depth == 12


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("partitions: lots\n", "partitions", "not a whole number"),
        ("colour: blue\n", "colour", "unknown setting"),
        ("topics: [a, b]\n", "topics", "single value"),
        (f"kafka_sasl_password: [{KAFKA_PW}\n", "(file)", "not valid YAML at line"),
        ("- just\n- a list\n", "(file)", "must be a mapping"),
    ],
)
def test_bad_settings_file_names_file_and_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    """Problems in the settings file name the file and the key, never the secret."""
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ENGAGEMENT_SETTINGS_FILE": str(path)})
    assert (caught.value.source, caught.value.key) == (str(path), key)
    assert problem in caught.value.problem
    assert KAFKA_PW not in str(caught.value)


def test_missing_settings_file_is_named() -> None:
    """A settings file that cannot be read is reported against ENGAGEMENT_SETTINGS_FILE."""
    with pytest.raises(ConfigError, match=r"ENGAGEMENT_SETTINGS_FILE: cannot read /nope\.yaml"):
        Settings.from_env({"ENGAGEMENT_SETTINGS_FILE": "/nope.yaml"})


def _cases(pem: str, tmp: Path) -> list[tuple[dict[str, str], str, str]]:
    empty = tmp / "empty"
    empty.write_text("\n")
    return [
        (_sasl(ENGAGEMENT_KAFKA_SASL_USERNAME=""), "ENGAGEMENT_KAFKA_SASL_USERNAME",
         "is required when ENGAGEMENT_KAFKA_SECURITY_PROTOCOL is SASL_SSL"),
        (_sasl(ENGAGEMENT_KAFKA_SASL_MECHANISM=""), "ENGAGEMENT_KAFKA_SASL_MECHANISM", "required"),
        (_sasl(ENGAGEMENT_KAFKA_SASL_PASSWORD=""), "ENGAGEMENT_KAFKA_SASL_PASSWORD", "required"),
        (_sasl(ENGAGEMENT_KAFKA_SECURITY_PROTOCOL="PLAINTEXT"), "ENGAGEMENT_KAFKA_SASL_MECHANISM",
         "SASL needs SASL_SSL or SASL_PLAINTEXT"),
        (_sasl(ENGAGEMENT_KAFKA_SASL_MECHANISM="GSSAPI"), "ENGAGEMENT_KAFKA_SASL_MECHANISM",
         "is not one of"),
        (_sasl(ENGAGEMENT_KAFKA_SECURITY_PROTOCOL="TLS"), "ENGAGEMENT_KAFKA_SECURITY_PROTOCOL",
         "is not one of"),
        (_sasl(ENGAGEMENT_KAFKA_SSL_CAFILE="/no/ca.pem"), "ENGAGEMENT_KAFKA_SSL_CAFILE",
         "file /no/ca.pem does not exist"),
        (_sasl(ENGAGEMENT_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
               ENGAGEMENT_KAFKA_SSL_CAFILE=pem),
         "ENGAGEMENT_KAFKA_SSL_CAFILE", "TLS needs SSL or SASL_SSL"),
        (_sasl(ENGAGEMENT_KAFKA_SSL_CERTFILE=pem), "ENGAGEMENT_KAFKA_SSL_KEYFILE",
         "is required with ENGAGEMENT_KAFKA_SSL_CERTFILE"),
        (_sasl(ENGAGEMENT_KAFKA_SASL_PASSWORD_FILE=pem), "ENGAGEMENT_KAFKA_SASL_PASSWORD",
         "set either ENGAGEMENT_KAFKA_SASL_PASSWORD or ENGAGEMENT_KAFKA_SASL_PASSWORD_FILE"),
        ({"ENGAGEMENT_REDIS_PASSWORD_FILE": str(tmp / "none")}, "ENGAGEMENT_REDIS_PASSWORD_FILE",
         "cannot read"),
        ({"ENGAGEMENT_REDIS_PASSWORD_FILE": str(empty)}, "ENGAGEMENT_REDIS_PASSWORD_FILE",
         "is empty"),
        ({"ENGAGEMENT_REDIS_URL": f"redis://u:{URL_PW}@h/0", "ENGAGEMENT_REDIS_PASSWORD": REDIS_PW},
         "ENGAGEMENT_REDIS_PASSWORD", "ENGAGEMENT_REDIS_URL holds a password too"),
        ({"ENGAGEMENT_REDIS_URL": f"redis://h/0?password={URL_PW}",
          "ENGAGEMENT_REDIS_PASSWORD": REDIS_PW}, "ENGAGEMENT_REDIS_PASSWORD", "password too"),
        ({"ENGAGEMENT_REDIS_USERNAME": "scorer"}, "ENGAGEMENT_REDIS_USERNAME", "needs a password"),
        ({"ENGAGEMENT_REDIS_URL": f"http://u:{URL_PW}@h"}, "ENGAGEMENT_REDIS_URL",
         "must start with redis://, rediss:// or unix://"),
        ({"ENGAGEMENT_REDIS_SSL_CAFILE": pem, "ENGAGEMENT_REDIS_PASSWORD": REDIS_PW},
         "ENGAGEMENT_REDIS_SSL_CAFILE", "does not start with rediss://"),
        ({"ENGAGEMENT_REDIS_URL": "rediss://h", "ENGAGEMENT_REDIS_SSL_KEYFILE": pem},
         "ENGAGEMENT_REDIS_SSL_CERTFILE", "is required with ENGAGEMENT_REDIS_SSL_KEYFILE"),
        ({"ENGAGEMENT_API_TOKEN": "short-token"}, "ENGAGEMENT_API_TOKEN", "at least 16"),
        ({"ENGAGEMENT_API_TOKEN": TOKEN + " x"}, "ENGAGEMENT_API_TOKEN", "no spaces"),
        ({"ENGAGEMENT_MAX_ID_LENGTH": "0"}, "ENGAGEMENT_MAX_ID_LENGTH", "outside 1..512"),
        ({"ENGAGEMENT_MAX_JSON_DEPTH": "1"}, "ENGAGEMENT_MAX_JSON_DEPTH", "outside 2..1000"),
    ]  # fmt: skip


def test_inconsistent_security_settings_name_key_and_problem(pem: str, tmp_path: Path) -> None:
    """Every unworkable combination names its key and problem, and shows no secret."""
    for env, key, problem in _cases(pem, tmp_path):
        with pytest.raises(ConfigError) as caught:
            Settings.from_env(env)
        assert caught.value.key == key, env
        assert problem in caught.value.problem, (env, caught.value.problem)
        for secret in (KAFKA_PW, REDIS_PW, URL_PW, TOKEN, "short-token"):
            assert secret not in str(caught.value)


def test_redacted_and_repr_hide_every_secret(pem: str) -> None:
    """Settings.redacted() and repr() mask the Kafka, Redis, URL and API secrets."""
    settings = Settings.from_env(
        _sasl(
            ENGAGEMENT_KAFKA_SSL_CAFILE=pem,
            ENGAGEMENT_REDIS_URL=f"rediss://scorer:{URL_PW}@h:6380/0?password={URL_PW}",
            ENGAGEMENT_API_TOKEN=TOKEN,
        )
    )
    other = Settings.from_env({"ENGAGEMENT_REDIS_PASSWORD": REDIS_PW})
    shown = f"{settings.redacted()} {settings!r} {other.redacted()} {other!r} {settings}"
    for secret in (KAFKA_PW, URL_PW, TOKEN, REDIS_PW):
        assert secret not in shown
    assert settings.redacted()["kafka_security"]["sasl_password"] == "***"
    assert settings.redacted()["kafka_security"]["sasl_username"] == "scorer"
    assert set(settings.secret_values()) >= {KAFKA_PW, URL_PW, TOKEN}
    assert REDIS_PW in other.secret_values()


def test_secret_compares_in_constant_time_and_never_prints() -> None:
    """A Secret shows *** and matches only its exact value."""
    secret = Secret(TOKEN)
    assert str(secret) == "***" and repr(secret) == "Secret('***')" and TOKEN not in f"{secret}"
    assert secret.matches(TOKEN)
    assert not secret.matches(TOKEN[:-1]) and not secret.matches(TOKEN + "x")
    assert not secret.matches("")
