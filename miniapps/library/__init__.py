"""一码借阅 libraries: the citizen code as the library card, at the desk and at SIP2 self-check kiosks."""

from miniapps.library.app import LibraryApp

__all__ = ["LibraryApp"]
