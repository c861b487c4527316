"""扫码门禁 doors: residents and visitors open doors with the citizen code, online and offline."""

from miniapps.doors.app import DoorsApp

__all__ = ["DoorsApp"]
