"""The JSON API for the practice's scheduling system (``/api/v1``, bearer tokens).

``blueprint`` holds the blueprint, its authentication and its error handlers; the view
modules register their routes on it when imported here.
"""

from portal.web.api import analytics_views, booking_views, catalogue_views, openapi, views
from portal.web.api.blueprint import bp, error_response

__all__ = [
    "analytics_views",
    "booking_views",
    "bp",
    "catalogue_views",
    "error_response",
    "openapi",
    "views",
]
