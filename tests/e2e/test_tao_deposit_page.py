"""In Chromium: a user finds their own TAO deposit address and its QR code on
the billing page, and sees a deposit pending, then credited, as the chain
scan (fed recorded chain answers) goes; the page fits a phone and a laptop."""

from __future__ import annotations

import pytest
from bittensor.sp_core import Keypair
from playwright.sync_api import expect

from billing import deposits
from billing.models import RAO_PER_TAO, DepositAddress
from chat.services import chat_account
from keys.credits import audit_credits
from tests.billing.tao_chain_fixture import FakeChain
from tests.chat.browser_session import assert_fits_width, screenshot, sign_in, verified_user

pytestmark = pytest.mark.django_db(transaction=True)
GRANT = 10


@pytest.fixture
def tao_on(settings):
    settings.CHAT_SIGNUP_CREDITS = GRANT
    deposits.do_set_seed(Keypair.generate_mnemonic())
    deposits.do_set_rate(credits_per_tao=500, minimum_tao="0.1", confirmations=2)


def test_the_deposit_address_its_qr_code_and_deposits_on_the_billing_page(page, live_server_url, tao_on):
    user = verified_user("tao-page@example.com")
    chat_account(user)
    sign_in(page, live_server_url, user)
    page.goto(live_server_url + "/app/billing/")
    section = page.get_by_role("region", name="Pay with TAO")
    address = DepositAddress.objects.get(user=user).address
    expect(section.locator("#tao-address")).to_have_text(address)
    qr = section.get_by_label("QR code of your deposit address").locator("svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box["width"] >= 120 and abs(box["width"] - box["height"]) < 1  # big and square enough to scan
    expect(section).to_contain_text("1 TAO buys 500 credits")
    expect(section).to_contain_text("No TAO deposits yet.")

    chain = FakeChain(head=300)
    sender = Keypair.create_from_uri("//Bob").ss58_address
    chain.transfer(299, sender, address, 2 * RAO_PER_TAO)
    deposits.scan_deposits(network="local", substrate=chain)
    page.reload()
    row = page.locator("table.deposits tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("2 TAO")
    expect(row).to_contain_text("Pending")
    expect(page.locator("#balance")).to_have_text(str(GRANT))

    chain.advance(2)
    deposits.scan_deposits(network="local", substrate=chain)
    page.reload()
    expect(row).to_contain_text("Credited")
    expect(row).to_contain_text("1000")
    expect(page.locator("#balance")).to_have_text(str(GRANT + 1000))
    expect(page.locator("table.movements")).to_contain_text("+1000")
    screenshot(page, "billing-tao")
    for width in (390, 1280, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits_width(page)
        expect(qr).to_be_visible()
        expect(page.locator("#tao-address")).to_be_visible()
    assert audit_credits() == []
