"""Settings resolution: session key, environment, secrets; the key never shows in repr."""

from __future__ import annotations

from pathlib import Path

from lib.common.settings import DEFAULT_API_BASE, DEFAULT_UPLOAD_BASE, load_settings


def test_no_key_means_sandbox_with_defaults() -> None:
    s = load_settings({}, None, environ={})
    assert s.sandbox
    assert (s.api_base, s.upload_base, s.data_dir) == (DEFAULT_API_BASE, DEFAULT_UPLOAD_BASE, Path("./data"))


def test_session_key_wins_then_environment_then_secrets() -> None:
    env = {"KIE_API_KEY": "env-key", "KIE_API_BASE": "http://x:1/", "KLING_STUDIO_DATA": "/tmp/k"}
    assert load_settings({"KIE_API_KEY": "sec"}, "typed", environ=env).key_source == "session"
    s = load_settings({"KIE_API_KEY": "sec"}, "", environ=env)
    assert (s.api_key, s.key_source, s.api_base, s.data_dir) == ("env-key", "environment", "http://x:1", Path("/tmp/k"))
    assert load_settings({"KIE_API_KEY": "sec"}, None, environ={}).key_source == "secrets"


def test_blank_key_is_no_key() -> None:
    assert load_settings({}, "   ", environ={"KIE_API_KEY": " "}).sandbox


def test_key_not_in_repr() -> None:
    assert "super-secret" not in repr(load_settings({}, "super-secret", environ={}))
