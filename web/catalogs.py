"""The compiled message catalogues (`.mo`), made from the translations' `.po` files when missing.

`.mo` files are build products, not kept in git. `scripts/bootstrap` compiles them for
`scripts/server` and `scripts/test`, but a site deployed from the Procfile (`release` migrates,
`web` starts gunicorn) never ran it: every page stayed French whatever the reader chose. The
application compiles what is missing or older than its `.po` when it starts (once, in gunicorn's
master when the app is preloaded), writing beside the `.po` through a temporary file, so two
processes starting together never read half a catalogue.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)


def compile_catalogs(directory: Path) -> list[Path]:
    """Compile each `<locale>/LC_MESSAGES/*.po` under `directory` whose `.mo` is missing or older;
    the `.mo` files written. One that cannot be written (a read-only folder) is logged, not raised:
    the site then speaks French only, as it would have anyway."""
    written = []
    for po in sorted(directory.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name)
            handle, temporary = tempfile.mkstemp(dir=po.parent, prefix=".messages-", suffix=".mo")
            try:
                with os.fdopen(handle, "wb") as out:
                    write_mo(out, catalog)
                os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from another serving user
                os.replace(temporary, mo)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.error("Could not compile %s (%s): pages in that language will show French.", po, exc)
            continue
        written.append(mo)
    return written
