"""One APIRouter per resource."""

from lookalike.service.routes import facets, health, pages, products, search

__all__ = ["facets", "health", "pages", "products", "search"]
