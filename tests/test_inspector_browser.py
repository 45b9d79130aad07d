"""The memory browser page in a real headless Chromium (Debian's chromium + chromedriver),
driven by selenium against the inspector served on loopback."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from inspector_helpers import TOKEN, running_inspector, seed, summarizing_responder
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from honeychat.testing.pytest_plugin import BotFactory

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT = 20.0


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A fresh headless Chromium with its own profile directory."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            pytest.fail(f"{binary} is missing: apt-get install -y chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="honeychat-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: WebDriver, condition: Callable[[Any], Any]) -> Any:
    return WebDriverWait(driver, WAIT).until(condition)


def drive(driver: WebDriver, base_url: str, screenshot: Path) -> dict[str, Any]:
    """Everything a person does on the page; runs in a worker thread (selenium blocks)."""
    seen: dict[str, Any] = {}
    driver.get(base_url + "/")
    status = driver.find_element(By.ID, "status")
    wait_for(driver, lambda d: "token" in status.text)  # no token yet: an invitation
    seen["without_token"] = (status.text, status.get_attribute("class"))
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
    wait_for(driver, lambda d: "Connected" in status.text)
    seen["stored_token"] = driver.execute_script(
        "return sessionStorage.getItem('honeychat-inspector-token')"
    )

    entries = driver.find_elements(By.CSS_SELECTOR, "#conversations button")
    seen["conversations"] = [e.text.split("\n")[0] for e in entries]  # in the order shown
    driver.find_element(By.ID, "filter").send_keys("CAR")
    seen["filtered"] = [
        e.text.split("\n")[0]
        for e in driver.find_elements(By.CSS_SELECTOR, "#conversations button")
    ]
    driver.find_element(By.ID, "filter").clear()
    driver.execute_script("document.getElementById('filter').dispatchEvent(new Event('input'))")
    entries = driver.find_elements(By.CSS_SELECTOR, "#conversations button")
    next(e for e in entries if e.text.startswith("alice")).click()
    wait_for(
        driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#timeline li:not(.empty)")) == 2
    )
    seen["timeline"] = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#timeline li")]
    seen["messages"] = len(driver.find_elements(By.CSS_SELECTOR, "#messages li:not(.empty)"))
    why = driver.find_elements(By.CSS_SELECTOR, "#messages li.assistant details.trail")
    seen["trails"] = len(why)
    why[-1].find_element(By.TAG_NAME, "summary").click()
    seen["trail"] = why[-1].text

    driver.find_element(By.ID, "query").send_keys("Where does my sister live?")
    driver.find_element(By.CSS_SELECTOR, "#search-form button").click()
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#results li.result"))
    results = driver.find_elements(By.CSS_SELECTOR, "#results li.result")
    seen["results"] = [r.text for r in results]
    seen["scores"] = [float(r.find_element(By.CLASS_NAME, "score").text) for r in results]
    driver.save_screenshot(str(screenshot))

    # A phone-sized window: everything wraps, nothing scrolls sideways.
    driver.set_window_size(420, 900)
    wait_for(driver, lambda d: d.execute_script("return window.innerWidth") <= 420)
    seen["narrow"] = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    driver.save_screenshot(str(screenshot.with_name(screenshot.stem + "-420px.png")))
    driver.set_window_size(1280, 900)

    driver.find_element(By.ID, "clear").click()
    dialog = wait_for(driver, ec.visibility_of_element_located((By.ID, "confirm")))
    seen["dialog"] = dialog.text
    dialog.find_element(By.CSS_SELECTOR, "button[value=cancel]").click()
    wait_for(driver, ec.invisibility_of_element_located((By.ID, "confirm")))
    seen["after_cancel"] = len(driver.find_elements(By.CSS_SELECTOR, "#timeline li:not(.empty)"))

    driver.find_element(By.ID, "clear").click()
    wait_for(driver, ec.element_to_be_clickable((By.ID, "confirm-yes"))).click()
    wait_for(driver, lambda d: "Cleared" in status.text)
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline li.empty"))
    seen["after_clear"] = driver.find_element(By.ID, "timeline").text
    seen["messages_after_clear"] = driver.find_element(By.ID, "messages").text
    driver.save_screenshot(str(screenshot.with_name(screenshot.stem + "-cleared.png")))
    return seen


async def test_load_search_and_clear_in_a_real_browser(
    bot_factory: BotFactory, browser: WebDriver
) -> None:
    bot_factory.llm.responder = summarizing_responder
    bot = await bot_factory(summary_window=2, hot_buffer_size=4, inspector_token=TOKEN)
    key = await seed(bot, turns=5)
    for user in ("dave", "bob", "carol"):
        await seed(bot, user=user, turns=1)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "inspector-page.png"
    async with running_inspector(bot) as url:
        seen = await asyncio.wait_for(asyncio.to_thread(drive, browser, url, screenshot), 120)

    text, css_class = seen["without_token"]
    assert "Paste the inspector's token" in text and "error" not in css_class
    assert seen["stored_token"] == TOKEN
    assert seen["conversations"] == ["alice · luna", "bob · luna", "carol · luna", "dave · luna"]
    assert seen["filtered"] == ["carol · luna"]
    scroll_width, inner_width = seen["narrow"]
    assert inner_width <= 420 and scroll_width <= inner_width, seen["narrow"]
    assert "messages 1\N{EN DASH}4" in seen["timeline"][0] and "Priya" in seen["timeline"][0]
    assert seen["messages"] == 4
    assert seen["trails"] == 2, "each reply in the buffer has its 'why?'"
    # Which memory lines the last reply saw depends on when the background summary landed;
    # their content is checked in test_provenance_trail.py.
    assert "Why did it say that?" in seen["trail"] and "recent messages #6, #7, #8" in seen["trail"]
    assert "Priya lives in Lisbon" in seen["results"][0]
    assert seen["scores"] == sorted(seen["scores"], reverse=True)
    assert "cannot be undone" in seen["dialog"]
    assert seen["after_cancel"] == 2, "cancel keeps everything"
    assert seen["after_clear"] == "No summaries yet."
    assert seen["messages_after_clear"] == "The buffer is empty."
    assert bot.memory is not None and bot.memory.cold is not None
    assert await bot.memory.cold.all(key.id) == []
    assert screenshot.stat().st_size > 10_000
