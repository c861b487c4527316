"""好就医 hospital: appointments, check-in by citizen code, see the doctor first and pay later."""

from miniapps.hospital.app import HospitalApp

__all__ = ["HospitalApp"]
