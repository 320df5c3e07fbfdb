"""Reports for the heads of section and division (SOP steps 8-10), one module per job.

- ``period``: which days a report covers (a calendar month, or from/to), in office time.
- ``data``: the report's facts, gathered from the register by pure functions over a
  session (a web page can call them as the CLI does); a JSON-able snapshot.
- ``words``: Indonesian/English dates, numbers and the report's own language.
- ``pdf``: the signed document (reportlab); ``tabular``: CSV and JSON.
- ``registry``: generate, register, render again, review, validate, out of date.
"""
