import re

from naskahd.classify import classify, is_ignored
from naskahd.config import Rule, _default_rules

DEFAULT_IGNORE = ("*.tmp", "*.part", "~$*", ".~lock.*", "Thumbs.db", ".DS_Store", "._*", "desktop.ini", "@eaDir")


def test_default_rules_map_the_drop_subfolders() -> None:
    rules = _default_rules()
    assert classify("masuk/a.pdf", rules) == "inbound"
    assert classify("masuk/deep/er/a.pdf", rules) == "inbound"
    assert classify("keluar/a.pdf", rules) == "outbound"
    assert classify("dikecualikan/a.pdf", rules) == "exempt"
    assert classify("a.pdf", rules) is None
    assert classify("masukan/a.pdf", rules) is None


def test_first_match_wins_and_name_and_path_must_both_match() -> None:
    rules = (
        Rule("exempt", path="masuk/*", name=re.compile(r"(?i)rahasia")),
        Rule("inbound", path="masuk/*"),
        Rule("outbound", name=re.compile(r"^SK-")),
    )
    assert classify("masuk/Surat RAHASIA.pdf", rules) == "exempt"
    assert classify("masuk/surat.pdf", rules) == "inbound"
    assert classify("lain/SK-01.pdf", rules) == "outbound"
    assert classify("lain/rahasia.pdf", rules) is None


def test_ignored_litter() -> None:
    for rel in ("masuk/a.tmp", "masuk/~$dok.docx", "masuk/.~lock.x#", "Thumbs.db", "masuk/._a.pdf", "@eaDir/x/y.pdf", "masuk/desktop.ini"):
        assert is_ignored(rel, DEFAULT_IGNORE), rel
    for rel in ("masuk/a.pdf", "masuk/part.pdf", "masuk/tmp/a.pdf"):
        assert not is_ignored(rel, DEFAULT_IGNORE), rel


def test_ignore_globs_match_each_component_as_fnmatch_does() -> None:
    """The compiled form of the globs agrees with fnmatchcase, component by component."""
    import fnmatch

    patterns = [*DEFAULT_IGNORE, "scan[0-9].pdf", "a?c", "[!x]*.raw"]
    names = ["a.tmp", "A.TMP", "x.tmp.pdf", "scan1.pdf", "scan12.pdf", "abc", "a\nc", "ac", "y.raw", "x.raw",
             "line\nbreak.tmp", "\udcff.part", "Thumbs.db", "thumbs.db", "._", "~$", ".~lock.", "@eaDir", "@eaDirx"]
    for name in names:
        expected = any(fnmatch.fnmatchcase(name, p) for p in patterns)
        assert is_ignored(f"masuk/{name}", patterns) is expected, name
        assert is_ignored(f"{name}/inner/a.pdf", patterns) is expected, name
    assert not is_ignored("masuk/a.tmp", [])


def test_category_folders_match_regardless_of_case() -> None:
    """Windows users create Masuk\\ or MASUK\\ (issue 18)."""
    from naskahd.config import _default_rules

    rules = _default_rules()
    assert classify("Masuk/scan.pdf", rules) == "inbound"
    assert classify("MASUK/sub/scan.pdf", rules) == "inbound"
    assert classify("Keluar/a.pdf", rules) == "outbound"
    assert classify("DiKecualikan/a.pdf", rules) == "exempt"
    assert classify("masukan/a.pdf", rules) is None
