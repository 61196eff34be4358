"""TAO deposits: each user's derived address, and the scan that credits a
transfer to it once its block is final, through the SDK's Client fed
recorded chain answers (``tao_chain_fixture``; no chain is reachable here)."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from bittensor.sp_core import Keypair

from billing import deposits
from billing.models import RAO_PER_TAO, Deposit, DepositAddress, TaoRate
from chat.services import chat_account
from keys.credits import audit_credits
from keys.models import ApiKey, CreditEntry
from tests.billing.tao_chain_fixture import FakeChain
from tests.commands import manage
from tests.factories import UserFactory

SEED = Keypair.generate_mnemonic()
STRANGER = Keypair.create_from_uri("//Alice").ss58_address
SENDER = Keypair.create_from_uri("//Bob").ss58_address
CONFIRMATIONS = 3


@pytest.fixture
def rate(db) -> TaoRate:
    deposits.do_set_seed(SEED)
    return deposits.do_set_rate(credits_per_tao=1000, minimum_tao="0.5", confirmations=CONFIRMATIONS)


@pytest.fixture
def depositor(rate):
    user = UserFactory(email="tao@example.com")
    chat_account(user)
    return user


@pytest.fixture
def chain(rate) -> FakeChain:
    chain = FakeChain(head=500)
    # Scanning starts where the first scan finds the chain.
    TaoRate.objects.filter(pk=1).update(scanned_to=490)
    return chain


def balance(user) -> int:
    return ApiKey.objects.get(pk=chat_account(user).key_id).credits


def scan(chain: FakeChain, **options):
    return deposits.scan_deposits(network="local", substrate=chain, **options)


def test_each_user_gets_an_address_of_their_own_derived_from_the_seed(depositor):
    other = UserFactory()
    mine, theirs = deposits.deposit_address(depositor), deposits.deposit_address(other)
    assert mine.address == Keypair.create_from_uri(f"{SEED}//deposit//{depositor.pk}").ss58_address
    assert theirs.address != mine.address and deposits.deposit_address(depositor) == mine
    assert DepositAddress.objects.count() == 2


def test_no_address_while_deposits_are_off(db):
    assert deposits.deposit_address(UserFactory()) is None
    deposits.do_set_seed(SEED)  # a seed but no rate yet
    assert deposits.deposit_address(UserFactory()) is None
    assert scan(FakeChain()) is None


def test_a_deposit_is_pending_until_confirmed_then_credited_once(depositor, chain):
    address = deposits.deposit_address(depositor).address
    before = balance(depositor)
    chain.transfer(499, SENDER, address, 2 * RAO_PER_TAO)

    first = scan(chain)  # block 499 has 1 confirmation of 3
    deposit = Deposit.objects.get()
    assert (deposit.status, deposit.credits, deposit.amount) == (Deposit.PENDING, 2000, "2 TAO")
    assert (deposit.block_number, deposit.extrinsic_index, deposit.sender) == (499, 1, SENDER)
    assert balance(depositor) == before and first.credited == 0
    assert TaoRate.load().scanned_to == 497  # the blocks after it are read again next time

    chain.advance(2)  # 502: three blocks on top of 499, and finalized
    assert scan(chain).credited == 1
    deposit.refresh_from_db()
    assert deposit.status == Deposit.CREDITED and deposit.credited_at is not None
    assert balance(depositor) == before + 2000
    entry = CreditEntry.objects.get(kind=CreditEntry.DEPOSIT)
    assert (entry.amount, entry.actor, entry.key_id) == (2000, "tao", chat_account(depositor).key_id)
    assert "2 TAO" in entry.reason and "499" in entry.reason

    chain.advance(5)
    assert scan(chain).credited == 0
    assert balance(depositor) == before + 2000 and Deposit.objects.count() == 1
    assert audit_credits() == []


def test_not_credited_before_its_block_is_finalized(depositor, chain):
    address = deposits.deposit_address(depositor).address
    chain.transfer(495, SENDER, address, RAO_PER_TAO)
    chain.advance(10, finalized_lag=20)  # deep enough, but the finality gadget lags
    scan(chain)
    assert Deposit.objects.get().status == Deposit.PENDING
    chain.finalized = chain.head
    scan(chain)
    assert Deposit.objects.get().status == Deposit.CREDITED


def test_a_replayed_scan_credits_nothing_twice(depositor, chain):
    address = deposits.deposit_address(depositor).address
    chain.transfer(492, SENDER, address, RAO_PER_TAO)
    chain.transfer(492, SENDER, address, 3 * RAO_PER_TAO)  # two in one block, each its own deposit
    before = balance(depositor)
    assert scan(chain).credited == 2
    for _ in range(2):
        assert scan(chain, after=480).credited == 0  # `tao scan --from 481`
    assert TaoRate.load().scanned_to == 497  # a rescan doesn't move the mark back
    assert balance(depositor) == before + 4000
    assert Deposit.objects.filter(status=Deposit.CREDITED).count() == 2
    assert CreditEntry.objects.filter(kind=CreditEntry.DEPOSIT).count() == 2
    assert audit_credits() == []


def test_a_deposit_below_the_minimum_is_recorded_not_credited(depositor, chain):
    address = deposits.deposit_address(depositor).address
    before = balance(depositor)
    chain.transfer(491, SENDER, address, RAO_PER_TAO // 4)  # 0.25 TAO, the minimum is 0.5
    scan(chain)
    deposit = Deposit.objects.get()
    assert deposit.status == Deposit.TOO_SMALL and deposit.amount == "0.25 TAO"
    assert balance(depositor) == before and not CreditEntry.objects.filter(kind=CreditEntry.DEPOSIT).exists()


def test_transfers_to_other_addresses_and_failed_transfers_are_ignored(depositor, chain):
    address = deposits.deposit_address(depositor).address
    chain.transfer(493, SENDER, STRANGER, 5 * RAO_PER_TAO)
    chain.transfer(494, SENDER, address, 5 * RAO_PER_TAO, fails=True)
    before = balance(depositor)
    result = scan(chain)
    assert (result.seen, result.credited) == (0, 0)
    assert not Deposit.objects.exists() and balance(depositor) == before


def test_a_pending_deposit_on_a_replaced_block_is_dropped(depositor, chain):
    address = deposits.deposit_address(depositor).address
    chain.transfer(499, SENDER, address, RAO_PER_TAO)
    scan(chain)
    assert Deposit.objects.get().status == Deposit.PENDING
    chain.fork(499)  # the block that carried it lost to another
    chain.advance(5)
    scan(chain)
    assert Deposit.objects.get().status == Deposit.DROPPED
    assert not CreditEntry.objects.filter(kind=CreditEntry.DEPOSIT).exists()


def test_the_first_scan_reads_a_bounded_window_below_the_finalized_block(rate):
    chain = FakeChain(head=10_000)
    result = scan(chain)
    assert result.blocks == deposits.MAX_BLOCKS_PER_SCAN and min(chain.reads) == 10_000 - 100 + 1
    assert TaoRate.load().scanned_to == 10_000 - CONFIRMATIONS


def test_an_unreachable_chain_is_one_error_line_and_moves_nothing(depositor, chain):
    # The configured network ("local", nothing listening): what these machines see of any chain.
    code, _, err = manage("tao", "scan", "--from", "481")
    assert code == 1 and err.startswith("Error: could not read local")
    assert TaoRate.load().scanned_to == 490 and not Deposit.objects.exists()


def test_the_rate_is_set_from_the_command_line_and_bad_values_refused(db):
    code, out, _ = manage("tao", "rate", "-c", "250", "-m", "0.05", "--confirmations", "6")
    rate = TaoRate.load()
    assert code == 0 and (rate.credits_per_tao, rate.minimum_rao, rate.confirmations) == (250, 5 * 10**7, 6)
    assert "0.05 TAO" in out
    for args, error in (
        (["-c", "lots"], "Credits per TAO must be a whole number"),
        (["-m", "0.0000000001"], "at most 9 decimals"),
        (["--confirmations", "0"], "Confirmations must be a whole number from 1"),
    ):
        code, _, err = manage("tao", "rate", *args)
        assert code == 1 and err.startswith("Error: ") and error in err
    assert TaoRate.load().credits_per_tao == 250


def test_the_seed_is_stored_encrypted_and_never_shown(db, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(sys, "stdin", io.StringIO(SEED + "\n"))
    code, out, err = manage("tao", "seed")
    assert code == 0 and "stored" in out
    _, shown, _ = manage("tao", "show")
    assert "stored (encrypted)" in shown
    rate = TaoRate.load()
    assert rate.seed == SEED and SEED.split()[0] not in rate.seed_encrypted
    deposits.do_set_rate(credits_per_tao=10)
    user = UserFactory()
    deposits.deposit_address(user)
    scan(FakeChain(head=50))
    everything = out + err + shown + caplog.text
    # Not even a piece: no two of its words side by side (one word alone may be an
    # ordinary one, like "local" or "final", and the seed is random).
    words = SEED.split()
    assert not any(" ".join(words[i : i + 2]) in " ".join(everything.split()) for i in range(len(words) - 1))
    assert SEED not in everything


def test_a_bad_seed_is_refused_without_echoing_it(db, monkeypatch):
    phrase = "correct horse battery staple not a mnemonic at all"
    monkeypatch.setattr(sys, "stdin", io.StringIO(phrase + "\n"))
    code, out, err = manage("tao", "seed")
    assert code == 1 and "not a valid seed phrase" in err and "horse" not in out + err
    assert not TaoRate.load().has_seed


def test_the_seed_cannot_be_replaced_once_addresses_were_given(depositor):
    deposits.deposit_address(depositor)
    with pytest.raises(ValueError, match="can't be replaced"):
        deposits.do_set_seed(Keypair.generate_mnemonic())
    assert TaoRate.load().seed == SEED


def test_the_billing_page_shows_the_address_its_qr_code_and_the_deposits(client, depositor, chain):
    client.force_login(depositor)
    page = client.get("/app/billing/").text
    address = DepositAddress.objects.get(user=depositor).address
    assert f'<code id="tao-address">{address}</code>' in page and "<svg" in page and "<path" in page
    assert "1 TAO buys 1000 credits" in page and "Deposits from 0.5 TAO" in page and "No TAO deposits yet." in page
    chain.transfer(492, SENDER, address, RAO_PER_TAO)
    chain.transfer(499, SENDER, address, 3 * RAO_PER_TAO // 2)
    scan(chain)
    page = client.get("/app/billing/").text
    assert "1.5 TAO" in page and "Pending" in page and "Credited" in page
    assert "+1000" in page and "TAO deposit 1 TAO at block 492" in page  # in the credit movements


def test_the_page_says_nothing_of_tao_while_deposits_are_off(client, db):
    user = UserFactory()
    client.force_login(user)
    assert "Pay with TAO" not in client.get("/app/billing/").text
    assert not DepositAddress.objects.exists()


def test_operators_set_the_rate_in_the_console_and_read_deposits_there(depositor, chain):
    from django.test import Client

    from tests.endpoint.roles import make_user

    console = Client()
    console.force_login(make_user("root", superuser=True))
    assert console.get("/admin/billing/taorate/").url == "/admin/billing/taorate/1/change/"
    form = console.get("/admin/billing/taorate/1/change/").text
    assert "seed" in form and SEED.split()[0] not in form
    assert 'name="minimum_tao" value="0.5"' in form  # in TAO, as the CLI takes it
    change = "/admin/billing/taorate/1/change/"
    for bad in ({"minimum_tao": "0.0000000001"}, {"minimum_tao": "lots"}, {"confirmations": "0"}):
        answer = console.post(change, {"credits_per_tao": "40", "minimum_tao": "1", "confirmations": "2", **bad})
        assert answer.status_code == 200 and "errornote" in answer.text  # the form again, saying why
    assert TaoRate.load().minimum_rao == RAO_PER_TAO // 2  # nothing changed
    answer = console.post(change, {"credits_per_tao": "40", "minimum_tao": "0.000001", "confirmations": "2"})
    assert answer.status_code == 302
    rate = TaoRate.load()
    assert (rate.credits_per_tao, rate.minimum_rao, rate.confirmations, rate.seed) == (40, 1000, 2, SEED)
    chain.transfer(492, SENDER, deposits.deposit_address(depositor).address, RAO_PER_TAO)
    scan(chain)
    listed = console.get("/admin/billing/deposit/").text
    assert "492" in listed and "Credited" in listed
    deposit = Deposit.objects.get()
    assert console.post(f"/admin/billing/deposit/{deposit.pk}/delete/").status_code == 403


def test_beat_runs_the_scan_and_it_waits_for_a_seed_and_a_rate(db):
    from django.conf import settings

    from billing.tao_chain import ChainUnreachable
    from endpoint.celery import app

    app.loader.import_default_modules()
    task = app.tasks[settings.CELERY_BEAT_SCHEDULE["scan-tao-deposits"]["task"]]
    assert task.name == "billing.scan_tao_deposits" and task() is None  # deposits off: no chain asked
    deposits.do_set_seed(SEED)
    deposits.do_set_rate(credits_per_tao=1)
    with pytest.raises(ChainUnreachable):  # the configured "local" chain: nothing listens here
        task()
    assert TaoRate.load().scanned_to is None
