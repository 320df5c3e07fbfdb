"""The review folder and the duplicates (letters/triage.py) with the real daemon: a review
item moved into a category is filed by the running daemon through the normal filing path;
an exempt one only ever goes back to dikecualikan/; a duplicate marked as seen stays on
disk and no longer needs anyone; no exempt name ever appears in what is returned."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from naskahd import audit, config
from naskahd.errors import LetterError
from naskahd.filing.keys import ExemptKeys
from naskahd.letters import index, search, triage
from naskahd.register import open_register

from conftest import Daemon, naskahd_cmd, require_tool, wait_until, write_config

pytestmark = pytest.mark.system
MARKER = "MARKER-RAHASIA-9c1d"  # in an exempt letter's name: must never be returned or printed


@pytest.fixture
def recipient(tmp_path: Path) -> str:
    out = subprocess.run([require_tool("age-keygen")], capture_output=True, text=True, check=True).stdout
    return next(line.split(": ")[1] for line in out.splitlines() if line.startswith("# public key"))


def events(cfg: config.Config, name: str) -> list[dict]:
    with open_register(cfg.database_url, create=False)() as s:
        return [audit.as_dict(e) for e in audit.events(s) if e.event == name]


def test_review_items_are_moved_into_a_category_and_filed_by_the_running_daemon(daemon_factory, recipient) -> None:
    d: Daemon = daemon_factory(recipients=[recipient], incomplete_after=0.5)
    cfg = config.load(str(d.config))
    secret = f"Rencana {MARKER}.pdf"
    (d.drop / "lain.pdf").write_bytes(b"ordinary scan, no rule for its folder")
    (d.drop / "dikecualikan" / secret).write_bytes(b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n")  # cut: never complete
    d.wait_event("document.review", count=2)
    items = triage.items(cfg)
    assert MARKER not in json.dumps(items)
    (ordinary,) = [i for i in items if not i["exempt"]]
    (exempt,) = [i for i in items if i["exempt"]]
    assert ordinary["name"] == "lain.pdf" and ordinary["from"] == "./" and ordinary["reason_code"] == "no_rule"
    assert exempt["name"] is None and exempt["from"] == "dikecualikan/" and exempt["may_go_to"] == ["exempt"]
    assert exempt["reason_code"] == "still_incomplete" and exempt["id"] and exempt["id"] != ordinary["id"]

    # An exempt item goes back to dikecualikan/ only: refused, and nothing moves.
    for category in ("inbound", "keluar"):
        with pytest.raises(LetterError, match="dikecualikan") as err:
            triage.move(cfg, exempt, category, by="Operator")
        assert MARKER not in str(err.value) and err.value.exit_code == 2
    assert (d.drop / "tinjau" / "dikecualikan" / secret).exists()

    moved = triage.move(cfg, ordinary["id"], "keluar", by="Operator")
    assert moved == {"id": ordinary["id"], "category": "outbound", "moved_to": "keluar/lain.pdf"}
    wait_until(lambda: any(x["category"] == "outbound" for x in d.documents()), 30, "filed by the daemon", d)
    assert not (d.drop / "tinjau" / "lain.pdf").exists() and not (d.drop / "keluar" / "lain.pdf").exists()
    (doc,) = d.documents()
    assert doc["original_name"] == "lain.pdf" and doc["category"] == "outbound"
    with open_register(cfg.database_url, create=False)() as s:  # filing indexed it for the register's search
        assert index.watermark(s) == 1
        assert [i["agenda"] for i in search.search(s, search.Query(text="lain")).items] == [doc["agenda"]]
    with pytest.raises(LetterError, match="no longer"):
        triage.move(cfg, ordinary["id"], "keluar", by="Operator")

    # The person fixed the exempt scan: back into dikecualikan/, filed encrypted.
    (d.drop / "tinjau" / "dikecualikan" / secret).write_bytes(b"the complete classified letter")
    assert triage.move(cfg, exempt, "dikecualikan", by="Operator") == {
        "id": exempt["id"], "category": "exempt", "moved_to": "dikecualikan/"}
    wait_until(lambda: any(x["category"] == "exempt" for x in d.documents()), 30, "exempt filed", d)
    assert triage.items(cfg) == []
    recorded = events(cfg, "review.moved")
    assert [(e["actor"], e["details"]["to"], e["details"]["exempt"]) for e in recorded] == [
        ("Operator", "outbound", False), ("Operator", "exempt", True)]
    assert MARKER not in json.dumps(recorded) and MARKER not in d.log_text()
    assert list((d.drop / ".naskahd-hold").rglob("*.pdf")) == []


def test_a_duplicate_marked_as_seen_stays_on_disk_and_no_longer_needs_anyone(daemon_factory, recipient) -> None:
    d: Daemon = daemon_factory(recipients=[recipient])
    cfg = config.load(str(d.config))
    (d.drop / "masuk" / "asli.pdf").write_bytes(b"an ordinary letter")
    (d.drop / "dikecualikan" / f"{MARKER}.pdf").write_bytes(b"a classified letter")
    d.wait_event("document.registered", count=2)
    (d.drop / "masuk" / "salinan.pdf").write_bytes(b"an ordinary letter")
    (d.drop / "dikecualikan" / f"lagi {MARKER}.pdf").write_bytes(b"a classified letter")
    d.wait_event("document.duplicate", count=2)
    items = triage.items(cfg)
    assert MARKER not in json.dumps(items)
    by_exempt = {i["exempt"]: i for i in items}
    agendas = {x["category"]: x["agenda"] for x in d.documents()}
    assert by_exempt[False]["name"] == "salinan.pdf" and by_exempt[False]["duplicate_of"] == agendas["inbound"]
    assert by_exempt[True]["name"] is None and by_exempt[True]["duplicate_of"] == agendas["exempt"]  # found by content
    assert all(i["kind"] == "duplicate" and i["needs_person"] and not i["seen"] for i in items)
    status = json.loads(subprocess.run(naskahd_cmd("--config", str(d.config), "status", "--json"), capture_output=True,
                                       text=True).stdout)
    assert (status["duplicates"], status["duplicates_unseen"]) == (2, 2)
    with pytest.raises(LetterError, match="seen"):
        triage.move(cfg, by_exempt[False], "inbound", by="Operator")
    for item in items:
        seen = triage.mark_seen(cfg, item, by="Operator")
        assert seen["seen_by"] == "Operator" and seen["duplicate_of"] == item["duplicate_of"]
    again = triage.mark_seen(cfg, by_exempt[False]["id"], by="Someone else")
    assert again["seen_by"] == "Operator"  # seen once; nothing changes
    after = triage.items(cfg)
    assert [(i["seen"], i["needs_person"], i["seen_by"]) for i in after] == [(True, False, "Operator")] * 2
    # `status` and the dashboard no longer count them as needing a person (still set aside).
    out = subprocess.run(naskahd_cmd("--config", str(d.config), "status", "--json"), capture_output=True, text=True)
    assert (json.loads(out.stdout)["duplicates"], json.loads(out.stdout)["duplicates_unseen"]) == (2, 0)
    text = subprocess.run(naskahd_cmd("--config", str(d.config), "status"), capture_output=True, text=True,
                          env={**os.environ, "LANG": "C.UTF-8"}).stdout
    assert "Duplicates set aside: 2" in text and "2 of them checked already" in text and "naskahd duplicates" not in text
    from naskahd.web.pages import dashboard

    info = dashboard.data(type("Ctx", (), {"cfg": cfg, "sessions": open_register(cfg.database_url, create=False)})())
    assert (info["duplicates"], info["duplicates_unseen"]) == (2, 0)
    assert (d.drop / "duplikat" / "salinan.pdf").exists() and (d.drop / "duplikat" / f"lagi {MARKER}.pdf").exists()
    recorded = events(cfg, "duplicate.seen")
    assert sorted(e["details"]["duplicate_of"] for e in recorded) == sorted(agendas[c] for c in ("inbound", "exempt"))
    assert MARKER not in json.dumps(recorded)


def test_the_rules_must_still_file_the_folder_as_asked(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path / "n", extra='\n[[rules]]\npath = "dikecualikan/**"\ncategory = "inbound"\n')
    cfg = config.load(str(cfg_path))
    open_register(cfg.database_url)
    ExemptKeys.of(cfg.state)  # the host secret, as the daemon made it when it filed the item
    review = cfg.review_dir / "dikecualikan"
    review.mkdir(parents=True)
    (review / "x.pdf").write_bytes(b"x")
    (item,) = triage.items(cfg)
    with pytest.raises(LetterError, match="rules"):
        triage.move(cfg, item, "exempt", by="op")
    assert (review / "x.pdf").exists()


def test_review_move_and_seen_on_the_command_line(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path / "n")
    cfg = config.load(str(cfg_path))
    open_register(cfg.database_url)
    cfg.review_dir.mkdir()
    (cfg.review_dir / "dikecualikan").mkdir()
    (cfg.review_dir / "dikecualikan" / f"{MARKER}.pdf").write_bytes(b"y")
    nokey = subprocess.run(naskahd_cmd("--config", str(cfg_path), "review", "move", f"dikecualikan/{MARKER}.pdf", "--to",
                                       "exempt"), capture_output=True, text=True, timeout=60)
    assert nokey.returncode == 2 and "host secret" in nokey.stderr and MARKER not in nokey.stderr
    ExemptKeys.of(cfg.state)
    (cfg.review_dir / "lain.pdf").write_bytes(b"x")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(naskahd_cmd("--config", str(cfg_path), *args), capture_output=True, text=True, timeout=60)

    listed = json.loads(run("review", "--json").stdout)  # as before: no id, no kind
    assert [sorted(i) for i in listed] == [["exempt", "from", "moved_at", "name", "reason", "reason_code"]] * 2
    refused = run("--lang", "id", "review", "move", f"dikecualikan/{MARKER}.pdf", "--to", "masuk")
    assert refused.returncode == 2 and "dikecualikan/" in refused.stderr and MARKER not in refused.stderr + refused.stdout
    missing = run("review", "move", f"dikecualikan/{MARKER}-tidak-ada.pdf", "--to", "exempt")
    assert missing.returncode == 2 and MARKER not in missing.stderr
    out = run("review", "move", "lain.pdf", "--to", "inbound", "--by", "Operator", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["moved_to"] == "masuk/lain.pdf" and (cfg.drop / "masuk" / "lain.pdf").read_bytes() == b"x"
    out = run("review", "move", f"tinjau/dikecualikan/{MARKER}.pdf", "--to", "dikecualikan")
    assert out.returncode == 0, out.stderr
    assert MARKER not in out.stdout and (cfg.drop / "dikecualikan" / f"{MARKER}.pdf").exists()
    (cfg.review_dir / "lain.pdf").write_bytes(b"z")  # the same name again: never overwritten
    out = run("review", "move", "lain.pdf", "--to", "inbound", "--json")
    assert json.loads(out.stdout)["moved_to"] == "masuk/lain (2).pdf"
    assert (cfg.drop / "masuk" / "lain.pdf").read_bytes() == b"x"
    seen = run("review", "seen", "lain.pdf")
    assert seen.returncode == 2 and "lain.pdf" in seen.stderr
    assert os.listdir(cfg.review_dir / "dikecualikan") == []
