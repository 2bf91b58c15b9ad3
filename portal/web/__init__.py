"""Web layer: blueprints by audience, forms, template helpers and error pages."""
