"""BotServer gives the bot's processes a temporary folder of their own and removes it when they stop: Rasa and
TensorFlow write files there (autograph modules, the CRF extractor's model) and never delete them. Fast: a fake
`rasa` executable that serves the health checks stands in for the bot environment."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from harness.bots.reference_bot.server import BotLayout, BotServer, free_port
from harness.errors import BotProcessError

FAKE_RASA = f"""#!{sys.executable}
import http.server, os, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
folder = os.environ["TMPDIR"]
with open(os.path.join(folder, f"leftover-{{port}}.py"), "w") as leftover:
    leftover.write("# what autograph leaves behind")
with open(os.path.join(os.environ["RECORD"], f"tmpdir-{{port}}"), "w") as record:
    record.write(folder)

class Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Healthy).serve_forever()
"""


def _server(tmp_path: Path, venv: Path, action_port: int | None = None) -> BotServer:
    """A BotServer of the fake bot environment `venv`, on free ports unless `action_port` is given."""
    return BotServer(
        model=tmp_path / "model.tar.gz",
        token="t",
        handoff_db=tmp_path / "handoff.sqlite3",
        layout=BotLayout(bot_dir=tmp_path, venv=venv),
        rasa_port=free_port(),
        action_port=action_port or free_port(),
        log_dir=tmp_path / "logs",
        startup_timeout_s=30,
    )


def test_the_bot_processes_temporary_folder_is_removed_when_they_stop(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    rasa = venv / "bin" / "rasa"
    rasa.write_text(FAKE_RASA)
    rasa.chmod(0o755)
    (venv / "bin" / "python").symlink_to(rasa)  # the action server: python -m bankbot.action_server
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("RECORD", str(record))
    server = _server(tmp_path, venv)
    with server:
        folders = {Path(p.read_text()) for p in record.iterdir()}
        assert len(folders) == 1, "both processes share one temporary folder"
        (folder,) = folders
        assert folder.is_dir() and len(list(folder.glob("leftover-*.py"))) == 2
        assert tmp_path not in folder.parents and folder != Path(sys.prefix)
    assert not folder.exists(), "the temporary folder goes with the processes"


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    # Another server answering on the bot's ports passed the readiness checks: "bot ready" with a token that did
    # not work there.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "rasa").write_text("#!/bin/sh\nexit 1\n")
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Sanic's listener does
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = _server(tmp_path, venv, action_port=port)
        with pytest.raises(BotProcessError, match=f"port {port} on 127.0.0.1 is already in use.*--action-port"):
            server.start()
    assert not server.running()
