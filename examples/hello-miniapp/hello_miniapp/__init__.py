"""An example mini-app, written the way a third party writes one: a separate package that depends on
``shengshitong`` and uses nothing of it but ``miniapps.contract``.

It brings everything of its own: its tables and migrations (``piccolo_app``), its settings (the
manifest's ``settings_schema``), its demo data (``seed_demo``, ``demo_scanners``). Installing it and
naming it in ``SHENGSHI_MINIAPPS`` is all it takes; no file of the platform changes.
"""

from hello_miniapp.app import HelloApp

__all__ = ["HelloApp"]
