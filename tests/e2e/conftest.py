"""Page tests sign up and sign in from one loopback address, as the chat tests do:
allauth's per-IP counters start fresh for each."""

from tests.chat.conftest import _fresh_page_limits  # noqa: F401 - an autouse fixture
