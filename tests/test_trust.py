"""Trust: tenants bound to API keys, invalidation over HTTP, an embedded store that survives kill -9, junk bodies,
and a short soak of concurrent clients (benchmarks/soak.py runs the long one). Auth and junk run in process; the
process itself (`cachetune serve`: loopback, kill -9, the soak) runs as one."""

import io
import json
import logging
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from servers import CacheService

from cachetune.cache.auth import key_digest
from cachetune.cache_config import load_config

ACME, BETA = "acme-secret-key-0123456789", "beta-secret-key-9876543210"
QUESTION = "How do I reverse a list in Python?"
REWORDED = "How can I reverse a list in python?"


def write_config(folder: Path, **cache) -> Path:
    domains = {"coding": {"similarity_threshold": 0.85}, "support": {"similarity_threshold": 0.85}}
    path = folder / "cache.yaml"
    path.write_text(yaml.safe_dump({"semantic_cache": {"domains": domains, **cache}}))
    return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory, serve_app, onnx_folder):
    folder = tmp_path_factory.mktemp("secured")
    keys = [
        {"sha256": key_digest(ACME), "tenant": "acme", "domains": ["coding"]},
        {"sha256": key_digest(BETA), "tenant": "beta", "domains": ["*"]},
    ]
    (folder / "keys.yaml").write_text(yaml.safe_dump(keys[1:]))  # one key in the config, one in a separate file
    config = load_config(write_config(folder, auth={"keys": keys[:1], "keys_file": "keys.yaml"}, onnx_cache=str(onnx_folder)))
    with caplog_of("cachetune") as log, serve_app(config) as client:
        client.client, client.log = client, log
        yield client


