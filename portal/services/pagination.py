from dataclasses import dataclass

from sqlalchemy import func, select

from portal.extensions import db


@dataclass
class Page:
    items: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self):
        return max(1, -(-self.total // self.per_page))


def paginate(query, order_by, page, per_page, scalars=True):
    """Count `query`, then fetch one page of it in `order_by` order."""
    total = db.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    page = max(1, page)
    result = db.session.execute(query.order_by(*order_by).limit(per_page).offset((page - 1) * per_page))
    items = result.scalars().all() if scalars else result.all()
    return Page(items=items, total=total, page=page, per_page=per_page)
