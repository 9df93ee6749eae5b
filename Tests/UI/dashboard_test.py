#!/usr/bin/env python3
"""Real-browser test of the Prefork dashboard (headless Chromium through Selenium).

    dashboard_test.py --url http://127.0.0.1:PORT [--token TOKEN] [--screenshots DIR]

Expects a freshly started server on which these jobs were submitted: ok-1 (done), fail-1 (failed,
"simulated failure"), crash-1 (failed, SIGSEGV) and slow-1 (running for about a minute). It enqueues
live-1 itself. Needs Debian's chromium, chromium-driver and python3-selenium; run with /usr/bin/python3.
Exits 0 when every check passes, else prints what failed, saves failure.png and exits 1.
"""
import argparse
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import (ElementClickInterceptedException, NoSuchElementException,
                                        StaleElementReferenceException, WebDriverException)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MARKER = "__preforkNoReloadMarker"


class Failure(Exception):
    pass


class Test:
    def __init__(self, args):
        self.url = args.url.rstrip("/")
        self.token = args.token
        self.shots = args.screenshots
        self.driver = None

    # ---- helpers ------------------------------------------------------------------------
    def log(self, msg):
        print("[dashboard_test] " + msg, flush=True)

    def api(self, method, path, body=None, auth=True):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if auth and self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null"), r.headers
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw or b"null"), e.headers
            except ValueError:
                return e.code, raw.decode(errors="replace"), e.headers

    def job(self, jid):
        status, body, _ = self.api("GET", "/jobs/" + urllib.parse.quote(jid, safe=""))
        return body if status == 200 else None

    def wait(self, what, probe, timeout=20.0, interval=0.2):
        """Polls probe() until it returns a truthy value; probe may also return (ok, observed)."""
        deadline = time.monotonic() + timeout
        observed = None
        while True:
            try:
                res = probe()
                if isinstance(res, tuple):
                    ok, observed = res
                else:
                    ok, observed = res, res
                if ok:
                    return observed if observed is not None else ok
            except (NoSuchElementException, StaleElementReferenceException) as e:
                observed = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            if time.monotonic() >= deadline:
                raise Failure("timed out after %.0f s waiting for %s (last seen: %r)" % (timeout, what, observed))
            time.sleep(interval)

    def find(self, testid, root=None):
        return (root or self.driver).find_element(By.CSS_SELECTOR, '[data-testid="%s"]' % testid)

    def find_all(self, testid, root=None):
        return (root or self.driver).find_elements(By.CSS_SELECTOR, '[data-testid="%s"]' % testid)

    def click(self, element):
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        try:
            element.click()
        except ElementClickInterceptedException:
            time.sleep(0.3)  # an animation or overlay was in the way: one more try
            element.click()

    def shot(self, name):
        if not self.shots:
            return
        path = os.path.join(self.shots, name)
        self.driver.save_screenshot(path)
        self.log("screenshot " + path)

    def job_row(self, jid):
        rows = self.driver.find_elements(By.CSS_SELECTOR, '[data-testid="job-row"]')
        for r in rows:
            if r.get_attribute("data-id") == jid:
                return r
        return None

    def row_state(self, jid):
        r = self.job_row(jid)
        return self.find("job-state", r).text.strip() if r else None

    def jobs_loaded(self):
        foot = self.driver.find_element(By.ID, "jobs-foot").text
        return "Loading" not in foot

    def select_filter(self, state):
        tab = self.find("filter-" + (state or "all"))
        if "is-active" not in (tab.get_attribute("class") or ""):
            self.click(tab)
        self.wait("the %s tab to load" % (state or "all"),
                  lambda: ("is-active" in tab.get_attribute("class") and self.jobs_loaded(), tab.get_attribute("class")))

    def open_job(self, jid, max_pages=40):
        """Shows the tab for the job's current state, pages to its row and opens its detail."""
        rec = self.job(jid)
        if rec is None:
            raise Failure("GET /jobs/%s did not return the job" % jid)
        self.select_filter(rec["state"])
        for _ in range(max_pages):
            row = self.wait("the jobs table to show rows", lambda: (
                self.jobs_loaded() and (self.job_row(jid) or self.find_all("job-row") or
                                        self.driver.find_elements(By.CSS_SELECTOR, "#jobs-body .empty-row")), None), 15)
            row = self.job_row(jid)
            if row:
                self.click(row)
                break
            older = self.find("jobs-older")
            if not older.is_enabled():
                raise Failure("job %s (%s) is not in the jobs table on any page" % (jid, rec["state"]))
            self.click(older)
        else:
            raise Failure("job %s not found in %d pages" % (jid, max_pages))
        detail = self.find("job-detail")
        self.wait("the detail panel of %s" % jid, lambda: (
            detail.is_displayed() and self.find("job-detail-id").text.strip() == jid, self.find("job-detail-id").text))
        return detail

    def close_detail(self):
        self.click(self.find("job-detail-close"))
        self.wait("the detail panel to close", lambda: not self.find("job-detail").is_displayed())

    # ---- the scenario -------------------------------------------------------------------
    def run(self):
        opts = Options()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--window-size=1400,1000", "--disable-gpu",
                  "--disable-dev-shm-usage", "--force-color-profile=srgb", "--hide-scrollbars"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(30)
        d = self.driver

        # the page itself and its security header
        with urllib.request.urlopen(self.url + "/", timeout=10) as r:
            csp = r.headers.get("Content-Security-Policy", "")
            html = r.read().decode(errors="replace")
        if "script-src 'self'" not in csp:
            raise Failure("GET / must send the CSP header (got %r)" % csp)
        if "/ui/app.js" not in html:
            raise Failure("GET / does not look like the dashboard (no /ui/app.js)")

        d.get(self.url + "/")
        d.execute_script("window[arguments[0]] = 'set-at-start';", MARKER)

        # 1. token form (when the server has a token)
        if self.token:
            form = self.wait("the token form", lambda: self.find("token-form").is_displayed())
            inp = self.find("token-input")
            inp.send_keys(self.token)
            self.click(self.find("token-submit"))
            self.wait("the token form to go away", lambda: not self.find("token-form").is_displayed())
            stored = d.execute_script("return sessionStorage.getItem('prefork.token');")
            if stored != self.token:
                raise Failure("token not kept in sessionStorage (found %r)" % stored)
            leaked = d.execute_script(
                "const t = arguments[0]; const out = [];"
                "for (let i = 0; i < localStorage.length; i++) { const k = localStorage.key(i);"
                "  if ((localStorage.getItem(k) || '').includes(t) || k.includes(t)) out.push(k); }"
                "return out;", self.token)
            if leaked:
                raise Failure("token found in localStorage keys %r" % leaked)
            if self.token in d.current_url:
                raise Failure("token appears in the URL")
            self.log("ok: token form accepted the token (sessionStorage only)")
        else:
            if self.find("token-form").is_displayed():
                raise Failure("the token form is shown but no --token was given")

        # 2. workers: every shown pid is the pid from GET /workers
        def workers_match():
            status, body, _ = self.api("GET", "/workers")
            if status != 200:
                return False, "GET /workers -> %s %s" % (status, body)
            want = {str(w["slot"]): ("—" if w["pid"] is None else str(w["pid"])) for w in body["workers"]}
            got = {}
            for row in self.find_all("worker-row"):
                got[row.get_attribute("data-slot")] = self.find("worker-pid", row).text.strip()
            return (bool(want) and got == want), {"page": got, "api": want}
        seen = self.wait("worker rows whose pids equal GET /workers", workers_match, 20)
        self.log("ok: %d worker rows, pids match the API: %s" % (len(seen["api"]), seen["api"]))
        self.wait("the status pill to say running", lambda: (
            self.find("status-pill").get_attribute("data-status") == "running", self.find("status-pill").text), 15)
        self.wait("the tiles to fill", lambda: (self.driver.find_element(By.ID, "tile-workers").text.strip() not in ("", "–"),
                                                self.driver.find_element(By.ID, "tile-workers").text))
        self.wait("the jobs table to list ok-1", lambda: (self.row_state("ok-1") is not None, self.row_state("ok-1")), 15)
        self.shot("01-overview.png")

        # 3. crash-1's detail: the error mentions SIGSEGV and an attempt ended with outcome crash
        self.wait("crash-1 to be failed (API)", lambda: ((self.job("crash-1") or {}).get("state") == "failed",
                                                         (self.job("crash-1") or {}).get("state")), 30)
        self.open_job("crash-1")
        self.wait("the detail error to mention SIGSEGV", lambda: (
            "SIGSEGV" in self.find("job-detail-error").text, self.find("job-detail-error").text))
        outcomes = self.wait("an attempt with outcome crash", lambda: (
            "crash" in [e.text.strip() for e in self.find_all("history-outcome", self.find("job-detail-history"))],
            [e.text.strip() for e in self.find_all("history-outcome", self.find("job-detail-history"))]))
        self.log("ok: crash-1 detail shows SIGSEGV and attempt outcomes %s" % outcomes)
        self.shot("02-crash-detail.png")
        self.close_detail()

        # 4. cancel slow-1 from its detail panel, verified through the API
        self.wait("slow-1 to be running (API)", lambda: ((self.job("slow-1") or {}).get("state") == "running",
                                                         (self.job("slow-1") or {}).get("state")), 30)
        self.open_job("slow-1")
        cancel = self.wait("the Cancel button", lambda: (self.find("cancel-button").is_displayed() and
                                                          self.find("cancel-button").is_enabled() and self.find("cancel-button")))
        self.click(cancel)
        msg = self.wait("the cancel outcome message", lambda: (
            self.find("job-detail-message").is_displayed() and self.find("job-detail-message").text.strip() != "",
            self.find("job-detail-message").text))
        if self.find("job-detail-message").get_attribute("data-outcome") != "ok":
            raise Failure("cancel reported an error: %s" % msg)
        self.wait("slow-1 to be canceled (API)", lambda: ((self.job("slow-1") or {}).get("state") == "canceled",
                                                          (self.job("slow-1") or {}).get("state")), 10)
        self.wait("the detail to show canceled", lambda: (
            self.find("job-detail-state").text.strip() == "canceled", self.find("job-detail-state").text), 10)
        self.wait("the Retry button to be offered", lambda: self.find("retry-button").is_displayed(), 10)
        self.log("ok: canceled slow-1 (%s); the API says canceled" % msg)
        self.shot("03-canceled.png")
        self.close_detail()

        # 5. a job submitted now shows up live, ending as done, without any reload
        self.select_filter("")
        self.wait("the jobs table (All) to show rows", lambda: bool(self.find_all("job-row")), 15)
        if self.job("live-1") is not None:
            raise Failure("live-1 already exists before the test enqueued it: use a freshly started server")
        status, body, _ = self.api("POST", "/enqueue", {"id": "live-1", "payload": "@ok"})
        if status not in (200, 202):
            raise Failure("POST /enqueue live-1 -> %s %s" % (status, body))
        self.wait("live-1 in the jobs table as done", lambda: (self.row_state("live-1") == "done",
                                                                self.row_state("live-1")), 30)
        ids = [r.get_attribute("data-id") for r in self.find_all("job-row")]
        older = [i for i in ("ok-1", "fail-1", "crash-1", "slow-1") if i in ids]
        if older and ids.index("live-1") > ids.index(older[0]):
            raise Failure("live-1 is listed below older jobs: %r" % ids[:10])
        navs = d.execute_script("return performance.getEntriesByType('navigation').length;")
        marker = d.execute_script("return window[arguments[0]];", MARKER)
        if navs != 1 or marker != "set-at-start":
            raise Failure("the page reloaded (navigation entries %r, marker %r)" % (navs, marker))
        self.log("ok: live-1 appeared above the older jobs (row %d) and became done without a reload" % (ids.index("live-1") + 1))
        self.shot("04-live-update.png")

        # 6. no console errors (CSP violations, exceptions, failed loads)
        self.check_console()
        self.log("ok: no console errors")

    def check_console(self):
        try:
            entries = self.driver.get_log("browser")
        except WebDriverException as e:
            raise Failure("cannot read the browser console: %s" % e)
        errors = []
        for e in entries:
            if e.get("level") != "SEVERE":
                continue
            msg = e.get("message", "")
            # With a token the page discovers auth by getting 401 from GET /workers; Chrome logs that
            # response as a network error. That single expected probe is not a fault.
            if self.token and e.get("source") == "network" and "/workers" in msg and " 401" in msg:
                continue
            errors.append(msg)
        if errors:
            raise Failure("console errors:\n  " + "\n  ".join(errors))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="base URL of the running server, e.g. http://127.0.0.1:8080")
    ap.add_argument("--token", help="bearer token, when the server has one")
    ap.add_argument("--screenshots", help="directory for the screenshots")
    args = ap.parse_args()
    if args.screenshots:
        os.makedirs(args.screenshots, exist_ok=True)
    t = Test(args)
    code = 0
    try:
        t.run()
        t.log("PASS")
    except Exception as e:  # noqa: BLE001 - report anything as a test failure
        code = 1
        if isinstance(e, Failure):
            t.log("FAIL: %s" % e)
        else:
            t.log("FAIL: unexpected %s: %s" % (type(e).__name__, e))
            traceback.print_exc()
        if t.driver is not None:
            try:
                path = os.path.join(args.screenshots or ".", "failure.png")
                t.driver.save_screenshot(path)
                t.log("screenshot " + path)
                for entry in t.driver.get_log("browser"):
                    t.log("console %s: %s" % (entry.get("level"), entry.get("message")))
            except Exception:  # noqa: BLE001
                pass
    finally:
        if t.driver is not None:
            try:
                t.driver.quit()
            except Exception:  # noqa: BLE001
                pass
    sys.exit(code)


if __name__ == "__main__":
    main()
