"""The PostgreSQL store from Python: two integrations ("nodes") on one
database decide a registration once and answer its duplicates byte for byte.

The server is `CARDBRIDGE_TEST_PG` (default: user postgres on 127.0.0.1:5432);
each run works in a fresh schema, created and dropped with psql. When no
server answers the tests skip loudly, unless CI=true or
CARDBRIDGE_REQUIRE_PG=1 (set by .ci/test-all): then they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

import cardbridge
from cardbridge import AlipayPlus, Call, Response, Store
from cardbridge.testing import Emulator, sample_registration

from conftest import NOTIFY, integration_config, result_of, send

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def base_dsn() -> str:
    return os.environ.get("CARDBRIDGE_TEST_PG", "").strip() or DEFAULT_DSN


def required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("CARDBRIDGE_REQUIRE_PG") == "1"


def psql(sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", base_dsn(), "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    schema = f"cb_test_py_{os.getpid()}"
    why = None
    if shutil.which("psql") is None:
        why = "psql is not installed"
    else:
        made = psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        if made.returncode != 0:
            why = f"PostgreSQL is unreachable: {made.stderr.strip()}"
    if why is not None:
        if required():
            pytest.fail(f"{why} (CI=true / CARDBRIDGE_REQUIRE_PG=1: PostgreSQL tests must run)")
        print(f"\n!!!!!!!! SKIPPED PostgreSQL test: {why}", file=sys.stderr)
        pytest.skip(why)
    sep = "&" if "?" in base_dsn() else "?"
    if base_dsn().startswith(("postgres://", "postgresql://")):
        yield f"{base_dsn()}{sep}options=-c%20search_path%3D{schema}"
    else:
        yield f"{base_dsn()} options='-c search_path={schema}'"
    psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_two_nodes_on_one_database_decide_once(
    pg_dsn: str, driver: Emulator
) -> None:
    with Store.postgres(pg_dsn) as store_a, Store.postgres(pg_dsn) as store_b, AlipayPlus(
        integration_config(), store_a
    ) as node_a, AlipayPlus(integration_config(), store_b) as node_b:
        request = driver.request(NOTIFY, sample_registration("PY-PG-1"))
        call = send(node_a, request)
        assert isinstance(call, Call)
        # Node B gets the same delivery while A decides: U, and its host is not asked.
        busy = send(node_b, request)
        assert isinstance(busy, Response)
        assert result_of(busy)["resultStatus"] == "U"

        answer = node_a.finish(call, {"extendInfo": '{"memberId":"M-PY-PG"}'})
        assert result_of(answer)["resultStatus"] == "S"
        call.close()

        duplicate = driver.request(NOTIFY, request.body)
        again = send(node_b, duplicate)
        assert isinstance(again, Response), "a decided requestId is answered from the database"
        assert again.body == answer.body
        assert driver.verify_answer(duplicate, again)


def test_bad_connection_strings_raise_config_errors_without_the_password() -> None:
    with pytest.raises(cardbridge.ConfigError) as bad:
        Store.postgres("host=127.0.0.1 password=Sup3rS3cret port=notaport")
    assert bad.value.field == "conninfo"
    assert "Sup3rS3cret" not in str(bad.value)
    with pytest.raises(cardbridge.ConfigError) as clear:
        Store.postgres("host=db.example.com sslmode=disable")
    assert clear.value.field == "conninfo.sslmode"
    with pytest.raises(TypeError):
        Store.postgres(b"host=127.0.0.1")  # type: ignore[arg-type]
