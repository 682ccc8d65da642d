"""The web portal: server-rendered pages (Jinja2 and htmx) served beside the API.

Logins and their cookie (:mod:`.sessions`), the failed-login limit
(:mod:`.limits`), the page guard (:mod:`.guard`), the pages (:mod:`.auth`,
:mod:`.overview`, :mod:`.vms`, :mod:`.projects`, :mod:`.audit`) and their live
updates (:mod:`.feed`); :func:`corral.server.portal.pages.install` adds them to
the app. Every page calls the same operations the API's routes call.
"""
