"""SSRF: every server-side fetch goes through lib.trust.fetch; private targets are refused before a request is sent,
after a redirect, for a name that resolves to loopback, and on the connected peer (DNS rebinding)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.history.ledger import Ledger
from lib.storage.files import FileMedia
from lib.tasks.follow import archive_row
from lib.trust import fetch
from lib.trust.fetch import FetchRefused
from lib.trust.urls import host_of, link_target, playable_url
from tests.security.conftest import Listener, run


def test_a_redirect_from_an_allowed_origin_to_another_loopback_port_is_refused(listener: Listener) -> None:
    hop = Listener(redirect_to=f"{listener.origin}/internal")
    try:
        with pytest.raises(FetchRefused, match="private, loopback"):
            fetch.open_url(f"{hop.origin}/video.mp4", allow_private=(hop.origin,))
        assert hop.requests == ["/video.mp4"]  # the allowed origin was asked once…
        assert listener.requests == []  # …and the private address it pointed at never was
    finally:
        hop.stop()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::ffff:127.0.0.1]", "127.1", "0.0.0.0"])
def test_loopback_names_and_spellings_are_refused_before_connecting(host: str, listener: Listener) -> None:
    url = f"http://{host}:{listener.port}/v.mp4"
    with pytest.raises(FetchRefused):
        fetch.check_url(url)
    with pytest.raises(FetchRefused):
        fetch.fetch_bytes(url, max_bytes=1000)
    assert listener.requests == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x", "http://[fd00::1]/x",
                                 "file:///etc/passwd", "gopher://127.0.0.1/x", "http://user:pw@example.com/x"])
def test_metadata_private_and_non_http_targets_are_named_refusals(url: str) -> None:
    with pytest.raises(FetchRefused) as info:
        fetch.check_url(url)
    assert str(info.value)  # a sentence, not a stack trace


def test_dns_rebinding_is_caught_on_the_connected_peer(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    """The name check passes (as if DNS answered a public address), the socket lands on loopback: refused."""
    monkeypatch.setattr(fetch, "check_public_host", lambda host, port=None: None)
    with pytest.raises(FetchRefused, match="private, loopback"):
        fetch.open_url(f"http://localhost:{listener.port}/rebind.mp4")
    session = fetch.guarded_session(allow_private=False)
    with pytest.raises(Exception) as info:  # the bare session refuses too (requests wraps the refusal)
        session.get(f"{listener.origin}/direct", timeout=5)
    assert "private, loopback" in str(info.value)
    assert listener.requests == []


def test_sandbox_mode_saves_nothing_from_an_imported_loopback_url(listener: Listener, sandbox, tmp_path: Path) -> None:
    """What History's "Save video locally" does for an imported row: only the sandbox's own origin may be private."""
    ledger = Ledger.in_dir(tmp_path / "data", fsync=False)
    row = ledger.append(run(task_id="imported-ssrf", result_url=f"{listener.origin}/v.mp4"))
    new, err = archive_row(ledger, FileMedia(tmp_path / "data"), row, (row.result_url,),
                           allow_private=(sandbox.base_url,))
    assert err is not None and "private, loopback" in err.user_message()
    assert new == row and not (tmp_path / "data" / "videos").exists()
    assert listener.requests == []


@pytest.mark.parametrize("url", ["http://**bold**_x_/v.mp4", "http://<b>/v.mp4", "http://~~s~~/v.mp4",
                                 "javascript:alert(1)", "data:text/html,<b>", "file:///etc/passwd",
                                 "http://127.0.0.1 /x", "https://tempfile.aiquickdraw.com\n/x.mp4"])
def test_links_never_carry_markdown_or_a_script_in_their_host(url: str) -> None:
    """A link button's label names the host: a host must be a plain host name, or there is no link."""
    assert link_target(url) is None and host_of(url) == "" and playable_url(url) is None


@pytest.mark.parametrize(("url", "playable"), [
    ("https://tempfile.aiquickdraw.com/r/v.mp4", True), ("http://tempfile.aiquickdraw.com/r/v.mp4", False),
    ("https://127.0.0.1:9/v.mp4", False), ("https://tempfile.aiquickdraw.com.evil.example/v.mp4", False),
])
def test_only_kie_media_hosts_play_in_the_browser(url: str, playable: bool) -> None:
    assert (playable_url(url) is not None) is playable
    assert link_target(url) is not None  # still a plain link naming its host
