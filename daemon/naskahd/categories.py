"""The three categories of the SOP and how each is written in agenda numbers and folders."""

from __future__ import annotations

from typing import Final

INBOUND: Final = "inbound"  # surat masuk
OUTBOUND: Final = "outbound"  # surat keluar
EXEMPT: Final = "exempt"  # naskah dinas yang dikecualikan: encrypted before it is stored

CATEGORIES: Final = (INBOUND, OUTBOUND, EXEMPT)

# The letter in an agenda number: 0001/M/2026 (Masuk), 0001/K/2026 (Keluar),
# 0001/D/2026 (Dikecualikan).
LETTER: Final = {INBOUND: "M", OUTBOUND: "K", EXEMPT: "D"}

# The drop subfolders the default rules map, and scanner profiles point at.
DROP_FOLDER: Final = {INBOUND: "masuk", OUTBOUND: "keluar", EXEMPT: "dikecualikan"}
