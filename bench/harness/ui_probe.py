"""B11's browser: signs in to the web UI in Debian's Chromium (Selenium
over chromedriver, both Debian packages) and reads the browser's own
navigation and resource timing for the pages asked for. Run with Debian's
/usr/bin/python3 (python3-selenium); prints one JSON document.

    /usr/bin/python3 ui_probe.py URL TOKEN RUNS PATH...

For every PATH: RUNS loads with the browser's cache disabled ("cold": what
a first visit fetches; clearing the cache between loads instead made
Chromium stall up to 1.5 s on its own disk cache, with any server) and RUNS
with it on ("warm"). Each load is a fresh
navigation; its time is the navigation entry's loadEventEnd (request sent
to the page, its stylesheet, script and images loaded), and its weight is
what crossed the network: the navigation's and every resource's
transferSize (headers and body)."""

import json
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

TIMING = """
const nav = performance.getEntriesByType('navigation')[0];
const res = performance.getEntriesByType('resource');
return {
  url: nav.name,
  status: nav.responseStatus || 0,
  ttfb_ms: nav.responseStart,
  response_end_ms: nav.responseEnd,
  dom_content_loaded_ms: nav.domContentLoadedEventEnd,
  load_ms: nav.loadEventEnd,
  html_bytes: nav.transferSize,
  html_body_bytes: nav.encodedBodySize,
  resources: res.map(r => ({name: r.name, bytes: r.transferSize, body: r.encodedBodySize,
                            ms: r.responseEnd - r.startTime})),
  cards: document.querySelectorAll('.grid li, table.list tbody tr').length,
};
"""


def main() -> None:
    url, token, runs, paths = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="b11-chromium-")
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,900", f"--user-data-dir={profile}"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    out = {"browser": driver.capabilities.get("browserVersion", "?"), "pages": []}
    try:
        driver.get(url + "/ui/sign-in")
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".bar"))
        driver.execute_cdp_cmd("Network.enable", {})
        for path in paths:
            page = {"path": path, "cold": [], "warm": []}
            for mode in ("cold", "warm"):
                driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": mode == "cold"})
                driver.get(url + path)  # warms the cache for "warm"; not counted
                for _ in range(runs):
                    driver.get(url + path)
                    WebDriverWait(driver, 30).until(
                        lambda d: d.execute_script(
                            "const n = performance.getEntriesByType('navigation')[0];"
                            "return !!n && n.loadEventEnd > 0"))
                    page[mode].append(driver.execute_script(TIMING))
            out["pages"].append(page)
    finally:
        driver.quit()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
