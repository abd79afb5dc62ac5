"""A static-files finder that leaves the Tailwind source out of collectstatic.

`static/src/app.css` is an input to `make css` (its `@import "tailwindcss"` only resolves inside
the npm build), so the manifest storage would fail on it; the built file is `static/dist/app.css`.
`static/src/site.js` is served as is. A finder, not a staticfiles AppConfig, because tools
(pytest-django's live server among them) look for the literal "django.contrib.staticfiles".
"""

from django.contrib.staticfiles.finders import FileSystemFinder

SOURCE_PATTERNS = ["src/*.css"]


class BuiltAssetsFinder(FileSystemFinder):
    def list(self, ignore_patterns):
        return super().list([*(ignore_patterns or []), *SOURCE_PATTERNS])
