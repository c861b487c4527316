"""市民服务 civic services: the social-security service hall's queue by code, and health check points."""

from miniapps.civic.app import CivicApp

__all__ = ["CivicApp"]
