"""A password hasher for tests: the project's PBKDF2 with one iteration.

Test users cost a quarter of a second each with the real iteration count.
The hash names its own count, so servers that tests start with the real
settings still check these passwords (and upgrade them on sign-in).
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1
