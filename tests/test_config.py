"""Configuration: every refusal names the key, the value and the reason; exit code 78."""

import subprocess
import sys
from pathlib import Path

import pytest

from naskahd import config
from naskahd.errors import EXIT_CONFIG, ConfigError


def load(tmp_path: Path, text: str) -> config.Config:
    p = tmp_path / "naskahd.toml"
    p.write_text(text)
    return config.load(str(p))


def test_embedded_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NASKAHD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "absent.toml")
    cfg = config.load(None)
    assert cfg.embedded and cfg.drop == tmp_path / "naskahd-data" / "drop"
    assert cfg.settle_seconds == 2.0 and cfg.watch_mode == "auto" and str(cfg.timezone) == "Asia/Jakarta"
    assert {"*.tmp", "*.part", "~$*", ".~lock.*", "Thumbs.db", ".DS_Store", "._*", "desktop.ini", "@eaDir"} <= set(cfg.ignore)
    assert [r.category for r in cfg.rules] == ["inbound", "outbound", "exempt"]


def test_env_then_explicit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a = tmp_path / "a.toml"
    a.write_text('[office]\nname = "A"\n')
    b = tmp_path / "b.toml"
    b.write_text('[office]\nname = "B"\n')
    monkeypatch.setenv("NASKAHD_CONFIG", str(a))
    assert config.load(None).office_name == "A"
    assert config.load(str(b)).office_name == "B"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[watch]\nsettle_secs = 2\n", "watch.settle_secs", "unknown key"),
        ("[watch]\nmode = \"fast\"\n", "watch.mode", "must be one of"),
        ("[watch]\nsettle_seconds = -1\n", "watch.settle_seconds", "greater than zero"),
        ("[watch]\nsettle_seconds = \"2\"\n", "watch.settle_seconds", "must be a number such as 2.0"),
        ("[watch]\nsettle_seconds = true\n", "watch.settle_seconds", "must be a number such as"),
        ("[watch]\ncontent_check = \"yes\"\n", "watch.content_check", "must be true or false"),
        ("watch = 3\n", "watch", "must be a section such as [watch]"),
        ("[office]\ntimezone = \"Mars/Olympus\"\n", "office.timezone", "unknown timezone"),
        ("[[rules]]\ncategory = \"secret\"\npath = \"x/*\"\n", "rules[0].category", "must be one of"),
        ("[[rules]]\ncategory = \"inbound\"\n", "rules[0].path", "needs 'path', 'name'"),
        ("[[rules]]\ncategory = \"inbound\"\nname = \"(\"\n", "rules[0].name", "regular expression"),
        ("[paths]\narchive = \"drop/archive\"\n", "paths.archive", "must not be inside paths.drop"),
        ("[paths]\ndrop = \"archive/drop\"\n", "paths.drop", "must not be inside paths.archive"),
        ("[paths]\nstate = \"drop\"\n", "paths.state", "must not be the same folder as paths.drop"),
        ("[bogus]\nx = 1\n", "bogus", "unknown key"),
        ("not toml = = =", "line 1, column 5", "not valid TOML at"),
        ("[watch]\nmode = \"auto\"\n[office\n", "line 3, column", "not valid TOML at"),
    ],
)
def test_invalid_configuration_names_key_value_and_reason(tmp_path: Path, text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    message = info.value.render()
    assert key in message and words in message and str(tmp_path) in message
    assert "(file)" not in message and "= -:" not in message and "type" not in message, message
    assert info.value.exit_code == EXIT_CONFIG == 78


def test_daemon_refuses_to_start_on_a_bad_configuration(tmp_path: Path) -> None:
    p = tmp_path / "naskahd.toml"
    p.write_text("[watch]\nsetle_seconds = 2\n")
    out = subprocess.run([sys.executable, "-m", "naskahd", "--config", str(p), "run"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 78
    assert "watch.setle_seconds" in out.stderr and "unknown key" in out.stderr
    assert not (tmp_path / "state").exists()


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "naskahd", "--config", str(tmp_path / "nope.toml"), "status"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 78 and "nope.toml" in out.stderr and "naskahd init" in out.stderr


def test_init_writes_a_config_that_loads_and_refuses_to_overwrite(tmp_path: Path) -> None:
    root = tmp_path / "office"
    out = subprocess.run([sys.executable, "-m", "naskahd", "init", "--root", str(root)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cfg = config.load(str(root / "naskahd.toml"))
    assert cfg.drop == root / "drop" and cfg.archive == root / "archive" and cfg.state == root / "state"
    for sub in ("drop/masuk", "drop/keluar", "drop/dikecualikan", "archive", "state/register.sqlite3"):
        assert (root / sub).exists(), sub
    again = subprocess.run([sys.executable, "-m", "naskahd", "init", "--root", str(root)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 78 and "already exists" in again.stderr


def test_the_sample_configuration_loads() -> None:
    sample = Path(__file__).resolve().parents[1] / "etc" / "naskahd.toml"
    cfg = config.load(str(sample))
    assert cfg.drop == Path("/srv/naskahd/drop") and cfg.state == Path("/var/lib/naskahd")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC0o5sN8m6CfY9iNHiZbJ4d2zD1y2dBz8Qmvx5aNdYwq kasi@laptop", "this is an SSH key"),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "this is an SSH key"),
        ("age1notavalidkey", "not a valid age public key"),
        ("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", "this is a private key"),
        ("npub1xyz", "must start with age1"),
    ],
)
def test_a_bad_recipient_says_what_it_is(tmp_path: Path, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f'[encryption]\nrecipients = ["{value}"]\n')
    message = info.value.render()
    assert "encryption.recipients[0]" in message and words in message, message
    assert "age1" in message
    assert "QQQQQQQQ" not in message  # a secret key is never echoed


def test_config_messages_in_indonesian(tmp_path: Path) -> None:
    p = tmp_path / "naskahd.toml"
    for text, words in (
        ("[watch]\nsettle_seconds = \"2\"\n", "harus berupa angka seperti 2.0"),
        ('[encryption]\nrecipients = ["ssh-ed25519 AAAA x"]\n', "ini kunci SSH"),
        ("x = = 1\n", "baris 1, kolom 5"),
        ('[paths]\narchive = "drop/archive"\n', "paths.archive"),
    ):
        p.write_text(text)
        out = subprocess.run([sys.executable, "-m", "naskahd", "--lang", "id", "--config", str(p), "status"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 78 and words in out.stderr, out.stderr
        assert "Traceback" not in out.stderr and "bertipe" not in out.stderr
