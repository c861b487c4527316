"""好停车 parking: live free spaces, reservations, barrier scans, leave first and pay after."""

from miniapps.parking.app import ParkingApp

__all__ = ["ParkingApp"]
