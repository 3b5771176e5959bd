"""Optional secure listeners of the local stack: Kafka SASL_SSL and mutual-TLS, Redis TLS.

Kafka gets two extra listeners next to its PLAINTEXT one (kept for the broker itself):
``SASL_SSL`` (TLS, then a PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 login) and ``SSL`` with
required client certificates. PLAIN users live in the listener's JAAS line; SCRAM users
are written into the metadata log when it is formatted (``kafka-storage format
--add-scram``). Redis listens on TLS only, requires client certificates, a password for
the default user and has ACL users with full access.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devtools.localstack.certs import Certificates, make_certificates
from devtools.localstack.tools import StackError

__all__ = ["SCRAM_MECHANISMS", "StackSecurity", "write_secret"]

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_SAFE = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StackSecurity:
    """Certificates and the users of the secure listeners."""

    certs: Certificates
    kafka_users: Mapping[str, str]
    redis_password: str
    redis_users: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pairs = [*self.kafka_users.items(), *self.redis_users.items(), ("", self.redis_password)]
        for name, password in pairs:
            if (name and not _SAFE.fullmatch(name)) or not _SAFE.fullmatch(password):
                raise StackError("stack user names and passwords must match [A-Za-z0-9._-]+")
        if not self.kafka_users:
            raise StackError("a secure stack needs at least one Kafka user")

    @classmethod
    def generate(cls, folder: Path, user: str = "engagement") -> StackSecurity:
        """Fresh certificates in ``folder`` and random passwords."""
        return cls(
            certs=make_certificates(folder),
            kafka_users={user: secrets.token_hex(16)},
            redis_password=secrets.token_hex(16),
            redis_users={user: secrets.token_hex(16)},
        )

    def kafka_properties(self, sasl_ssl_port: int, ssl_port: int) -> dict[str, str]:
        """Broker properties adding the SASL_SSL and SSL listeners (merged into the PLAINTEXT
        and CONTROLLER ones by the stack)."""
        plain_users = " ".join(f'user_{n}="{p}"' for n, p in self.kafka_users.items())
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        props = {
            "listeners": f"SASL_SSL://127.0.0.1:{sasl_ssl_port},SSL://127.0.0.1:{ssl_port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,SSL:SSL",
            "inter.broker.listener.name": "PLAINTEXT",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.certs.server_keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.certs.ca),
            "listener.name.ssl.ssl.client.auth": "required",
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": ",".join(
                ("PLAIN", *SCRAM_MECHANISMS)
            ),
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
            ),
        }
        for mechanism in SCRAM_MECHANISMS:
            props[f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config"] = scram
        return props

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments creating the SCRAM users."""
        args: list[str] = []
        for name, password in self.kafka_users.items():
            for mechanism in SCRAM_MECHANISMS:
                args += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        return args

    def redis_config(self, tls_port: int) -> str:
        """redis.conf lines: TLS only, client certificates, passwords and ACL users."""
        lines = [
            "port 0",
            f"tls-port {tls_port}",
            f"tls-cert-file {self.certs.server_cert}",
            f"tls-key-file {self.certs.server_key}",
            f"tls-ca-cert-file {self.certs.ca}",
            "tls-auth-clients yes",
            f"requirepass {self.redis_password}",
        ]
        lines += [f"user {n} on >{p} ~* &* +@all" for n, p in self.redis_users.items()]
        return "\n".join(lines) + "\n"


def write_secret(folder: Path, name: str, value: str) -> Path:
    """Write a secret to ``folder/name`` readable by the owner only; return its path."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(value + "\n")
    return path
