"""One customer id rule for every surface: the decoder, the HTTP endpoints (400), the CLI
(exit 2) and the web page (the rule served at ``/api/id-rule``)."""

from __future__ import annotations

import re

import pytest

from stream.cli.main import main
from stream.cli.store import require_valid_id
from stream.config.errors import ConfigError
from stream.config.settings import Settings
from stream.core.decode import id_rule, valid_customer_id

NEVER_VALID = [
    "a\u202eb",  # bidi override
    "x\u200by",  # zero-width space
    "p\u2028q",  # line separator
    "\ufeffz",  # byte order mark
    "soft\u00adhyphen",  # soft hyphen
    "t\U000e0041g",  # tag character
    "nul\x00",
    "",
    "x" * 129,
]
VALID = ["c-42", "Zoë", "50%off", "{braced}", "with space", "👩\u200d💻", "x" * 128]


@pytest.mark.parametrize("customer_id", NEVER_VALID)
def test_engagement_score_refuses_an_id_that_can_never_be_valid(
    customer_id: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGAGEMENT_REDIS_URL", "redis://127.0.0.1:1")  # never reached
    assert main(["score", customer_id]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid customer id" in err
    assert not valid_customer_id(customer_id)


@pytest.mark.parametrize("customer_id", VALID)
def test_valid_ids_pass_the_same_rule(customer_id: str) -> None:
    assert valid_customer_id(customer_id)
    assert require_valid_id("customer", customer_id, Settings()) == customer_id


def test_the_account_command_uses_the_rule_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="invalid account id"):
        require_valid_id("account", "a\u202eb", Settings())


@pytest.mark.parametrize("customer_id", NEVER_VALID + VALID)
def test_the_rule_served_to_the_page_agrees_with_the_decoder(customer_id: str) -> None:
    """The page tests the served pattern with JavaScript's ``u`` flag; Python's ``re`` reads
    the same ``\\u{...}`` escapes once rewritten, so the two can be compared here."""
    rule = id_rule(128)
    python_class = re.sub(r"\\u\{([0-9a-f]+)\}", lambda m: chr(int(m.group(1), 16)),
                          rule["forbidden"])  # fmt: skip
    forbidden = re.compile(python_class)
    length_ok = 0 < len(customer_id) <= rule["max_length"]
    bytes_ok = len(customer_id.encode(errors="surrogatepass")) <= rule["max_bytes"]
    page_says = length_ok and bytes_ok and forbidden.search(customer_id) is None
    assert page_says == valid_customer_id(customer_id)
