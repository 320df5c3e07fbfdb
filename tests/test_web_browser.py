"""The web page in a real browser: Debian's chromium, headless, driven through selenium and
the system chromedriver (no driver download), against the real ``naskahd web`` process
and the real daemon (issue 21). Also saves the screenshots of docs/ (``make screenshots``
sets ``NASKAHD_SCREENSHOTS`` to the folder)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import require, require_tool, wait_until
from webharness import PASSWORD, REVIEW_NAME, Office, Web, office

pytestmark = [pytest.mark.system, pytest.mark.slow]
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Office, Web, object]]:
    chromium = require_tool("chromium")
    require(CHROMEDRIVER.exists(), "chromium-driver is not installed (/usr/bin/chromedriver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    o = office(tmp_path_factory.mktemp("web"))
    web = Web(o)
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.implicitly_wait(5)
    try:
        yield o, web, driver
    finally:
        driver.quit()
        web.stop()
        o.daemon.stop()


def sign_in(driver, web: Web, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(web.url + "/login")
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "signin").click()
    wait_until(lambda: driver.find_elements(By.ID, "logout"), 10, f"{name} signed in")


def sign_out(driver) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "logout").click()
    wait_until(lambda: driver.find_elements(By.ID, "signin"), 10, "signed out")


def test_the_dashboard_runs_its_script_under_the_strict_policy_and_is_saved(place) -> None:
    from selenium.webdriver.common.by import By

    o, web, driver = place
    sign_in(driver, web, "viewer")
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-refreshing") == "30"  # refresh.js ran
    health = driver.find_element(By.ID, "health").text
    assert "naskahd berjalan" in health
    counts = driver.find_element(By.ID, "counts").text
    assert "surat masuk" in counts and "3" in counts
    assert REVIEW_NAME in driver.find_element(By.ID, "review-items").text
    violations = [e for e in driver.get_log("browser") if "Content Security Policy" in e.get("message", "")]
    assert not violations, violations
    folder = Path(os.environ.get("NASKAHD_SCREENSHOTS") or o.root)
    driver.save_screenshot(str(folder / "web-dashboard.png"))
    driver.get(web.url + "/register")
    driver.save_screenshot(str(folder / "web-register.png"))
    for shot in ("web-dashboard.png", "web-register.png"):
        assert (folder / shot).stat().st_size > 10_000, shot
    sign_out(driver)


def test_the_kasi_reviews_a_report_and_the_kabid_validates_it(place) -> None:
    from selenium.webdriver.common.by import By

    o, web, driver = place
    sign_in(driver, web, "operator")
    driver.get(web.url + "/reports")
    driver.find_element(By.ID, "g-go").click()
    assert "Laporan sudah dibuat" in driver.find_element(By.ID, "done").text
    row_id = driver.find_element(By.CSS_SELECTOR, "#reports tbody tr").get_attribute("id")
    sign_out(driver)

    sign_in(driver, web, "kasi")
    driver.get(web.url + "/reports")
    row = driver.find_element(By.ID, row_id)
    assert not row.find_elements(By.CLASS_NAME, "do-validate")  # not a Kasi's to give
    row.find_element(By.CLASS_NAME, "note").send_keys("Sesuai dengan arsip")
    row.find_element(By.CLASS_NAME, "do-review").click()
    assert "Pemeriksaan sudah dicatat" in driver.find_element(By.ID, "done").text
    assert "Budi Santoso, S.Kom" in driver.find_element(By.ID, row_id).text
    sign_out(driver)

    sign_in(driver, web, "kabid")
    driver.get(web.url + "/reports")
    row = driver.find_element(By.ID, row_id)
    row.find_element(By.CLASS_NAME, "note").send_keys("Disahkan")
    row.find_element(By.CLASS_NAME, "do-validate").click()
    text = driver.find_element(By.ID, row_id).text
    assert "Dra. Siti Rahma" in text and "Budi Santoso, S.Kom" in text
    sign_out(driver)
    import json

    listed = json.loads(o.cli("report", "list", "--json").stdout)
    report = next(r for r in listed if f"report-{r['id']}" == row_id)
    assert report["reviewed_by"] == "Budi Santoso, S.Kom" and report["validated_by"] == "Dra. Siti Rahma"


def _gone(element: object) -> bool:
    """Is ``element`` from a page the browser has left (a new page has loaded)?"""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        element.is_enabled()  # type: ignore[attr-defined]
    except StaleElementReferenceException:
        return True
    return False


def test_the_operator_fills_in_a_letters_details_and_finds_it_by_its_subject(place) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    o, web, driver = place
    sign_in(driver, web, "operator")
    driver.get(web.url + "/register")
    driver.find_element(By.LINK_TEXT, o.agendas["Nota Dinas Kepala Bidang.pdf"]).click()
    driver.find_element(By.ID, "f-nomor").send_keys("800/412/Diskominfo-2026")
    driver.find_element(By.ID, "f-asal").send_keys("Sekretariat Daerah")
    driver.find_element(By.ID, "f-perihal").send_keys("Pengadaan perangkat persandian")
    Select(driver.find_element(By.ID, "f-sifat")).select_by_visible_text("segera")
    driver.find_element(By.ID, "f-save").click()
    assert "Data surat sudah disimpan" in driver.find_element(By.ID, "saved").text
    driver.get(web.url + "/register")
    driver.find_element(By.ID, "q-perihal").send_keys("perangkat persandian")
    before = driver.find_element(By.ID, "documents")
    driver.find_element(By.ID, "q-go").click()
    # The click starts a page load: until it is done the unfiltered list is still there.
    wait_until(lambda: _gone(before), 10, "the search's page")
    rows = driver.find_elements(By.CSS_SELECTOR, "#documents tbody tr")
    assert len(rows) == 1
    assert o.agendas["Nota Dinas Kepala Bidang.pdf"] in rows[0].text and "800/412/Diskominfo-2026" in rows[0].text
    assert "1 naskah ditemukan" in driver.find_element(By.ID, "total").text
    sign_out(driver)


def test_the_operator_moves_a_review_item_and_the_running_daemon_files_it(place) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    o, web, driver = place
    sign_in(driver, web, "operator")
    driver.get(web.url + "/review")
    row = next(r for r in driver.find_elements(By.CSS_SELECTOR, "#review-items tbody tr") if REVIEW_NAME in r.text)
    Select(row.find_element(By.CLASS_NAME, "move-category")).select_by_value("inbound")
    row.find_element(By.CLASS_NAME, "move").click()
    assert "masuk/" in driver.find_element(By.ID, "done").text
    event = o.daemon.wait_event("document.registered", path=f"masuk/{REVIEW_NAME}", timeout=30)
    assert event["category"] == "inbound"
    assert not (o.daemon.drop / "tinjau" / REVIEW_NAME).exists()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        driver.get(web.url + "/register?text=" + "tanpa folder")
        if event["agenda"] in driver.find_element(By.ID, "documents").text:
            break
        time.sleep(0.3)
    assert event["agenda"] in driver.find_element(By.ID, "documents").text
    sign_out(driver)
