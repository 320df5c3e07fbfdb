"""`status`, `review` and `duplicates` as an operator reads them (issue 18), in Indonesian
and English: a stopped daemon is a problem, the configuration in use is named, every
review item says where it came from, when and why, duplicates name the number they repeat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import Daemon, naskahd_cmd, wait_until


def drop_file(d: Daemon, rel: str, data: bytes) -> Path:
    path = d.drop / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def cli(d: Daemon, *args: str, lang: str = "en") -> subprocess.CompletedProcess[str]:
    return d.cli("--lang", lang, *args)


def test_a_stopped_daemon_is_a_problem_with_when_and_how_to_start(daemon_factory) -> None:
    d = daemon_factory()
    d.stop()
    out = cli(d, "status")
    assert out.returncode == 3
    assert "Problems: none" not in out.stdout
    assert "it stopped cleanly at" in out.stdout and "systemctl start naskahd" in out.stdout, out.stdout
    assert f"--config {d.config} run" in out.stdout
    indo = cli(d, "status", lang="id")
    assert "berhenti dengan wajar pada" in indo.stdout and "Tidak ada masalah" not in indo.stdout, indo.stdout
    info = json.loads(cli(d, "status", "--json").stdout)
    assert info["daemon"]["stopped_cleanly"] is True and info["problems"]
    # Killed: it could not record its stop.
    d.start()
    d.kill()
    out = cli(d, "status")
    assert out.returncode == 3
    assert "stopped without shutting down" in out.stdout and "journalctl" in out.stdout, out.stdout
    assert json.loads(cli(d, "status", "--json").stdout)["daemon"]["stopped_cleanly"] is False
    assert "berhenti tanpa penutupan yang wajar" in cli(d, "status", lang="id").stdout


def test_status_names_its_configuration_and_the_embedded_default(tmp_path: Path, daemon_factory) -> None:
    d = daemon_factory()
    out = cli(d, "status")
    assert f"Configuration: {d.config} (found by --config)" in out.stdout, out.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "NASKAHD_CONFIG"}
    if Path("/etc/naskahd/naskahd.toml").exists():
        return  # this machine has a system configuration: the embedded default is not used
    for lang, words in (("en", "the embedded default is in use, rooted at"), ("id", "bawaan tertanam yang dipakai, berakar di")):
        out = subprocess.run(naskahd_cmd("--lang", lang, "status"), cwd=elsewhere, capture_output=True, text=True,
                             env=env, timeout=60)
        assert out.returncode == 3
        assert words in out.stdout and str(elsewhere / "naskahd-data") in out.stdout, out.stdout
    problems = json.loads(subprocess.run(naskahd_cmd("status", "--json"), cwd=elsewhere, capture_output=True,
                                         text=True, env=env, timeout=60).stdout)["problems"]
    assert any("holds no naskahd installation" in p and "--config" in p for p in problems), problems


def test_run_says_loudly_that_it_uses_the_embedded_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NASKAHD_CONFIG"}
    if Path("/etc/naskahd/naskahd.toml").exists():
        return
    proc = subprocess.Popen(naskahd_cmd("--lang", "en", "run", "--log-format", "json"), cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        lines = [proc.stderr.readline() for _ in range(4)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = "".join(lines)
    assert "WARNING: no configuration file was found" in text and "EMBEDDED DEFAULT" in text, text
    assert str(tmp_path / "naskahd-data") in text


def test_review_lists_where_when_and_why_in_the_readers_language(daemon_factory) -> None:
    d = daemon_factory()
    drop_file(d, "lain/stray.pdf", b"no rule for this folder")
    d.wait_event("document.review")
    ev = d.find("document.review")[0]
    assert ev["moved_to"] == "tinjau/stray.pdf"
    items = json.loads(cli(d, "review", "--json").stdout)
    assert len(items) == 1
    item = items[0]
    assert item["name"] == "stray.pdf" and item["from"] == "lain/" and item["moved_at"]
    assert item["reason_code"] == "no_rule" and "no rule matches" in item["reason"]
    text = cli(d, "review", lang="id").stdout
    assert "dari lain/" in text and "tidak ada aturan" in text.lower(), text
    assert "no rule matches" not in text
    # status explains the folder and renders the reason in its reader's language too
    status = cli(d, "status", lang="id").stdout
    assert "naskahd review" in status and "tinjau" in status
    assert "no rule matches" not in status, status


def test_an_exempt_review_item_keeps_its_name_withheld(daemon_factory, tmp_path: Path) -> None:
    d = daemon_factory()
    target = tmp_path / "secret-target.pdf"
    target.write_bytes(b"x")
    link = d.drop / "dikecualikan" / "rahasia negara.pdf"
    link.symlink_to(target)
    d.wait_event("document.review")
    # (status's own review lines for exempt items are issue 15's: tinjau/dikecualikan/)
    out = cli(d, "review").stdout + cli(d, "review", "--json").stdout + cli(d, "review", lang="id").stdout
    assert "rahasia negara" not in out, out
    items = json.loads(cli(d, "review", "--json").stdout)
    assert items[0]["name"] is None and items[0]["exempt"] is True
    assert "symbolic link" in items[0]["reason"] and items[0]["from"] == "dikecualikan/"


def test_duplicates_name_the_number_they_repeat(daemon_factory) -> None:
    d = daemon_factory()
    data = os.urandom(2000)
    drop_file(d, "masuk/first.pdf", data)
    first = d.wait_event("document.registered")
    drop_file(d, "masuk/again.pdf", data)
    dup = d.wait_event("document.duplicate")
    assert dup["moved_to"] == "duplikat/again.pdf"
    items = json.loads(cli(d, "duplicates", "--json").stdout)
    assert items == [{**items[0], "duplicate_of": first["agenda"], "name": "again.pdf", "moved_to": "duplikat/again.pdf"}]
    text = cli(d, "duplicates", lang="id").stdout
    assert f"again.pdf: isinya sama dengan {first['agenda']}" in text, text
    status = cli(d, "status").stdout
    assert "Duplicates set aside: 1" in status and "naskahd duplicates" in status, status


def test_windows_style_folder_names_are_filed(daemon_factory) -> None:
    d = daemon_factory()
    drop_file(d, "Masuk/dari windows.pdf", os.urandom(500))
    drop_file(d, "KELUAR/balasan.pdf", os.urandom(500))
    d.wait_event("document.registered", count=2)
    categories = sorted(doc["category"] for doc in d.documents())
    assert categories == ["inbound", "outbound"]


def test_list_until_header_and_empty_period(daemon_factory) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    d = daemon_factory()
    drop_file(d, "masuk/today.pdf", os.urandom(100))
    d.wait_event("document.registered")
    today = dt.datetime.now(ZoneInfo("Asia/Jakarta")).date()
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    assert len(json.loads(cli(d, "list", "--json", "--until", today.isoformat()).stdout)) == 1
    assert json.loads(cli(d, "list", "--json", "--until", yesterday).stdout) == []
    assert len(json.loads(cli(d, "list", "--json", "--category", "masuk").stdout)) == 1
    assert json.loads(cli(d, "list", "--json", "--category", "keluar").stdout) == []
    text = cli(d, "list").stdout
    assert text.splitlines()[0].split()[:2] == ["Agenda", "Received"], text
    assert "Diterima" in cli(d, "list", lang="id").stdout
    empty = cli(d, "list", "--until", yesterday, lang="id")
    assert empty.returncode == 0 and "Tidak ada naskah pada periode ini." in empty.stdout
    assert "No documents in this period." in cli(d, "list", "--until", yesterday).stdout


def test_catch_up_progress_is_reported() -> None:
    from naskahd.progress import Progress

    lines: list[tuple[str, dict]] = []

    class Log:
        def info(self, event: str, **kw: object) -> None:
            lines.append((event, kw))

    p = Progress(Log(), every=5, backlog=100)
    p.tick(50, 0.0)
    assert lines == []  # ordinary traffic logs nothing
    p.tick(1000, 1.0)
    p.taken(300)
    p.tick(700, 3.0)
    assert [e for e, _ in lines] == ["catchup.started"]
    p.tick(700, 6.5)
    assert lines[-1][0] == "catchup.progress" and lines[-1][1]["taken"] == 300 and lines[-1][1]["pending"] == 700
    p.taken(700)
    p.tick(0, 8.0)
    assert lines[-1][0] == "catchup.done" and lines[-1][1]["taken"] == 1000


def test_pending_is_current_during_a_long_catch_up(daemon_factory) -> None:
    d = daemon_factory(settle=3.0)
    d.stop()
    for i in range(1500):
        (d.drop / "masuk" / f"scan{i:04}.bin").write_bytes(b"x%d" % i)
    d.start(wait=False)
    # While the start-up scan and the settle wait run, status reports the growing backlog.
    seen = wait_until(lambda: (st := json.loads(d.cli("status", "--json").stdout))["daemon"]["running"]
                      and st["pending"] >= 1000 and st["pending"], 60, "pending in status", d)
    assert seen >= 1000
    d.wait_event("catchup.started", timeout=60)
    d.wait_event("catchup.done", timeout=240)
    wait_until(lambda: json.loads(d.cli("status", "--json").stdout)["pending"] == 0, 30, "pending back to 0", d)




def test_console_log_times_are_in_office_time_and_json_in_utc() -> None:
    import io
    from zoneinfo import ZoneInfo

    from naskahd import log

    out = io.StringIO()
    log.setup(json=False, stream=out, timezone=ZoneInfo("Asia/Jayapura"))
    log.get_logger().info("daemon.started")
    assert " WIT " in out.getvalue(), out.getvalue()
    out = io.StringIO()
    log.setup(json=True, stream=out, timezone=ZoneInfo("Asia/Jayapura"))
    log.get_logger().info("daemon.started")
    assert json.loads(out.getvalue())["timestamp"].endswith("Z")


def test_a_warning_does_not_repeat_its_own_words(daemon_factory) -> None:
    d = daemon_factory()  # no recipient: exempt scans wait
    drop_file(d, "dikecualikan/a.pdf", os.urandom(300))
    d.wait_event("document.held")
    wait_until(lambda: d.status()["problems"], 10, "problem shown", d)
    for lang in ("en", "id"):
        (problem,) = [p for p in json.loads(cli(d, "status", "--json", lang=lang).stdout)["problems"]
                      if "age1" in p]
        words = problem.split()
        phrases = [" ".join(words[i:i + 4]) for i in range(len(words) - 3)]
        assert len(phrases) == len(set(phrases)), problem


def test_pyproject_license_is_an_spdx_expression() -> None:
    """setuptools >= 77 prints a deprecation banner for the old table form on every install."""
    import tomllib

    data = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["license"] == "GPL-3.0-or-later"
    assert any(r.startswith("setuptools>=77") for r in data["build-system"]["requires"])


def test_status_counts_the_documents_not_the_agenda_numbers_given(tmp_path: Path) -> None:
    """A restore from a drive that lacks one letter raises the counter past it (numbers are
    never given twice): the documents there are are fewer than the last number."""
    from sqlalchemy import update

    from naskahd.cli.status_cmd import gather
    from naskahd.filing import Filer
    from naskahd.register import open_register
    from test_reconcile import ready, setup
    from naskahd.register import AgendaCounter

    cfg, contents = setup(tmp_path, n=2)
    filer = Filer(cfg, open_register(cfg.database_url))
    filer.file_batch(ready(cfg, list(contents)))
    filer.close()
    with open_register(cfg.database_url).begin() as s:
        s.execute(update(AgendaCounter).where(AgendaCounter.category == "inbound").values(last_number=5))
    assert gather(cfg, open_register(cfg.database_url))["documents"]["inbound"] == 2
