"""The one way text becomes HTML: every value put into markup goes through ``escape``.

ipywidgets renders ``HTML`` values with ``innerHTML``, so any text that comes from a user's data
(a layer name chosen by the model's author, an uploaded file's name, a photo folder's file
names, an error quoting one of them) would otherwise be markup: a name such as
``x" onerror="...`` breaks out of an attribute, ``<img src=x onerror=...>`` runs script.
``escape`` quotes ``& < > " '``, so the text is shown as text wherever it lands, between tags or
inside a quoted attribute; ``html`` builds a fragment from a template whose fields are all escaped.
"""

from __future__ import annotations

import base64
import html as _html
import numbers


def escape(text: object) -> str:
    """``text`` as HTML text or a quoted attribute value (``html.escape(..., quote=True)``)."""
    return _html.escape(str(text), quote=True)


def html(template: str, **fields: object) -> str:
    """``template.format(**fields)`` with every field escaped: the template is the only markup.
    Format specs apply to numbers as usual (``{score:.3g}``)."""
    safe = {k: v if isinstance(v, numbers.Real) and not isinstance(v, bool) else escape(v) for k, v in fields.items()}
    return template.format(**safe)


def data_link(data: bytes, filename: str, mime: str) -> str:
    """A download link for ``data`` named ``filename`` (the name escaped in both places)."""
    b64 = base64.b64encode(data).decode()
    return html('<a download="{name}" href="data:{mime};base64,{b64}">⤓ {name}</a>', name=filename, mime=mime, b64=b64)
