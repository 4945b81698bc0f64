"""Pages for generations, under /o/<org_slug>/: the playground, the gallery and one video (its
page, its status fragment that job cards poll, its content and delete). The usage page is
apps.billing.views.

Thin: parse with a form, call one service or selector, render. One view per page; htmx requests
get the page's partial (``template += "#partial"``); every htmx form also posts without JS.
"""
