"""A local Sphinx extension of the book (book/_config.yml: sphinx.local_extensions).

Jupyter Book 1 registers sphinx-thebe's inline configuration script twice, so every page logged
"Identifier 'THEBE_JS_URL' has already been declared" in the browser console. The book launches
notebooks on Colab, not with Thebe; each page keeps one copy of every script.
"""


def _one_copy_of_each_script(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for script in context.get("script_files", []):
        # the two copies differ only in an empty file name: None in one, "" in the other
        key = (getattr(script, "filename", None) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _one_copy_of_each_script, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
