"""Production dialogs end to end in a real headless Chromium (Debian's package, driven by Playwright; nothing is
downloaded): a window of a hand-built production store is loaded for review, the review app runs as
`harness review serve` on loopback, an analyst reviews the randomly sampled dialogs, and the /kpis page shows the
reviewed KPIs estimated for the window's conversations, labelled with the window and N, with the interval worked
out here by hand (Wilson with finite-population correction)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from review_world import PASSWORD, add_users, review_project, serving
from sqlalchemy.orm import Session
from statsmodels.stats.proportion import proportion_confint
from test_review_browser import CHROMIUM, CHROMIUM_ARGS, pytestmark  # noqa: F401  (skip without Chromium)
from test_review_production_world import ALL, in_sample, production_store, review_config

from harness.records.production import Window
from harness.review.database import connect
from harness.review.dialogs import load_run
from harness.review.production import materialise

RATE, SEED = 0.15, 4
SAMPLED = ["web:fallback", "web:fraud", "web:ok-03"]
"""The sample this seed and rate draw from the store's 20 conversations (checked below with the hash by hand)."""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    paths = review_project(tmp_path)
    config, _ = review_config(tmp_path, rate=RATE, seed=SEED)
    store = production_store(tmp_path)
    folder = materialise(store, Window(), tmp_path / "runs")
    database = f"sqlite:///{tmp_path / 'review.db'}"
    with Session(connect(database)) as session:
        load_run(session, folder.path, config, actor="test")
    add_users(database)
    with serving(tmp_path, database, paths.root) as url:
        yield url, folder.path.name, store.path


def test_analyst_reviews_the_sampled_production_dialogs_and_kpis_show_the_window(
    served: tuple[str, str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, run_id, store = served
    assert [cid for cid in ALL if in_sample(cid, RATE, SEED)] == SAMPLED
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{url}/login")
        page.fill("input[name=username]", "ann")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#whoami")).to_contain_text("ann (analyst)")

        page.check("input[name=sample]")
        page.locator("input[name=sample]").evaluate("box => box.form.submit()")
        expect(page.locator("#queue tbody tr")).to_have_count(len(SAMPLED))
        for cid in SAMPLED:
            page.goto(f"{url}/?sample=1")
            page.locator(f"#queue tbody tr[data-conversation='{cid}'] a").click()
            expect(page.locator("h1")).to_contain_text(cid)
            expect(page.locator("#turn-0 .sent-at")).to_contain_text("2026-11-0")  # when it happened (UTC)
            for attribute in ("understood", "correct_answer", "correct_routing", "resolved"):
                page.check(f"input[name=rating_{attribute}][value=yes]")
            page.check("input[name=rating_tone][value=good]")
            if cid == "web:fraud":  # the fraud report answered with a balance
                page.check("input[name=critical_errors][value=fraud_not_escalated]")
            page.select_option("select[name=correct_outcome]", "self_served")
            page.click("#scorecard button[type=submit]")
            expect(page.locator(".flash")).to_contain_text("failed" if cid == "web:fraud" else "saved")

        page.click("text=Reviewed KPIs")
        page.select_option("select[name=run]", run_id)
        page.click("form button:has-text('Show')")
        window = page.locator("#production-window")
        expect(window.locator("h2")).to_have_text("Production window 2026-11-02..2026-11-04")
        expect(window.locator("#population")).to_have_text(f"N = {len(ALL)}")
        expect(window).to_contain_text(str(store))
        expect(window.locator("#window-coverage")).to_contain_text("3 of the 3 sampled dialog(s) reviewed")
        # 2 of the 3 sampled dialogs free of any critical error, out of N = 20 conversations:
        # n_eff = 3 * 19 / 17, and Wilson's interval at 2/3 on n_eff.
        n_eff = 3 * 19 / 17
        low, high = proportion_confint(2 / 3 * n_eff, n_eff, method="wilson")
        row = window.locator("#kpis-production tr[data-kpi='critical_accuracy.all']")
        expect(row).to_contain_text("66.7%")
        expect(row.locator(".interval")).to_have_text(f"[{100 * low:.1f}, {100 * high:.1f}]")
        page.screenshot(path=str(tmp_path / "production-kpis.png"), full_page=True)
        browser.close()
