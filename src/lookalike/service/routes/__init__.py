"""One APIRouter per resource (and the offline API docs page)."""

from lookalike.service.routes import docs, facets, health, pages, products, search

__all__ = ["docs", "facets", "health", "pages", "products", "search"]
