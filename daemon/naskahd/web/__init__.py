"""The office's web page (issue 21): one small Starlette application served by uvicorn.

One module per job: ``auth`` (accounts, roles, password hashes), ``sessions`` (the cookie's
sessions, kept in the register), ``csrf``, ``throttle`` (failed logins), ``tls`` (the
self-signed certificate), ``app`` (the application: middleware, headers, errors),
``view`` (rendering, language), ``pages/`` (one module per page), ``server`` (uvicorn).
The web process reads the register and calls the same functions as the command line for
every change; it never writes archive files (a review item it moves goes back into the drop
folder, and the daemon files it).
"""
