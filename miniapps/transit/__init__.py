"""乘车 transit: bus and metro by citizen code; ride first, pay after."""

from miniapps.transit.app import TransitApp

__all__ = ["TransitApp"]
