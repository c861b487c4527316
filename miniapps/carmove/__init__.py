"""扫码挪车 car moving: a car sticker with a random code reaches the car's owner without revealing anyone."""

from miniapps.carmove.app import CarmoveApp

__all__ = ["CarmoveApp"]
