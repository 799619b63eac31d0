"""The chat page in a real headless Chromium (Debian's, driven by Playwright) against the real gateway.

A publisher signs in with their token, types a deploy request, sees the streamed proposal, clicks
Confirm and sees the DeploymentTask linked, with the Conversation's correlation ID on the page. A
screenshot of the end state is kept under tests/artifacts/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright, expect

from controller.api.labels import CORRELATION_LABEL
from tests.fixtures.stack import Stack
from tests.gateway.conftest import Served

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TIMEOUT_MS = 30_000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def test_a_publisher_deploys_from_the_page_and_sees_the_task_linked(
    browser: Browser, served: Served, stack: Stack
) -> None:
    page = await browser.new_page()
    refusals: list[str] = []
    page.on(
        "console", lambda message: refusals.append(message.text) if "Content Security Policy" in message.text else None
    )
    await page.goto(served.url + "/")
    await page.fill("#token", served.tokens["dev-publisher"])
    await page.click("#signin button[type=submit]")
    await expect(page.locator("#whoami")).to_have_text("dev-publisher · publisher", timeout=TIMEOUT_MS)
    await page.fill("#text", "deploy web 1.4.2 to ring 0")
    await page.click("#send")
    await expect(page.locator("#pending")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.locator("#pending-summary")).to_contain_text("deploy web 1.4.2 to ring", timeout=TIMEOUT_MS)
    await expect(page.locator("#transcript li.assistant").last).to_contain_text("I can deploy web 1.4.2")
    await page.click("#confirm")
    link = page.locator("#resources a.resource")
    await expect(link).to_contain_text("DeploymentTask", timeout=TIMEOUT_MS)
    await expect(page.locator("#transcript li.assistant").last).to_contain_text(
        "Created DeploymentTask", timeout=TIMEOUT_MS
    )
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "chat-deploy-confirmed.png"), full_page=True)
    kind, namespace_name = (await link.inner_text()).split(" ", 1)
    namespace, name = namespace_name.split("/")
    task: dict[str, Any] = stack.get("deploymenttasks", name, namespace)
    stack.custom.patch_namespaced_custom_object(
        "ringpilot.dev", "v1alpha1", namespace, "deploymenttasks", name, {"spec": {"cancel": True}}
    )
    assert kind == "DeploymentTask" and task["spec"]["requestedBy"] == "dev-publisher"
    assert await page.locator("#correlation").inner_text() == task["metadata"]["labels"][CORRELATION_LABEL]
    assert refusals == []  # the page needs nothing the policy forbids
    await page.close()


async def test_model_text_is_shown_as_text_never_as_markup(browser: Browser, served: Served) -> None:
    page = await browser.new_page()
    await page.goto(served.url + "/")
    await page.fill("#token", served.tokens["dev-viewer"])
    await page.click("#signin button[type=submit]")
    await expect(page.locator("#whoami")).to_contain_text("dev-viewer", timeout=TIMEOUT_MS)
    await page.fill("#text", "<img src=x onerror=alert(1)> deploy web")
    await page.click("#send")
    first = page.locator("#transcript li.user").first
    await expect(first).to_have_text("<img src=x onerror=alert(1)> deploy web", timeout=TIMEOUT_MS)
    await expect(page.locator("#transcript li.assistant").first).to_be_visible(timeout=TIMEOUT_MS)
    assert await page.locator("#transcript img").count() == 0
    await page.close()