@contextmanager
def caplog_of(name: str):
    """Everything the `name` logger (and the root) writes while the block runs, as text."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)


def post(service, path: str, body: dict, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return service.client.post(path, json=body, headers=headers)


def test_the_tenant_comes_from_the_key_and_keys_are_checked(secured):
    assert post(secured, "/v1/cache/check", {"prompt": QUESTION, "domain": "coding"}).status_code == 401
    wrong = post(secured, "/v1/cache/check", {"prompt": QUESTION, "domain": "coding"}, key="not-a-key")
    assert wrong.status_code == 401 and "not-a-key" not in wrong.text and "invalid API key" in wrong.text
    assert post(secured, "/v1/cache/check", {"prompt": QUESTION, "domain": "support"}, key=ACME).status_code == 403
    assert post(secured, "/v1/cache/check", {"prompt": QUESTION, "domain": "coding", "tenant": "beta"}, key=ACME).status_code == 403
    stored = post(secured, "/v1/cache/store", {"prompt": QUESTION, "response": "acme's answer", "domain": "coding"}, key=ACME)
    assert stored.status_code == 200
    assert post(secured, "/v1/cache/check", {"prompt": REWORDED, "domain": "coding"}, key=ACME).json()["response"] == "acme's answer"
    assert post(secured, "/v1/cache/check", {"prompt": REWORDED, "domain": "coding"}, key=BETA).json()["hit"] is False
    assert post(secured, "/v1/cache/check", {"prompt": REWORDED, "domain": "coding", "tenant": "acme"}, key=BETA).status_code == 403
    log = secured.log.getvalue()
    assert ACME not in log and BETA not in log and "not-a-key" not in log


def test_invalidation_over_http_is_authenticated_and_scoped_to_the_key(secured):
    post(secured, "/v1/cache/store", {"prompt": "How do I merge two dicts?", "response": "use |", "domain": "coding"}, key=ACME)
    post(secured, "/v1/cache/store", {"prompt": "How do I merge two dicts?", "response": "beta's", "domain": "coding"}, key=BETA)
    assert post(secured, "/v1/cache/invalidate", {"domain": "coding", "prompt": "merge two dicts in python"}).status_code == 401
    assert post(secured, "/v1/cache/invalidate", {"domain": "coding", "prompt": "How to merge two dicts?"}, key=ACME).json() == {
        "deleted": 1
    }
    assert post(secured, "/v1/cache/check", {"prompt": "How do I merge two dicts?", "domain": "coding"}, key=ACME).json()["hit"] is False
    assert (
        post(secured, "/v1/cache/check", {"prompt": "How do I merge two dicts?", "domain": "coding"}, key=BETA).json()["response"]
        == "beta's"
    )
    both = post(secured, "/v1/cache/invalidate", {"domain": "coding", "all": True, "ids": [1]}, key=BETA)
    assert both.status_code == 422 and "exactly one of ids, prompt or all" in both.text
    assert post(secured, "/v1/cache/invalidate", {"domain": "coding", "all": True}, key=BETA).json()["deleted"] >= 1


@pytest.mark.servers  # `cachetune serve` as a process
def test_without_auth_the_service_stays_on_loopback(tmp_path, onnx_folder):
    config = write_config(tmp_path, onnx_cache=str(onnx_folder))
    cachetune = Path(sys.executable).with_name("cachetune")
    refused = subprocess.run(
        [str(cachetune), "serve", "--config", str(config), "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1 and "no semantic_cache.auth block: refusing to listen on 0.0.0.0" in refused.stderr
    service = CacheService(config)
    assert "no authentication" in service.log.read_text() and "listening on 127.0.0.1 only" in service.log.read_text()
    service.stop()


def acknowledged_stream(service: CacheService, seconds: float) -> list[tuple[float, str]]:
    """Store distinct prompts as fast as the service takes them; (acknowledgement time, prompt) of each 200."""
    acknowledged = []
    started = time.time()
    number = 0
    while time.time() - started < seconds:
        prompt = f"question number {number} about topic {number * 7919 % 104729}"
        if post(service, "/v1/cache/store", {"prompt": prompt, "response": f"answer {number}", "domain": "coding"}).status_code == 200:
            acknowledged.append((time.time(), prompt))
        number += 1
    return acknowledged


@pytest.mark.servers  # `cachetune serve` as a process
@pytest.mark.parametrize("fsync, lost_seconds", [("always", 0.0), ("everysec", 1.0)])
def test_the_embedded_store_keeps_acknowledged_stores_through_kill_9(tmp_path, fsync, lost_seconds, onnx_folder):
    config = write_config(tmp_path, memory={"persist_path": "cache.npz", "fsync": fsync}, onnx_cache=str(onnx_folder))
    service = CacheService(config)
    acknowledged = acknowledged_stream(service, 4.0)
    service.kill()  # SIGKILL mid-stream: no shutdown, no snapshot
    killed = time.time()
    assert (tmp_path / "cache.npz.log").stat().st_size > 0 and not (tmp_path / "cache.npz").exists()
    service.start()
    durable = [prompt for at, prompt in acknowledged if at <= killed - lost_seconds]
    assert len(durable) > 20
    found = [post(service, "/v1/cache/check", {"prompt": prompt, "domain": "coding"}).json() for prompt in durable]
    missing = [prompt for prompt, result in zip(durable, found) if not result["hit"] or result["prompt"] != prompt]
    assert not missing, f"{len(missing)} acknowledged stores lost, e.g. {missing[:3]}"
    service.stop()


@pytest.mark.servers  # `cachetune serve` as a process
def test_a_torn_last_log_line_is_dropped_with_a_warning(tmp_path, onnx_folder):
    config = write_config(tmp_path, memory={"persist_path": "cache.npz", "fsync": "always"}, onnx_cache=str(onnx_folder))
    service = CacheService(config)
    assert post(service, "/v1/cache/store", {"prompt": QUESTION, "response": "kept", "domain": "coding"}).status_code == 200
    service.kill()
    with (tmp_path / "cache.npz.log").open("ab") as log:
        log.write(b'{"op": "add", "ns": "coding", "entry": {"id": 9, "ten')  # a write cut short by the crash
    service.start()
    assert post(service, "/v1/cache/check", {"prompt": REWORDED, "domain": "coding"}).json()["response"] == "kept"
    assert "dropping a record cut short" in service.log.read_text()
    service.stop()


@pytest.mark.servers  # `cachetune serve` as a process
def test_a_short_soak_has_no_server_error_and_no_cross_tenant_hit(tmp_path, onnx_folder):
    from traffic import soak

    service = CacheService(write_config(tmp_path, onnx_cache=str(onnx_folder)))
    result = soak(service.url, seconds=12, clients=16, domains=["coding", "support"], tenants=4)
    service.stop()
    assert result["requests"] > 200 and result["server_errors"] == 0 and result["cross_tenant_hits"] == 0
    assert result["hits"] > 0 and result["wrong_answers"] == 0


def test_junk_bodies_headers_and_unicode_never_get_a_server_error(make_cache):
    from fastapi.testclient import TestClient
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from cachetune.cache.service import create_app

    cache = make_cache({"coding": {"similarity_threshold": 0.85}}, limits={"max_body_bytes": 20_000})
    client = TestClient(create_app(cache), raise_server_exceptions=False)
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=60)
    values = st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12
    )
    fields = st.sampled_from(["prompt", "response", "domain", "tenant", "ttl", "metadata", "ids", "all", "min_similarity", "x"])
    bodies = st.dictionaries(fields, values | st.sampled_from(["coding", "How do I sort a list?", 1.5, -1, [1, 2]]), max_size=6)
    # Near-valid requests too, so the encoder, the store and the invalidation paths see arbitrary unicode and numbers.
    near_valid = st.fixed_dictionaries(
        {"prompt": st.text(min_size=1, max_size=300), "domain": st.sampled_from(["coding", "nope"])},
        optional={"response": st.text(max_size=100), "tenant": st.text(max_size=30) | st.none(), "ttl": st.floats() | st.integers(),
                  "metadata": values, "ids": st.lists(st.integers(), max_size=3), "min_similarity": st.floats(), "all": st.booleans()},
    )  # fmt: skip

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        path=st.sampled_from(["/v1/cache/check", "/v1/cache/store", "/v1/cache/invalidate"]),
        body=near_valid | bodies | values,
        raw=st.binary(max_size=200),
        use_raw=st.booleans(),
        header=st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]), max_size=40),
    )
    def never_a_server_error(path, body, raw, use_raw, header):
        headers = {"Authorization": header.encode("utf-8"), "Content-Type": "application/json"}  # any bytes in a header
        content = raw if use_raw else json.dumps(body).encode()
        response = client.post(path, content=content, headers=headers)
        assert response.status_code < 500, (path, body, response.text)
        if response.status_code >= 400:
            assert response.json()["detail"]  # every refusal says why

    never_a_server_error()
