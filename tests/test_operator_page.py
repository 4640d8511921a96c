"""The operator's page in a real browser: Debian's chromium, driven by Playwright, against a real `cachetune serve` on
loopback with API keys. Checks sent through the API show on the page; "wrong hit" removes the entry; the what-if
slider gives the figures the recent decisions imply; a key without the admin role is refused; the evaluation
report opens with its plots. CACHETUNE_SCREENSHOT=PATH saves a picture of the page there (docs/operator-page.png)."""

import os
import shutil
from pathlib import Path

import httpx
import pytest
import yaml
from servers import CacheService

from cachetune.cache.auth import key_digest

pytestmark = pytest.mark.servers

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ADMIN, PLAIN, OTHER = "admin-key-0123456789abcdef", "plain-key-0123456789abcdef", "beta-key-0123456789abcdef"
STORED = ["How do I reverse a list in Python?", "How do I merge two dicts in Python?", "How do I read a CSV file with pandas?"]
CHECKS = ["How can I reverse a list in python?", "How do I merge two dicts in Python?", "What is the capital of France?"]


@pytest.fixture(scope="module")
def page_service(report, onnx_folder, tmp_path_factory):
    """`cachetune serve` on the evaluated adapter's cache config (its threshold, its report), with three keys."""
    _, output = report
    folder = tmp_path_factory.mktemp("operator")
    config = yaml.safe_load((output / "cache.yaml").read_text())
    config["semantic_cache"] |= {
        "onnx_cache": str(onnx_folder),
        "auth": {"keys": [
            {"sha256": key_digest(ADMIN), "tenant": "acme", "domains": ["*"], "roles": ["admin"]},
            {"sha256": key_digest(PLAIN), "tenant": "acme", "domains": ["*"]},
            {"sha256": key_digest(OTHER), "tenant": "beta", "domains": ["*"]},
        ]},
        "memory": {},
    }  # fmt: skip
    (folder / "cache.yaml").write_text(yaml.safe_dump(config))
    service = CacheService(folder / "cache.yaml")
    yield service
    service.stop()


def post(service, path: str, body: dict, key: str) -> httpx.Response:
    return service.client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM}: Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    with sync_playwright() as playwright:
        args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        browser.close()


def test_the_page_shows_decisions_marks_a_wrong_hit_and_answers_what_if(page_service, browser, tmp_path):
    for prompt in STORED:
        post(page_service, "/v1/cache/store", {"prompt": prompt, "response": f"answer: {prompt}", "domain": "programming"}, PLAIN)
    results = [post(page_service, "/v1/cache/check", {"prompt": p, "domain": "programming"}, PLAIN).json() for p in CHECKS]
    post(page_service, "/v1/cache/check", {"prompt": "Beta's secret question about pandas", "domain": "programming"}, OTHER)
    assert [r["hit"] for r in results[:2]] == [True, True] and results[2]["hit"] is False

    page = browser.new_page()
    page.goto(page_service.url + "/ui")
    page.fill("#key", ADMIN)
    page.click("#key-form button")
    page.wait_for_selector("body[data-loaded=true]")
    decisions = httpx.get(page_service.url + "/ui/api/decisions", headers={"Authorization": f"Bearer {ADMIN}"}).json()["decisions"]
    assert [d["prompt"] for d in decisions] == CHECKS[::-1]  # newest first; beta's check is never shown to acme's key
    assert page.inner_text('[data-testid="checks-programming"]') == "4"  # the domain's count: every tenant's checks
    assert page.locator("#decisions tbody tr").count() == 3 and "Beta's secret" not in page.content()
    assert page.inner_text(f'[data-testid="outcome-{decisions[0]["seq"]}"]') == "miss: threshold"

    hit = next(d for d in decisions if d["outcome"] == "hit" and d["prompt"] == CHECKS[0])
    page.click(f'[data-testid="wrong-{hit["seq"]}"]')
    page.wait_for_selector(f'[data-testid="outcome-{hit["seq"]}"]:has-text("marked wrong")')
    again = post(page_service, "/v1/cache/check", {"prompt": CHECKS[0], "domain": "programming"}, PLAIN).json()
    assert again["hit"] is False  # the entry is gone: the next identical check misses

    page.reload()
    page.wait_for_selector("body[data-loaded=true]")
    decisions = httpx.get(page_service.url + "/ui/api/decisions", headers={"Authorization": f"Bearer {ADMIN}"}).json()["decisions"]
    for threshold in (0.6, 0.95, 1.0):
        page.locator('[data-testid="slider-programming"]').evaluate(
            "(slider, value) => { slider.value = value; slider.dispatchEvent(new Event('input')); }", str(threshold)
        )
        served = [d for d in decisions if d["candidate_similarity"] is not None and d["candidate_similarity"] >= threshold]
        assert page.inner_text('[data-testid="whatif-served-programming"]') == str(len(served)), threshold
        assert page.inner_text('[data-testid="whatif-wrong-programming"]') == str(sum(d["marked_wrong"] for d in served)), threshold
    assert page.inner_text('[data-testid="whatif-decisions-programming"]') == str(len(decisions))
    screenshot = os.environ.get("CACHETUNE_SCREENSHOT")
    page.screenshot(path=screenshot or str(tmp_path / "operator-page.png"), full_page=True)

    with page.expect_popup() as opened:
        page.click('[data-testid="report-programming"]')
    report = opened.value
    report.wait_for_load_state()
    assert "tuned model against its baseline" in report.content()
    sizes = report.eval_on_selector_all("img", "images => images.map(image => image.naturalWidth)")
    assert len(sizes) == 3 and all(width > 100 for width in sizes)  # the plots, drawn


def test_a_key_without_the_admin_role_sees_nothing(page_service, browser):
    for path in ("/ui/api/summary", "/ui/api/decisions"):
        refused = httpx.get(page_service.url + path, headers={"Authorization": f"Bearer {PLAIN}"})
        assert refused.status_code == 403 and "admin role" in refused.json()["detail"]
    assert httpx.get(page_service.url + "/ui/api/summary").status_code == 401
    assert post(page_service, "/ui/api/decisions/1/wrong", {}, PLAIN).status_code == 403
    page = browser.new_page()
    page.goto(page_service.url + "/ui")
    page.fill("#key", PLAIN)
    page.click("#key-form button")
    page.wait_for_selector("#key-error:has-text('admin role')")
    assert page.locator("#decisions tbody tr").count() == 0
