"""The password policy of review accounts and the password check that takes as long for a name that does not
exist as for one that does.

Policy: NIST SP 800-63B-4 (2025), section 3.1.1.2: a length floor, no composition rules, and a check against
commonly used, expected or compromised values, here zxcvbn's estimate of guesses with the user name and this
app's words as context.
"""

from __future__ import annotations

import secrets
import threading
from functools import lru_cache

from werkzeug.security import check_password_hash, generate_password_hash

MIN_PASSWORD = 15
"""Shortest password accepted. NIST SP 800-63B-4 (2025, section 3.1.1.2) requires at least 15 characters for a
password that is the only factor, as it is here (8 only where a second factor follows): length is what makes a
password hard to guess, and a passphrase of a few words is easy to remember."""
MAX_PASSWORD = 256
"""Longest password accepted (NIST asks to allow at least 64)."""
MIN_STRENGTH = 3
"""Lowest zxcvbn score accepted (0-4; 3: "safely unguessable", about 10^8 guesses or more, whatever the length)."""
CONTEXT_WORDS = ("review", "harness", "bank", "banking", "qa", "bot", "analyst", "lead", "password")
"""Words an attacker of this app tries first; with the user name they are zxcvbn's user inputs."""


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash of a random password, made the way account passwords are: checking a password against it costs as
    much as checking a real account's, so an unknown user name takes as long as a known one."""
    return generate_password_hash(secrets.token_urlsafe(24))


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches `stored_hash`; with no hash (unknown or inactive account), False after checking
    against `dummy_hash()`. Exactly one hash check either way."""
    if stored_hash is None:
        check_password_hash(dummy_hash(), password)
        return False
    return check_password_hash(stored_hash, password)


_zxcvbn_lock = threading.Lock()
"""zxcvbn keeps the user inputs of a call in a module-level dictionary: one call at a time."""


def password_problems(password: str, username: str) -> list[str]:
    """What makes `password` too weak for the account `username` (empty if nothing): shorter than MIN_PASSWORD,
    longer than MAX_PASSWORD, the user name itself, or guessable by zxcvbn (common passwords, repeats, sequences,
    keyboard patterns, dictionary words, dates, the user name and CONTEXT_WORDS) with a score below MIN_STRENGTH.
    Each problem says how to choose a better one."""
    from zxcvbn import zxcvbn

    advice = "choose a passphrase of four or more random words, or let a password manager make one"
    if len(password) < MIN_PASSWORD:
        return [f"password: at least {MIN_PASSWORD} characters (this one has {len(password)}); {advice}"]
    if len(password) > MAX_PASSWORD:
        return [f"password: at most {MAX_PASSWORD} characters (this one has {len(password)})"]
    if not password.strip():
        return [f"password: only spaces; {advice}"]
    if username and password.strip().casefold() == username.casefold():
        return [f"password: it is the user name; {advice}"]
    with _zxcvbn_lock:
        # zxcvbn refuses more than 72 characters; a strong start makes the whole strong
        verdict = zxcvbn(password[:72], user_inputs=[username, *CONTEXT_WORDS])
    if verdict["score"] >= MIN_STRENGTH:
        return []
    feedback = verdict["feedback"]
    why = (feedback["warning"] or "It follows a pattern that is easy to guess.").rstrip(".") + "."
    sentences = [why, *feedback["suggestions"], f"Or {advice}."]
    return [
        f"password: too easy to guess (strength {verdict['score']} of 4, at least {MIN_STRENGTH}): "
        + " ".join(sentences)
    ]
