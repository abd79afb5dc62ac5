"""Project-level app configuration.

collectstatic must not copy the Tailwind source (`static/src/*.css`): its `@import "tailwindcss"`
only resolves inside the npm build, so the manifest storage fails on it. The built file is
`static/dist/app.css`; `static/src/site.js` is served as is.
"""

from django.contrib.staticfiles.apps import StaticFilesConfig


class MeepoStaticFilesConfig(StaticFilesConfig):
    ignore_patterns = [*StaticFilesConfig.ignore_patterns, "src/*.css"]
