"""The admin's page for evaluation reports: the newest report.html, or one chosen from the list.

Staff only (wrapped in `admin.site.admin_view` in meepo/urls.py). Serves the self-contained
HTML that `manage.py evaluate` wrote (plots inline, all text escaped when it was rendered);
`?run=` must name an existing report directory, so no other file can be reached.
"""

from django.http import Http404, HttpResponse
from django.utils.html import format_html, format_html_join

from search.evaluation.report import latest_report, reports_root


def _runs() -> list[str]:
    root = reports_root()
    if not root.is_dir():
        return []
    return sorted((p.name for p in root.iterdir() if (p / "report.html").is_file()), reverse=True)


def report_page(request):
    runs = _runs()
    wanted = request.GET.get("run")
    if wanted is not None and wanted not in runs:
        raise Http404("no such evaluation report")
    chosen = reports_root() / wanted if wanted else latest_report()
    if chosen is None:
        return HttpResponse(
            "<!doctype html><title>No evaluation yet</title><p>No evaluation report yet: run "
            "<code>manage.py evaluate</code> (see docs/evaluation.md).</p>",
            status=404,
        )
    page = (chosen / "report.html").read_text(encoding="utf-8")
    others = format_html(
        "<nav><p>Reports: {}</p></nav>",
        format_html_join(" · ", '<a href="?run={0}">{0}</a>', ((r,) for r in runs)),
    )
    return HttpResponse(page.replace("<body>", f"<body>{others}", 1))
