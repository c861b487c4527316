"""好游玩 tourism: timed tickets, entry by citizen code (一码入园), hotel check-in by code."""

from miniapps.tourism.app import TourismApp

__all__ = ["TourismApp"]
