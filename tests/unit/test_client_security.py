"""Client options shared by the Kafka clients, Redis client options, the bearer check and
log redaction."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
from faust.types.auth import AuthProtocol

from devtools.localstack.certs import Certificates, make_certificates
from stream.adapters.kafka_security import client_options, faust_credentials, ssl_context
from stream.adapters.redis_client import redis_options
from stream.config.errors import ConfigError
from stream.config.log_redaction import install_log_redaction
from stream.config.secret import Secret
from stream.config.security import KafkaSecurity
from stream.config.settings import Settings
from stream.worker.http_auth import bearer_allows

PASSWORD = "Pw-unit-91f0e3c2"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def _sasl_ssl(certs: Certificates, mechanism: str = "SCRAM-SHA-512") -> KafkaSecurity:
    return KafkaSecurity("SASL_SSL", mechanism, "scorer", Secret(PASSWORD), str(certs.ca))


def test_plaintext_needs_no_options() -> None:
    """PLAINTEXT gives kafka-python/aiokafka only the protocol and Faust no credentials."""
    assert client_options(KafkaSecurity()) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(KafkaSecurity()) is None


def test_sasl_ssl_options_verify_the_broker(certs: Certificates) -> None:
    """SASL_SSL passes mechanism, user, password and a verifying TLS context."""
    options = client_options(_sasl_ssl(certs))
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "scorer", "sasl_plain_password": PASSWORD,
    }  # fmt: skip
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_faust_credentials_match_the_protocol(certs: Certificates) -> None:
    """Faust gets SASL over TLS, SASL without TLS, or TLS with a client certificate."""
    sasl_ssl = faust_credentials(_sasl_ssl(certs, "PLAIN"))
    assert sasl_ssl.protocol == AuthProtocol.SASL_SSL and sasl_ssl.mechanism.value == "PLAIN"
    assert sasl_ssl.password == PASSWORD and PASSWORD not in repr(sasl_ssl)
    sasl_plain = faust_credentials(KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "u", Secret(PASSWORD)))
    assert sasl_plain.protocol == AuthProtocol.SASL_PLAINTEXT and sasl_plain.ssl_context is None
    mtls = KafkaSecurity("SSL", None, None, None, str(certs.ca), str(certs.client_cert),
                         str(certs.client_key))  # fmt: skip
    tls = faust_credentials(mtls)
    assert tls.protocol == AuthProtocol.SSL and isinstance(tls.context, ssl.SSLContext)


def test_unloadable_tls_files_name_the_setting(certs: Certificates, tmp_path: Path) -> None:
    """A CA file that is not PEM, or a key not matching the certificate, names its setting."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as caught:
        ssl_context(KafkaSecurity("SSL", ssl_cafile=str(junk)))
    assert caught.value.key == "ENGAGEMENT_KAFKA_SSL_CAFILE"
    mismatched = KafkaSecurity("SSL", None, None, None, str(certs.ca), str(certs.client_cert),
                               str(certs.server_key))  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        ssl_context(mismatched)
    assert caught.value.key == "ENGAGEMENT_KAFKA_SSL_CERTFILE"


def test_redis_options_for_tls_and_acl_user(certs: Certificates) -> None:
    """rediss:// gets verifying TLS with the CA and client files; credentials stay apart."""
    settings = Settings.from_env({
        "ENGAGEMENT_REDIS_URL": "rediss://127.0.0.1:6380/0",
        "ENGAGEMENT_REDIS_USERNAME": "scorer", "ENGAGEMENT_REDIS_PASSWORD": PASSWORD,
        "ENGAGEMENT_REDIS_SSL_CAFILE": str(certs.ca),
        "ENGAGEMENT_REDIS_SSL_CERTFILE": str(certs.client_cert),
        "ENGAGEMENT_REDIS_SSL_KEYFILE": str(certs.client_key),
    })  # fmt: skip
    assert redis_options(settings.redis) == {
        "username": "scorer", "password": PASSWORD, "ssl_cert_reqs": "required",
        "ssl_check_hostname": True, "ssl_ca_certs": str(certs.ca),
        "ssl_certfile": str(certs.client_cert), "ssl_keyfile": str(certs.client_key),
    }  # fmt: skip
    assert redis_options(Settings.from_env({}).redis) == {}


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("Bearer Tok-0123456789abcdef", True),
        ("bearer   Tok-0123456789abcdef ", True),
        ("Bearer Tok-0123456789abcdeF", False),
        ("Bearer Tok-0123456789abcde", False),
        ("Bearer Tok-0123456789abcdef0", False),
        ("Basic Tok-0123456789abcdef", False),
        ("Tok-0123456789abcdef", False),
        ("Bearer", False),
        ("", False),
        (None, False),
    ],
)
def test_bearer_token_check(header: str | None, allowed: bool) -> None:
    """Only 'Bearer <exact token>' passes; with no token configured everything passes."""
    assert bearer_allows(header, Secret("Tok-0123456789abcdef")) is allowed
    assert bearer_allows(header, None) is True


def test_log_records_mask_secrets_in_messages_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Any library's log line, its arguments, bytes reprs and tracebacks lose the secrets."""
    secret = "Redact-Me-4c2a"
    factory = logging.getLogRecordFactory()
    install_log_redaction([secret, ""])
    try:
        log = logging.getLogger("some.library")
        with caplog.at_level(logging.DEBUG):
            log.debug("request %r", b"user\x00user\x00" + secret.encode())
            log.info("password=%s", secret)
            try:
                raise ValueError(f"bad {secret}")
            except ValueError:
                log.exception("failed")
        text = caplog.text
    finally:
        logging.setLogRecordFactory(factory)
    assert secret not in text and "***" in text
    assert "request b'user\\x00user\\x00***'" in text and "ValueError: bad ***" in text
