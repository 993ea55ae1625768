"""End to end in a real headless Chromium (Debian's package, driven by Playwright; nothing is downloaded): the
review app runs as `harness review serve` on loopback; an analyst logs in, opens a flagged dialog, records a
critical error and a corrected intent; the lead exports, and the correction lands in intents/ and the dialog in
eval_sets/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from review_world import FRAUD_MASKED, PASSWORD, add_users, review_project, review_run, serving
from sqlalchemy.orm import Session

from harness.review.config import load_review_config
from harness.review.database import connect
from harness.review.dialogs import load_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# `make test` installs Chromium (scripts/setup_system.sh); under CI its absence is a failure, not a skip.
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="needs Debian's chromium (scripts/setup_system.sh installs it)",
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    paths = review_project(tmp_path)
    database = f"sqlite:///{tmp_path / 'review.db'}"
    with Session(connect(database)) as session:
        load_run(session, review_run(tmp_path), load_review_config(), actor="test")
    add_users(database)
    with serving(tmp_path, database, paths.root) as url:
        yield url, paths.root


def test_analyst_reviews_a_flagged_dialog_and_the_lead_exports_it(served: tuple[str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, root = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()

        page.goto(f"{url}/")
        expect(page).to_have_url(f"{url}/login?next=%2F")
        page.fill("input[name=username]", "ann")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#whoami")).to_contain_text("ann (analyst)")

        first = page.locator("#queue tbody tr").first
        expect(first).to_have_attribute("data-conversation", "demo-fraud")
        expect(first).to_contain_text("missed_escalation")
        first.locator("a").click()
        expect(page.locator("#turn-0 .customer")).to_have_text(FRAUD_MASKED)
        expect(page.locator("#turn-0 .decision")).to_contain_text("check_balance")

        for attribute in ("understood", "correct_answer", "correct_routing", "resolved"):
            page.check(f"input[name=rating_{attribute}][value=no]")
        page.check("input[name=rating_tone][value=acceptable]")
        page.check("input[name=critical_errors][value=fraud_not_escalated]")
        page.select_option("select[name=intent_0]", "report_fraud")
        page.select_option("select[name=correct_outcome]", "escalated:fraud")
        page.fill("textarea[name=note]", "customer disowned a payment; call back on 07700 900123")
        page.click("#scorecard button[type=submit]")
        expect(page.locator(".flash")).to_contain_text("failed (business-critical)")
        expect(page.locator("textarea[name=note]")).to_have_value(
            "customer disowned a payment; call back on [phone number]"
        )
        page.click("header button[type=submit]")  # log out

        page.fill("input[name=username]", "lea")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.click("text=Exports")
        expect(page.locator("#pending-corrections")).to_contain_text(f"{FRAUD_MASKED} → report_fraud")
        expect(page.locator("#pending-regressions")).to_contain_text("fraud_not_escalated")
        page.click("text=Export corrections to intents/")
        expect(page.locator("#export-result")).to_contain_text("Exported 1 item(s) to intents/")
        expect(page.locator("#export-result")).to_contain_text("intents/escalation.yml")
        page.click("text=Export critical dialogs to eval_sets/")
        expect(page.locator("#export-result")).to_contain_text("qa-demo-fraud-r")
        page.screenshot(path=str(tmp_path / "exports.png"), full_page=True)
        page.click("text=Audit")
        expect(page.locator("#audit")).to_contain_text("export.eval_sets")
        expect(page.locator("#audit")).to_contain_text("review.create")
        browser.close()

    assert FRAUD_MASKED in (root / "intents" / "escalation.yml").read_text()
    assert "demo-fraud" in (root / "intents" / "provenance.csv").read_text()
    regression = (root / "eval_sets" / "qa_regressions.yml").read_text()
    assert "fraud_not_escalated" not in regression  # the description is written, not the code name
    assert "A fraud report did not reach the fraud queue at once" in regression


def test_lead_assigns_a_calibration_and_reads_the_report(served: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, _ = served

    def log_in(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.goto(f"{url}/login")
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#whoami")).to_contain_text(name)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        log_in(page, "ann")
        page.goto(f"{url}/calibration")
        expect(page.locator("h1")).to_have_text("Not allowed")  # an analyst cannot calibrate
        page.click("header button[type=submit]")

        log_in(page, "lea")
        page.click("text=Calibration")
        page.fill("input[name=dialogs]", "1")
        page.check("#assign label:has-text('ann') input")
        page.check("#assign label:has-text('bob') input")
        page.click("#assign button[type=submit]")
        expect(page.locator(".flash")).to_contain_text("2 assignment(s) added")
        page.click("header button[type=submit]")

        for name, tone, errors in (("ann", "good", ["fraud_not_escalated"]), ("bob", "poor", [])):
            log_in(page, name)
            first = page.locator("#queue tbody tr").first
            expect(first).to_contain_text("assigned")
            first.locator("a").click()
            for attribute in ("understood", "correct_answer", "correct_routing", "resolved"):
                page.check(f"input[name=rating_{attribute}][value=no]")
            page.check(f"input[name=rating_tone][value={tone}]")
            for error in errors:
                page.check(f"input[name=critical_errors][value={error}]")
            page.select_option("select[name=correct_outcome]", "escalated:fraud")
            page.click("#scorecard button[type=submit]")
            expect(page.locator(".flash")).to_contain_text("saved")
            page.click("header button[type=submit]")

        log_in(page, "lea")
        page.goto(f"{url}/dialogs/1")
        page.locator("#reviews tr", has_text="ann").locator("button").click()  # ann's review is the reference
        page.click("text=Calibration")
        expect(page.locator("#agreement tr[data-item=understood]")).to_contain_text("100.0%")
        expect(page.locator("#agreement tr[data-item=tone]")).to_contain_text("0.0%")
        expect(page.locator("#agreement tr[data-item='critical:business']")).to_contain_text("0.0%")
        expect(page.locator("#most-disagreed")).to_contain_text("critical:business")
        expect(page.locator("#deviations")).to_contain_text("bob")
        expect(page.locator("#deviations tr", has_text="bob")).to_contain_text("critical:business 1/1")
        browser.close()


def log_in(page, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page.goto(f"{url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#whoami")).to_contain_text(name)


def fill_scorecard(page, *, tone: str, note: str, error: str | None = None) -> None:  # type: ignore[no-untyped-def]
    for attribute in ("understood", "correct_answer", "correct_routing", "resolved"):
        page.check(f"input[name=rating_{attribute}][value=no]")
    page.check(f"input[name=rating_tone][value={tone}]")
    if error:
        page.check(f"input[name=critical_errors][value={error}]")
    page.select_option("select[name=intent_0]", "report_fraud")
    page.select_option("select[name=correct_outcome]", "escalated:fraud")
    page.fill("textarea[name=note]", note)


def saved_notes(served_root: Path) -> list[str]:
    from sqlalchemy import select

    from harness.review.store import Review

    database = f"sqlite:///{served_root.parent / 'review.db'}"
    with Session(connect(database)) as session:
        return [r.note for r in session.scalars(select(Review).order_by(Review.id))]


def test_two_tabs_saving_one_review_get_a_conflict_showing_both_versions(served: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, root = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        tabs = browser.new_context()  # one browser, one cookie jar: two tabs of the same analyst
        first, second = tabs.new_page(), tabs.new_page()
        log_in(first, url, "ann")
        for tab in (first, second):
            tab.goto(f"{url}/dialogs/1")
        fill_scorecard(first, tone="good", note="saved from the first tab")
        fill_scorecard(second, tone="poor", note="typed in the second tab", error="fraud_not_escalated")
        first.click("#scorecard button[type=submit]")
        expect(first.locator(".flash")).to_contain_text("saved")

        second.click("#scorecard button[type=submit]")
        conflict = second.locator("#conflict")
        expect(conflict).to_contain_text("Not saved")
        expect(conflict.locator("#saved-version")).to_contain_text("saved from the first tab")
        expect(conflict).to_contain_text("version 1, by ann")
        expect(second.locator("textarea[name=note]")).to_have_value("typed in the second tab")
        expect(second.locator("input[name=rating_tone][value=poor]")).to_be_checked()
        expect(second.locator("input[name=critical_errors][value=fraud_not_escalated]")).to_be_checked()
        assert saved_notes(root) == ["saved from the first tab"]

        second.click("#scorecard button[type=submit]")  # deliberately replace the saved version
        expect(second.locator(".flash")).to_contain_text("failed (business-critical)")
        first.reload()
        expect(first.locator("textarea[name=note]")).to_have_value("typed in the second tab")
        browser.close()
    assert saved_notes(root) == ["typed in the second tab"]


def test_a_relogin_keeps_what_the_analyst_typed(served: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, root = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        tabs = browser.new_context()
        work, other = tabs.new_page(), tabs.new_page()
        log_in(work, url, "ann")
        work.goto(f"{url}/dialogs/1")
        note = "an hour of judgement\nwith a second line"
        fill_scorecard(work, tone="acceptable", note=note, error="fraud_not_escalated")

        other.goto(f"{url}/")
        other.click("header button[type=submit]")  # log out in another tab
        expect(other.locator("h1")).to_have_text("Log in")

        work.click("#scorecard button[type=submit]")
        expect(work.locator("#carried-input")).to_be_visible()
        assert saved_notes(root) == []
        work.fill("input[name=username]", "ann")
        work.fill("input[name=password]", PASSWORD)
        work.click("button[type=submit]")

        expect(work.locator("h1")).to_contain_text("demo-fraud")
        expect(work.locator("main")).to_contain_text("not saved yet")
        expect(work.locator("textarea[name=note]")).to_have_value(note)
        expect(work.locator("input[name=rating_tone][value=acceptable]")).to_be_checked()
        expect(work.locator("input[name=critical_errors][value=fraud_not_escalated]")).to_be_checked()
        expect(work.locator("select[name=intent_0]")).to_have_value("report_fraud")
        assert saved_notes(root) == []

        work.click("#scorecard button[type=submit]")
        expect(work.locator(".flash")).to_contain_text("failed (business-critical)")
        browser.close()
    assert saved_notes(root) == [note]
