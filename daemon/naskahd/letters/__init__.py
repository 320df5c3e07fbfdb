"""A letter's register details, the register's search and document pages, and what waits
for a person in the drop folder (issue 21): the functions the command line and the web
application share. One module per job:

- ``details``: what a letter's details may be, and recording them (``annotate``);
- ``search``: the register searched, newest first, a page at a time;
- ``view``: one document's page (details, verified copies, audit events);
- ``triage``: the review folder and the duplicates (``items``, ``move``, ``mark_seen``).

Every dict these return is safe to send to a browser: an exempt letter's name and any
detail but its agenda number, dates and sifat never appear in one.
"""
